"""Training configuration: plain dataclasses with defaults, validated on construction.

They are the schema of the Hydra structured configs of the training CLI, so they hold only
plain values (numbers, strings, lists, dicts of plain values) and are not frozen: OmegaConf
marks configs built from frozen dataclasses read-only, and command-line overrides then fail.
Library code treats them as read-only all the same.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agents.lm.model import tiny_llama_config
from agents.scripted.demonstrators import DEMONSTRATORS
from agents.training.checks import check as _check
from agents.training.checks import finite as _finite
from agents.training.checks import learning_rate as _learning_rate
from agents.training.checks import positive as _positive
from agents.training.checks import within as _within
from agents.training.rl_config import (
    EntropyRegulation,
    RLPhaseConfig,
    ScheduleConfig,
)

__all__ = [
    "DemoConfig",
    "EntropyRegulation",
    "EnvConfig",
    "EvalConfig",
    "ModelConfig",
    "RLPhaseConfig",
    "SFTPhaseConfig",
    "ScheduleConfig",
    "TestConfig",
    "TrainConfig",
]

#: Seeds stay below this: numpy takes seeds in [0, 2**32) and each phase adds 1000 to the seed.
MAX_SEED = 2**31


@dataclass
class EnvConfig:
    """The search environment the policy acts in (see ``envs.SearchEnv``).

    The corpus and the retriever are ``TrainConfig.corpus`` and ``TrainConfig.retriever``.

    Attributes:
        top_k: Documents per search.
        max_turns: Turn budget per episode.
        reward: ``em`` or ``f1``.
        format_penalty: Subtracted from the reward per invalid action, in [0, 1].
        batch_size: Episodes stepped together (one retrieval call per turn).
    """

    top_k: int = 3
    max_turns: int = 4
    reward: str = "em"
    format_penalty: float = 0.0
    batch_size: int = 64

    def __post_init__(self) -> None:
        _finite("env", self)
        _positive("env", top_k=self.top_k, max_turns=self.max_turns, batch_size=self.batch_size)
        _within("env.format_penalty", self.format_penalty, 0.0, 1.0,
                "a negative penalty rewards invalid actions; above 1 one invalid action costs "
                "more than a correct answer earns")
        _check(self.reward in ("em", "f1"), f"env.reward must be 'em' or 'f1', got {self.reward!r}")


@dataclass
class ModelConfig:
    """The policy model and how it samples.

    Attributes:
        name: ``tiny`` (a small Llama built with a tokenizer trained on the corpus) or a
            Hugging Face causal LM id or local path.
        use_chat_template: Render turns with the tokenizer's chat template; ``None`` uses it when
            the tokenizer has one.
        max_new_tokens: Generation budget per turn (at most ``max_length``).
        max_length: Longest episode (prompt and all turns) in tokens, at least 2.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        gradient_checkpointing: Recompute activations in backward (saves memory on large
            models, costs time; TRL turns it on by default, the tiny model does not need it).
        tiny: Size of the ``tiny`` model: ``tiny_llama_config`` arguments (``hidden_size``,
            ``num_layers``, ``num_heads``, ``intermediate_size``); ignored for other models.
        smear_keys: Give the ``tiny`` model smeared attention keys (``agents.lm.smeared``), which
            let it learn to copy names within a CPU run; ``false`` builds a plain Llama.
        pointer: Give the ``tiny`` model a pointer (copy) head (``agents.lm.pointer``) that can
            emit any token of the context; needs ``smear_keys``.
        lora: Train low-rank adapters (``peft``) instead of every weight; each phase trains
            fresh adapters and merges them into the weights it saves.
        lora_r: Adapter rank.
        lora_alpha: Adapter scaling numerator (the update is scaled by ``alpha / r``).
        lora_dropout: Dropout on the adapter input.
        lora_target_modules: Module names given adapters; ``[all-linear]`` is every linear layer
            but the output head.
    """

    name: str = "tiny"
    use_chat_template: bool | None = None
    max_new_tokens: int = 48
    max_length: int = 1024
    device: str = "auto"
    gradient_checkpointing: bool = False
    tiny: dict[str, int] = field(default_factory=dict)
    smear_keys: bool = True
    pointer: bool = True
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"])

    def __post_init__(self) -> None:
        _finite("model", self)
        _positive("model", max_new_tokens=self.max_new_tokens, lora_r=self.lora_r,
                  lora_alpha=self.lora_alpha)
        _within("model.max_length", self.max_length, 2, math.inf,
                "an episode holds the prompt and at least one generated token")
        _within("model.max_new_tokens", self.max_new_tokens, 1, self.max_length,
                f"a turn cannot be longer than a whole episode, model.max_length={self.max_length}")
        sizes = sorted(set(inspect.signature(tiny_llama_config).parameters)
                       - {"vocab_size", "smear_keys", "pointer"})
        unknown = sorted(set(self.tiny) - set(sizes))
        _check(not unknown, f"model.tiny has unknown {unknown}; choose from {sizes}")
        _positive("model.tiny", **self.tiny)
        _check(self.smear_keys or not self.pointer,
               "model.pointer=true needs model.smear_keys=true (both belong to the "
               "forksearch_llama architecture); set model.pointer=false for a plain Llama")
        _check(0.0 <= self.lora_dropout < 1.0,
               f"model.lora_dropout must be in [0, 1), got {self.lora_dropout}")
        _check(bool(self.lora_target_modules),
               "model.lora_target_modules must name at least one module (or [all-linear])")
        _check(self.device in ("auto", "cpu", "cuda"),
               f"model.device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")


@dataclass
class DemoConfig:
    """Demonstrations: successful episodes of the scripted demonstrators on the train split.

    Attributes:
        strategies: Demonstrator strategies to run (keys of ``DEMONSTRATORS``).
        max_questions: Train questions used (``None``: the whole split).
        max_searches: Search budget of each demonstrator.
        rename_entities: Share of SFT demonstrations whose entity names are replaced by fresh
            invented ones (``EntityRenamer``), so that names must be copied, not memorised.
    """

    strategies: list[str] = field(default_factory=lambda: list(DEMONSTRATORS))
    max_questions: int | None = None
    max_searches: int = 3
    rename_entities: float = 0.0

    def __post_init__(self) -> None:
        _finite("demos", self)
        known = sorted(DEMONSTRATORS)
        unknown = sorted(set(self.strategies) - set(DEMONSTRATORS))
        _check(bool(self.strategies), f"demos.strategies must not be empty; choose from {known}")
        _check(not unknown, f"demos.strategies has unknown {unknown}; choose from {known}")
        _positive("demos", max_searches=self.max_searches)
        _within("demos.rename_entities", self.rename_entities, 0.0, 1.0,
                "a share of the demonstrations")
        if self.max_questions is not None:
            _positive("demos", max_questions=self.max_questions)


@dataclass
class SFTPhaseConfig:
    """Supervised fine-tuning on demonstrations (``trl.SFTTrainer``).

    Attributes:
        steps: Optimizer steps of the first SFT phase (refreshes use ``schedule.refresh_steps``).
        batch_size: Demonstrations per optimizer step and process (balanced across
            strategies).
        learning_rate: Peak learning rate, in (0, 1).
        lr_scheduler: ``transformers`` scheduler name.
        warmup_ratio: Share of the phase spent warming up, in [0, 1).
        weight_decay: AdamW weight decay, in [0, 1].
        max_grad_norm: Gradient clipping (> 0).
    """

    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 3e-3
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        _finite("sft", self)
        _positive("sft", steps=self.steps, batch_size=self.batch_size,
                  max_grad_norm=self.max_grad_norm)
        _learning_rate("sft.learning_rate", self.learning_rate)
        _within("sft.warmup_ratio", self.warmup_ratio, 0.0, 1.0, "a share of the phase",
                high_open=True)
        _within("sft.weight_decay", self.weight_decay, 0.0, 1.0,
                "AdamW shrinks each weight by lr * weight_decay per step; a negative value "
                "grows the weights")


@dataclass
class EvalConfig:
    """Held-out measurement of the policy (``TrainConfig.eval`` during training, ``.test`` after).

    Attributes:
        split: Corpus split evaluated.
        max_questions: Questions evaluated (``None``: the whole split).
        samples: Episodes per question (pass@k uses k = samples).
        temperature: Sampling temperature of evaluation episodes (0: greedy).
        every: Also evaluate every this many steps of a phase (0: only at each phase's end);
            the final test ignores it.
    """

    split: str = "dev"
    max_questions: int | None = 100
    samples: int = 1
    temperature: float = 1.0
    every: int = 0

    #: The config key of this evaluation (error messages name it).
    KEY: ClassVar[str] = "eval"

    def __post_init__(self) -> None:
        key = self.KEY
        _finite(key, self)
        _positive(key, samples=self.samples)
        _within(f"{key}.temperature", self.temperature, 0.0, math.inf,
                "0 is greedy decoding")
        _within(f"{key}.every", self.every, 0, math.inf, "0 evaluates only at phase ends")
        if self.max_questions is not None:
            _positive(key, max_questions=self.max_questions)


@dataclass
class TestConfig(EvalConfig):
    """The final evaluation (``TrainConfig.test``): :class:`EvalConfig` with its own defaults."""

    __test__ = False  # not a pytest test class

    KEY: ClassVar[str] = "test"
    split: str = "test"
    max_questions: int | None = 300
    samples: int = 4


OBJECTIVES = ("test_em", "test_f1", "pass_at_1", "pass_at_k", "strategy_entropy",
              "success_strategy_entropy", "strategies_per_solved_question", "unique_query_ratio",
              "wrong_entity_rate", "wall_time_s")
"""Figures of ``summary.json`` a run can return to a sweeper (``objectives``)."""


@dataclass
class TrainConfig:
    """The root configuration of a training run: the schema of ``conf/train.yaml``.

    These defaults are the only ones; ``conf/`` groups and experiments hold what they change.

    Attributes:
        seed: Seed of the model, data order and sampling, in [0, 2**31).
        corpus: The corpus: ``name`` (a registered corpus, or a ``"module:function"`` loader)
            and the loader's keyword arguments (``corpora.load``).
        retriever: The retriever: ``name`` (``corpora.available_retrievers()``) and its keyword
            arguments (``corpora.make_retriever``).
        env: Environment settings.
        model: Policy model settings.
        demos: Demonstration pool settings.
        sft: SFT phase settings.
        rl: RL phase settings.
        entropy: Entropy-regulation levers of RL.
        schedule: Phase schedule.
        eval: Held-out evaluation during training.
        test: The final evaluation of the trained model (``summary.json``).
        save_steps: Checkpoint every this many optimizer steps (and at each phase's end).
        keep_phase_models: Keep the initial model and every phase's final model (for
            ``forksearch-analyze``'s parameter-update sparsity), not only the latest; ``false``
            saves disk with large models.
        sft_cache_dir: A folder where runs share their first SFT phase: a run whose first SFT
            phase has the same inputs (corpus, retriever, env, model, demos, sft, eval, seed) as
            one published there takes its model, metrics rows and figures instead of training
            it again; otherwise it trains and publishes it (single-process runs; ``None``: off).
            The arms of a study that differ only after SFT train it once per seed.
        resume: Continue the run in the run directory from its last checkpoint.
        report_to: ``transformers`` logging integrations (``tensorboard``, ``wandb``...).
        progress: Show progress bars.
        objectives: The ``summary.json`` figures the run returns to a Hydra sweeper, in order
            (one per direction of an Optuna sweep; :data:`OBJECTIVES` lists them).
    """

    seed: int = 0
    corpus: dict[str, Any] = field(default_factory=lambda: {"name": "synthetic"})
    retriever: dict[str, Any] = field(default_factory=lambda: {"name": "bm25"})
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    demos: DemoConfig = field(default_factory=DemoConfig)
    sft: SFTPhaseConfig = field(default_factory=SFTPhaseConfig)
    rl: RLPhaseConfig = field(default_factory=RLPhaseConfig)
    entropy: EntropyRegulation = field(default_factory=EntropyRegulation)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    test: TestConfig = field(default_factory=TestConfig)
    save_steps: int = 10
    keep_phase_models: bool = True
    sft_cache_dir: str | None = None
    resume: bool = False
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    progress: bool = True
    objectives: list[str] = field(default_factory=lambda: ["test_em"])

    def __post_init__(self) -> None:
        _within("seed", self.seed, 0, MAX_SEED,
                "numpy takes seeds in [0, 2**32) and each phase adds 1000", high_open=True)
        _within("save_steps", self.save_steps, 1, math.inf, "the checkpoint interval in steps")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        _check(bool(self.objectives) and not unknown,
               f"objectives must name summary.json figures, one or more of {list(OBJECTIVES)}; "
               f"got {self.objectives}")
        for part in ("corpus", "retriever"):
            _check(isinstance(getattr(self, part).get("name"), str),
                   f"{part}.name must name a {part} (choose one with {part}=<name>), "
                   f"got {getattr(self, part)}")
        _check(not self.rl.use_vllm or self.model.name != "tiny",
               "rl.use_vllm=true needs a Hugging Face checkpoint vLLM can load: the tiny model's "
               "architecture (pointer head, smeared keys) is forksearch's own; use "
               "model=hf_local model.name=<checkpoint>")
        _check(self.entropy.policy_loss != "kl_cov" or self.rl.off_policy,
               "entropy.policy_loss=kl_cov is inert with on-policy updates (logp == logp_old, so "
               "its penalty is 0): set rl.num_iterations > 1 or rl.steps_per_generation > "
               f"rl.gradient_accumulation_steps (got num_iterations={self.rl.num_iterations}, "
               f"steps_per_generation={self.rl.steps_per_generation}, "
               f"gradient_accumulation_steps={self.rl.gradient_accumulation_steps}), "
               "or choose another entropy.policy_loss")
