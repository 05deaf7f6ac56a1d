"""The structured schema of ``conf/train.yaml``: ``TrainConfig`` plus what only the CLI needs.

Registered in Hydra's ConfigStore as ``train_schema``, so a key or value that does not fit
(``rl.learning_rate=abc``, ``sft.stepz=3``) is refused with the expected type or key before
anything runs; ``__post_init__`` checks of the dataclasses run when the config becomes objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from agents.training.config import TrainConfig


@dataclass
class TestConfig:
    """The final evaluation of the trained model (``summary.json``).

    Attributes:
        split: Corpus split evaluated.
        max_questions: Questions evaluated (``None``: the whole split).
        samples: Episodes per question; pass@k uses k = samples.
        temperature: Sampling temperature.
    """

    split: str = "test"
    max_questions: int | None = 300
    samples: int = 4
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.samples < 1 or self.temperature <= 0:
            raise ValueError(
                f"test.samples must be >= 1 and test.temperature > 0, got "
                f"{self.samples} and {self.temperature}"
            )


@dataclass
class TrainJob(TrainConfig):
    """A ``forksearch-train`` job: the training config, its corpus and retriever, the test.

    Attributes:
        corpus: A ``conf/corpus`` entry (``_target_`` builds a ``corpora.Corpus``).
        retriever: A ``conf/retriever`` entry (``kind`` plus options of ``make_retriever``).
        test: The final evaluation.
    """

    corpus: Any = MISSING
    retriever: Any = MISSING
    test: TestConfig = field(default_factory=TestConfig)


ConfigStore.instance().store(name="train_schema", node=TrainJob)
