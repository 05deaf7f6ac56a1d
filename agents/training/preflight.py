"""Checks of a training run that need more than its config, made before anything runs.

The config dataclasses check each value on its own; :func:`check_run` checks what needs the
corpus, the machine or TRL: that every split the run reads has questions, that the model source
and the device exist, that the optional packages it needs (``peft``, logging integrations) are
installed and that the SFT and RL settings make valid TRL arguments. A run that would fail at
its final test evaluation (after all its phases) fails here instead, with what to set.
"""

from __future__ import annotations

from pathlib import Path

from transformers.integrations import get_available_reporting_integrations
from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

from agents.lm.model import check_model_source
from agents.training.config import TrainConfig
from agents.training.grpo import grpo_config
from agents.training.lora import lora_config
from agents.training.sft import sft_config
from agents.training.trainer_args import common_args, quiet_libraries, resolve_device
from corpora import Corpus


def check_run(cfg: TrainConfig, corpus: Corpus, run_dir: Path) -> None:
    """Check what the config alone cannot; raise ``ValueError`` saying what to set.

    Args:
        cfg: The run's configuration.
        corpus: Its corpus, loaded.
        run_dir: The run directory (TRL's arguments are built for it, nothing is written).

    Raises:
        ValueError: A split without questions, too few training questions for one RL
            generation batch, a missing optional package (``peft`` for ``model.lora``, a
            ``report_to`` integration), an unknown integration, or SFT/RL settings that TRL
            refuses.
        FileNotFoundError: A model path that is not a folder.
    """
    check_model_source(cfg.model.name)
    corpus.require_split("train", None)
    corpus.require_split(cfg.eval.split, "eval.split", ("dev", "test"))
    corpus.require_split(cfg.test.split, "test.split", ("test", "dev"))
    _check_rl_prompts(cfg, corpus)
    if cfg.model.lora:
        try:
            lora_config(cfg.model)
        except ImportError as err:
            raise ValueError(str(err)) from err
    _check_report_to(cfg.report_to)
    _check_trainer_args(cfg, run_dir)


def _check_rl_prompts(cfg: TrainConfig, corpus: Corpus) -> None:
    """One RL generation batch needs distinct prompts: a repeated question text is left out."""
    questions = corpus.split("train")[: cfg.demos.max_questions]
    distinct = len({q.question for q in questions})
    per_batch = cfg.rl.steps_per_generation or cfg.rl.gradient_accumulation_steps
    need = cfg.rl.questions_per_step * per_batch
    if distinct >= need:
        return
    where = (f"demos.max_questions={cfg.demos.max_questions} leaves"
             if cfg.demos.max_questions is not None else f"corpus {corpus.name!r} has")
    raise ValueError(f"{where} {distinct} distinct train questions, fewer than one RL "
                     f"generation batch needs (rl.questions_per_step x steps per generation = "
                     f"{cfg.rl.questions_per_step} x {per_batch} = {need}): lower "
                     "rl.questions_per_step or use more train questions")


def _check_report_to(report_to: list[str]) -> None:
    installed = get_available_reporting_integrations()
    for name in report_to:
        if name in ("none", "all"):
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise ValueError(f"report_to has unknown {name!r}; choose from "
                             f"{sorted(INTEGRATION_TO_CALLBACK)} (or [] for none)")
        if name not in installed:
            raise ValueError(f"report_to has {name!r}, which is not installed: pip install "
                             f"{name}, or leave it out (installed: {installed})")


def _check_trainer_args(cfg: TrainConfig, run_dir: Path) -> None:
    """Build the SFT and RL phases' TRL arguments as the phases will (TRL checks them)."""
    common = common_args(run_dir / "phases", cfg.sft.steps, cfg.save_steps, cfg.report_to,
                         resolve_device(cfg.model.device), cfg.seed,
                         cfg.model.gradient_checkpointing)
    for part, build in (("sft", lambda: sft_config(common, cfg.sft)),
                        ("rl", lambda: grpo_config(common, cfg.rl, cfg.entropy,
                                                   cfg.model.max_length))):
        try:
            with quiet_libraries():
                build()
        except (ValueError, TypeError) as err:
            raise ValueError(f"the {part} settings make invalid TRL arguments: {err}") from err
