"""Batched sampling of one turn per sequence with a KV cache (left padding, own sampler)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache, PreTrainedModel

from agents.lm.smeared import select_rows


@dataclass
class Generated:
    """The tokens one sequence generated, with sampling-time log-probabilities and entropies."""

    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)


def sample_tokens(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    banned_ids: Sequence[int] = (),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw one token per row of ``logits`` (shape ``[batch, vocab]``).

    Log-probabilities and entropies are those of the temperature-scaled distribution before
    top-p truncation (the distribution a trainer recomputes); ``banned_ids`` get probability 0.
    Temperature 0 is greedy: the argmax, reported with the temperature-1 values.

    Returns:
        ``(tokens, logprobs, entropies)``, each of shape ``[batch]``.
    """
    logits = logits.float()
    if banned_ids:
        logits[:, list(banned_ids)] = float("-inf")
    logp = torch.log_softmax(logits / temperature if temperature > 0 else logits, dim=-1)
    probs = logp.exp()
    entropy = -(probs * logp.nan_to_num(neginf=0.0)).sum(-1)
    if temperature <= 0:
        tokens = logits.argmax(-1)
    else:
        sample_probs = probs
        if top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            # Keep the smallest prefix whose mass reaches top_p (always at least one token).
            drop = sorted_probs.cumsum(-1) - sorted_probs >= top_p
            sorted_probs = sorted_probs.masked_fill(drop, 0.0)
            sample_probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
        tokens = torch.multinomial(sample_probs, 1, generator=generator).squeeze(-1)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1), entropy


@torch.inference_mode()
def generate_batch(
    model: PreTrainedModel,
    contexts: Sequence[Sequence[int]],
    budgets: Sequence[int],
    *,
    pad_id: int,
    stop_ids: Collection[int],
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    banned_ids: Sequence[int] = (),
    stop_check: Callable[[int, list[int]], bool] | None = None,
) -> list[Generated]:
    """Continue every context by up to its budget of tokens, all in one batched loop.

    Contexts are left-padded into one batch, prefilled once, then decoded token by token with
    the model's KV cache; finished rows leave the batch. A row stops after a token in
    ``stop_ids`` (which it keeps), when ``stop_check(row, ids_so_far)`` is true, or at its budget.

    Args:
        model: A causal LM (Hugging Face ``forward`` with ``past_key_values``).
        contexts: Token ids of each sequence so far (each non-empty).
        budgets: Most new tokens per sequence; rows with budget <= 0 generate nothing.
        pad_id: Id used for left padding (masked out).
        stop_ids: Ids that end a row's turn.
        temperature: Sampling temperature; 0 is greedy.
        top_p: Nucleus sampling mass.
        generator: Random source for sampling (reproducible runs).
        banned_ids: Ids never sampled (padding, bos).
        stop_check: Extra stop test, e.g. a closing tag spelt in several tokens.

    Returns:
        One ``Generated`` per context, in order.
    """
    out = [Generated() for _ in contexts]
    rows = [i for i, b in enumerate(budgets) if b > 0 and len(contexts[i]) > 0]
    if not rows:
        return out
    device = next(model.parameters()).device
    width = max(len(contexts[i]) for i in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, i in enumerate(rows):
        input_ids[r, width - len(contexts[i]) :] = torch.tensor(list(contexts[i]), dtype=torch.long)
        mask[r, width - len(contexts[i]) :] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    cache_arg = {_cache_keyword(model): cache}
    result = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **cache_arg,
    )
    logits = result.logits[:, -1]
    next_pos = positions[:, -1] + 1
    stop = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    limit = torch.tensor([budgets[i] for i in rows], device=device)
    for step in range(int(limit.max())):
        tokens, logps, ents = sample_tokens(logits, temperature, top_p, generator, banned_ids)
        done = (torch.isin(tokens, stop) | (limit <= step + 1)).tolist()
        for r, (tok, lp, ent) in enumerate(
            zip(tokens.tolist(), logps.tolist(), ents.tolist(), strict=True)
        ):
            gen = out[rows[r]]
            gen.ids.append(tok)
            gen.logprobs.append(lp)
            gen.entropies.append(ent)
            done[r] = done[r] or (stop_check is not None and stop_check(rows[r], gen.ids))
        if all(done):
            break
        if any(done):
            keep = torch.tensor([r for r, d in enumerate(done) if not d], device=device)
            rows = [rows[k] for k in keep.tolist()]
            cache.batch_select_indices(keep)
            select_rows(cache, keep)  # smeared-key models keep each row's last key too
            tokens, mask, next_pos, limit = tokens[keep], mask[keep], next_pos[keep], limit[keep]
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
        result = model(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=next_pos[:, None],
            use_cache=True,
            **cache_arg,
        )
        logits = result.logits[:, -1]
        next_pos = next_pos + 1
    return out


def _cache_keyword(model: PreTrainedModel) -> str:
    # transformers 5.x renamed ``past_key_values`` to ``cache``; accept either generation.
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"
