"""What the SFT and RL phases share: ``TrainingArguments``, quiet libraries, the train call."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from transformers import Trainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for a configured ``auto``/``cpu``/``cuda``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("model.device is 'cuda' but no CUDA device is available; "
                         "use 'auto' or 'cpu'")
    return device


def common_args(
    output_dir: Path, max_steps: int, save_steps: int, report_to: list[str], device: str,
    seed: int, gradient_checkpointing: bool,
) -> dict[str, Any]:
    """Keyword arguments of ``trl.SFTConfig`` / ``trl.GRPOConfig`` common to both phases.

    Every optimizer step is logged (``metrics.jsonl`` has one row per step) and checkpoints are
    written every ``save_steps`` and at the end; the run state, not the ``Trainer``, decides
    which checkpoints to keep. On CPU, training runs in float32 (TRL defaults to bf16).

    Args:
        output_dir: The phase's folder (checkpoints, TensorBoard ``runs/``).
        max_steps: Optimizer steps of the phase.
        save_steps: Checkpoint interval.
        report_to: ``transformers`` logging integrations.
        device: ``cpu`` or ``cuda`` (see :func:`resolve_device`).
        seed: The phase's seed.
        gradient_checkpointing: Recompute activations in backward.
    """
    on_cpu = device == "cpu"
    return {
        "output_dir": str(output_dir),
        "max_steps": max_steps,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": save_steps,
        "save_total_limit": None,
        "report_to": list(report_to) or "none",
        "use_cpu": on_cpu,
        "bf16": not on_cpu and torch.cuda.is_bf16_supported(),
        "seed": seed,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "gradient_checkpointing": gradient_checkpointing,
        # Every trained weight gets a gradient at every step: DDP need not search for unused
        # ones (a graph traversal per step, and a warning in each process).
        "ddp_find_unused_parameters": False,
    }


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Hide per-call library progress bars (dataset maps, checkpoint writes) and known warnings.

    The warnings are TRL's notice that ``rollout_func`` is experimental (``grpo.py`` pins the
    TRL version) and ``transformers``' rename of ``gradient_checkpointing``, which TRL's configs
    still set.
    """
    was = (datasets.utils.logging.is_progress_bar_enabled(),
           transformers.utils.logging.is_progress_bar_enabled())
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are using 'rollout_func'")
            warnings.filterwarnings("ignore", message=".*gradient_checkpointing` is deprecated")
            yield
    finally:
        if was[0]:
            datasets.enable_progress_bars()
        if was[1]:
            transformers.utils.logging.enable_progress_bar()


def run_trainer(trainer: Trainer, resume_from: Path | None) -> None:
    """Train, from ``resume_from`` (a ``checkpoint-N`` folder) when given.

    The console printer and progress bar of ``transformers`` are removed first: the phase's
    ``PhaseMonitor`` shows progress and logs every step.
    """
    for quiet in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(quiet)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
