"""Forward passes over search episodes without computing their padding.

An RL batch pads every episode to the longest one: prompts on the left, completions on the
right. Episode lengths vary several-fold (a 1-hop question ends after one search, a 3-hop one
after three), so at 64 episodes per batch most of a whole-batch forward pass is padding.
:func:`bucketed_logps` sorts the episodes by length, runs the model on groups of similar
length, each cut to its own widest prompt and completion, and puts the results back in batch
order, zero where a group was cut. Positions are rotary (relative), so cutting a group's common
left padding leaves every real token's logits unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

#: ``(input_ids, attention_mask, logits_to_keep) -> (logps, entropies or None)``
Forward = Callable[[Tensor, Tensor, int], tuple[Tensor, Tensor | None]]


def bucketed_logps(forward: Forward, input_ids: Tensor, attention_mask: Tensor,
                   logits_to_keep: int, rows: int) -> tuple[Tensor, Tensor | None]:
    """Per-token log-probs (and entropies) of the last ``logits_to_keep`` columns, by groups.

    Args:
        forward: Runs the model on a batch (TRL's ``_get_per_token_logps_and_entropies``).
        input_ids: ``[B, P + C]`` left-padded prompts then right-padded completions.
        attention_mask: Its mask (1 on real tokens).
        logits_to_keep: ``C``, the completion width.
        rows: Episodes per forward pass.

    Returns:
        ``[B, C]`` log-probs and entropies (``None`` when ``forward`` gives none), zero on
        completion columns past a group's longest completion (padding, masked by the loss).
    """
    prompt_width = input_ids.size(1) - logits_to_keep
    order = torch.argsort(attention_mask.sum(1), descending=True, stable=True)
    logps, entropies = [], []
    for start in range(0, len(order), rows):
        group = order[start:start + rows]
        mask = attention_mask[group]
        used = mask.any(0).nonzero().flatten().tolist()
        first = min((c for c in used if c < prompt_width), default=prompt_width)
        # Keep one completion column at least: the caller's shapes assume one.
        width = max(max((c - prompt_width + 1 for c in used if c >= prompt_width), default=1), 1)
        lp, ent = forward(input_ids[group, first:prompt_width + width],
                          mask[:, first:prompt_width + width], width)
        logps.append(F.pad(lp, (0, logits_to_keep - width)))
        if ent is not None:
            entropies.append(F.pad(ent, (0, logits_to_keep - width)))
    back = torch.argsort(order)
    return (torch.cat(logps)[back],
            torch.cat(entropies)[back] if len(entropies) == len(logps) else None)
