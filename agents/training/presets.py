"""Named configurations (the future ``conf/experiment/*.yaml`` of the training CLI)."""

from __future__ import annotations

from collections.abc import Callable

from agents.training.config import (
    EnvConfig,
    EvalConfig,
    ModelConfig,
    RLPhaseConfig,
    ScheduleConfig,
    SFTPhaseConfig,
    TrainConfig,
)


def smoke() -> TrainConfig:
    """SFT -> RL -> SFT -> RL on the tiny synthetic world in a couple of CPU minutes."""
    return TrainConfig(
        env=EnvConfig(corpus_options={"size": "tiny", "seed": 0}, batch_size=16),
        model=ModelConfig(max_new_tokens=32, max_length=512),
        sft=SFTPhaseConfig(steps=20, batch_size=12),
        rl=RLPhaseConfig(questions_per_step=2, num_generations=4),
        schedule=ScheduleConfig(kind="alternating", rl_steps=4, period=2, refresh_steps=6),
        eval=EvalConfig(max_questions=12),
        save_steps=2,
        report_to=["tensorboard"],
    )


def quick() -> TrainConfig:
    """Train on the default synthetic world in about ten CPU minutes: SFT, then RL."""
    return TrainConfig(
        sft=SFTPhaseConfig(steps=600, batch_size=16),
        rl=RLPhaseConfig(questions_per_step=4, num_generations=4),
        schedule=ScheduleConfig(kind="sft_then_rl", rl_steps=40),
        eval=EvalConfig(max_questions=150),
        save_steps=20,
    )


PRESETS: dict[str, Callable[[], TrainConfig]] = {"default": TrainConfig, "smoke": smoke,
                                                  "quick": quick}
