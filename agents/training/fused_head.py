"""Undo TRL's fused-LM-head patch on models that compute the fused outputs themselves.

TRL's SFT and GRPO trainers replace ``model.forward`` with a "fused LM head" that runs the
backbone and projects through ``lm_head`` in tiles. A model with more than a linear head (the
tiny model's pointer head, ``agents.lm.pointer``) would then train and score only its
``lm_head``: the pointer would never learn, and GRPO's log-probs would differ from the
sampler's. Such a model declares ``fuses_own_head = True`` and answers ``fused_lm_head=True``
itself (``agents.lm.smeared.SmearedLlamaForCausalLM.forward``).
"""

from __future__ import annotations

from typing import Any


def keep_own_head(*models: Any, temperature: float = 1.0) -> None:
    """Give models that fuse their own head back their own ``forward``.

    Args:
        *models: Models a TRL trainer patched (PEFT-wrapped or not); None entries are skipped.
        temperature: Temperature of the fused log-probs (GRPO's sampling temperature).
    """
    for model in models:
        if model is None:
            continue
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        if getattr(type(base), "fuses_own_head", False):
            base.__dict__.pop("forward", None)  # the instance attribute TRL set
            base.fused_temperature = temperature
