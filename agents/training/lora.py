"""Low-rank adapters (``peft``) for the policy model, one fresh set per training phase.

A phase attaches adapters to the model it starts from, trains only them, and merges them into
the weights before the phase's model is saved, so every saved model is a plain checkpoint that
the next phase, evaluation and ``lm:<path>`` agents load without ``peft``. Mid-phase
checkpoints written by the ``Trainer`` hold the adapters only; resuming re-attaches them to the
phase's starting model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedModel

from agents.training.config import ModelConfig

ALL_LINEAR = "all-linear"


def _peft() -> Any:
    try:
        import peft
    except ImportError as err:  # an optional extra
        raise ImportError(
            "model.lora=true needs the peft package: pip install 'forksearch[lora]' "
            "(or set model.lora=false to train every weight)"
        ) from err
    return peft


def lora_config(cfg: ModelConfig) -> Any:
    """The ``peft.LoraConfig`` of ``cfg`` (a causal-LM task)."""
    targets = cfg.lora_target_modules
    return _peft().LoraConfig(
        task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=ALL_LINEAR if list(targets) == [ALL_LINEAR] else list(targets),
    )


def attach_adapters(model: PreTrainedModel, cfg: ModelConfig,
                    checkpoint: Path | None = None) -> PreTrainedModel:
    """Wrap ``model`` with trainable adapters: fresh ones, or those saved in ``checkpoint``.

    Args:
        model: The phase's starting model (plain weights).
        cfg: Adapter settings.
        checkpoint: A ``Trainer`` checkpoint of this phase (adapter files) to continue from.

    Raises:
        ValueError: When no module of ``model`` matches ``cfg.lora_target_modules``.
    """
    peft = _peft()
    if checkpoint is not None:
        return peft.PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)
    try:
        return peft.get_peft_model(model, lora_config(cfg))
    except ValueError as err:
        raise ValueError(
            f"model.lora_target_modules {list(cfg.lora_target_modules)} match no module of "
            f"{type(model).__name__}: {err}. Name linear layers of the model (e.g. q_proj, "
            f"v_proj) or use [{ALL_LINEAR}]"
        ) from err


def merge_adapters(model: PreTrainedModel) -> PreTrainedModel:
    """``model`` with its adapters merged into the weights (unchanged if it has none)."""
    merge = getattr(model, "merge_and_unload", None)
    return merge() if callable(merge) else model
