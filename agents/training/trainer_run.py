"""The last step of every phase: run its ``transformers`` trainer quietly."""

from __future__ import annotations

from pathlib import Path

from transformers import Trainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback


def run_trainer(trainer: Trainer, resume_from: Path | None) -> None:
    """Train, from ``resume_from`` (a ``checkpoint-N`` folder) when given.

    The console printer and progress bar of ``transformers`` are removed first: the phase's
    ``PhaseMonitor`` shows progress and logs every step.
    """
    for quiet in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(quiet)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
