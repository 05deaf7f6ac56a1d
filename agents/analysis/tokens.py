"""Token-level analysis of a run: token kinds, teacher-forced entropies, gradient shares.

Wang et al. 2025 ("Beyond the 80/20 Rule", arXiv 2506.01939) find that RL's learning signal
in reasoning models is carried by a minority of high-entropy "forking" tokens. This module
measures that on a user's own model and episodes:

* :func:`token_kinds` labels every completion token (environment, query, answer, tag, think,
  other), so that entropies and gradients can be broken down by what the token does;
* :func:`score_tokens` recomputes each completion token's entropy and log-probability with
  the model, teacher-forced, exactly as the GRPO trainer does (``fused_output``: nats, of the
  temperature-scaled distribution);
* :func:`gradient_share` splits the policy gradient into the part from the top-entropy tokens
  and the rest, and reports how much of the whole gradient each part carries;
* :func:`group_advantages` gives the advantages to weight it with.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from agents.lm.smeared import fused_output
from agents.trajectory import TokenRecord, Trajectory

__all__ = [
    "KINDS",
    "TokenScores",
    "gradient_share",
    "group_advantages",
    "score_tokens",
    "token_kinds",
]

#: Token kinds of :func:`token_kinds`, in the order they take precedence.
KINDS = ("env", "query", "answer", "tag", "think", "other")
#: Tags whose own tokens are labelled "tag" (``<information>`` is environment text).
_TAGS = ("<search>", "</search>", "<answer>", "</answer>", "<think>", "</think>")
_TAG_RE = re.compile("|".join(re.escape(t) for t in _TAGS))
_IGNORE = -100  # label of the positions fused_output does not score

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TokenScores:
    """The model's teacher-forced values for one record, one entry per completion token.

    Computed on every completion token, environment tokens included (what the model would
    have predicted there); mask with ``env_mask`` for the agent's own choices.

    Attributes:
        entropy: Entropy in nats of the next-token distribution the token was drawn from.
        logprob: Log-probability (nats) of the token actually there.
    """

    entropy: FloatArray
    logprob: FloatArray


# --------------------------------------------------------------------------- token kinds


def token_kinds(tokenizer: Any, record: TokenRecord) -> list[str]:
    """Label each completion token of ``record`` with one of :data:`KINDS`.

    Precedence: ``"env"`` (``env_mask`` 0), ``"query"`` (``query_mask`` 1), ``"answer"``
    (``answer_mask`` 1), ``"tag"`` (part of a ``<search>``, ``</search>``, ``<answer>``,
    ``</answer>``, ``<think>`` or ``</think>`` tag), ``"think"`` (between ``<think>`` and
    ``</think>``, or the end of the turn when never closed), else ``"other"``.

    Tags are found in the decoded text of each agent turn (a maximal run of agent tokens), so
    a tag spelt in several tokens is found, every token overlapping it is a tag token, and the
    environment's text (whose feedback quotes tags) never opens or closes one.

    Args:
        tokenizer: Anything with Hugging Face's ``decode(ids, ...)``.
        record: The episode's token record.
    """
    ids = record.completion_ids
    pieces = _token_texts(tokenizer, ids)
    kinds = ["env" if not agent else "other" for agent in record.env_mask]
    for start, stop in _agent_turns(record.env_mask):
        for offset, kind in enumerate(_turn_kinds(pieces[start:stop])):
            kinds[start + offset] = kind
    for i, kind in enumerate(kinds):
        if kind != "env" and record.query_mask[i]:
            kinds[i] = "query"
        elif kind != "env" and record.answer_mask[i]:
            kinds[i] = "answer"
    return kinds


def _token_texts(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each token's own decoded text (each distinct id decoded once)."""
    texts = {i: str(tokenizer.decode([i], clean_up_tokenization_spaces=False))
             for i in set(ids)}
    return [texts[i] for i in ids]


def _agent_turns(env_mask: Sequence[int]) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each maximal run of agent tokens."""
    start = None
    for i, agent in enumerate([*env_mask, 0]):
        if agent and start is None:
            start = i
        elif not agent and start is not None:
            yield start, i
            start = None


def _turn_kinds(pieces: Sequence[str]) -> list[str]:
    """``"tag"``, ``"think"`` or ``"other"`` for each token of one agent turn."""
    ends = np.cumsum([len(p) for p in pieces])
    starts = ends - np.array([len(p) for p in pieces], dtype=int)
    text = "".join(pieces)
    tags = list(_TAG_RE.finditer(text))
    think: list[tuple[int, int]] = []  # character spans of think content
    opened: int | None = None
    for match in tags:
        if match.group() == "<think>" and opened is None:
            opened = match.end()
        elif match.group() == "</think>" and opened is not None:
            think.append((opened, match.start()))
            opened = None
    if opened is not None:  # an unclosed think runs to the end of the turn
        think.append((opened, len(text)))

    def overlaps(lo: int, hi: int, spans: Sequence[tuple[int, int]]) -> bool:
        return hi > lo and any(lo < b and hi > a for a, b in spans)

    tag_spans = [m.span() for m in tags]
    kinds = []
    for lo, hi in zip(starts.tolist(), ends.tolist()):
        if overlaps(lo, hi, tag_spans):
            kinds.append("tag")
        elif overlaps(lo, hi, think):
            kinds.append("think")
        else:
            kinds.append("other")
    return kinds


# --------------------------------------------------------------------------- scoring


def score_tokens(model: Any, records: Sequence[TokenRecord], batch_size: int = 16, *,
                 temperature: float = 1.0) -> list[TokenScores]:
    """Teacher-forced entropy and log-probability of every completion token of each record.

    Records are right-padded into batches of similar length and run in eval mode without
    gradients on the model's device; the values are the trainer's (``fused_output``: natural
    log, logits divided by ``temperature``), so they match its ``entropy`` metric and, at the
    sampling temperature (1 for greedy decoding), the sampler's stored ``entropies`` and
    ``logprobs``. Not exactly: the sampler bans padding and bos (probability 0, the rest
    renormalised) and the trainer and this function do not, so the two differ by about the
    mass the model puts on those tokens. On ``outputs/default`` (``models/01-rl``, 3544 agent
    tokens of the test sample, temperature 1) entropies differed by at most 3.8e-3 nats
    (mean 6.7e-5) and log-probs by 7.5e-4; with the two tokens banned, by 4.4e-6.

    Args:
        model: A causal LM: ``model(input_ids=..., attention_mask=...)`` returns an object
            whose ``logits`` are ``(batch, time, vocab)``.
        records: Token records; each needs at least one prompt token.
        batch_size: Records per forward pass.
        temperature: The sampling temperature the values are for (the RL phase's).

    Returns:
        One :class:`TokenScores` per record, in order.
    """
    out: list[TokenScores | None] = [None] * len(records)
    with _eval_mode(model), torch.no_grad():
        for batch in _batches(records, range(len(records)), batch_size):
            fused = _forward(model, [records[i] for i in batch], temperature)
            entropy, logprob = (x.double().cpu().numpy() for x in (fused.entropy,
                                                                     fused.log_probs))
            for row, i in enumerate(batch):
                where = _completion_slice(records[i])
                out[i] = TokenScores(entropy=entropy[row, where], logprob=logprob[row, where])
    return [s for s in out if s is not None]


@contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Run in eval mode (no dropout); restore the model's mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _batches(records: Sequence[TokenRecord], indices: Sequence[int],
             batch_size: int) -> Iterator[list[int]]:
    """``indices`` in batches of similar total length (less padding to compute)."""
    if batch_size < 1:
        raise ValueError(f"expected batch_size >= 1, got {batch_size}")
    order = sorted(indices, key=lambda i: len(records[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def _completion_slice(record: TokenRecord) -> slice:
    """Positions in ``fused_output``'s ``(batch, time - 1)`` fields of the completion tokens.

    Position ``t`` there scores token ``t + 1``, so completion token ``j`` is at
    ``len(prompt) + j - 1``.
    """
    start = len(record.prompt_ids) - 1
    return slice(start, start + len(record.completion_ids))


def _forward(model: Any, records: Sequence[TokenRecord], temperature: float) -> Any:
    """One padded forward pass; ``fused_output`` (``log_probs``, ``entropy``) of the batch."""
    if any(not r.prompt_ids for r in records):
        raise ValueError("expected records with at least one prompt token: the first "
                         "completion token needs a position to be predicted from")
    device = next(model.parameters()).device
    width = max(len(r) for r in records)
    # Right padding: a real token never attends to the padding after it, and positions start
    # at 0 as in a single-sequence forward, so no position ids are needed.
    ids = torch.zeros((len(records), width), dtype=torch.long)
    labels = torch.full((len(records), width), _IGNORE, dtype=torch.long)
    mask = torch.zeros((len(records), width), dtype=torch.long)
    for row, record in enumerate(records):
        prompt, total = len(record.prompt_ids), len(record)
        ids[row, :total] = torch.tensor(record.prompt_ids + record.completion_ids)
        labels[row, prompt:total] = ids[row, prompt:total]
        mask[row, :total] = 1
    ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits
    return fused_output(logits, labels, None, temperature)


# --------------------------------------------------------------------------- gradient share


def group_advantages(trajectories: Sequence[Trajectory]) -> list[float]:
    """Each episode's reward minus the mean reward of the episodes of its question (``qid``).

    This is Dr. GRPO's advantage (Liu et al. 2025, arXiv 2503.20783): GRPO's group baseline
    without dividing by the group's reward std, which would reweight questions by how
    unevenly their episodes scored. A lone episode of its question gets 0, as does every
    episode of a question whose episodes all scored the same: they carry no learning signal.
    Pass one model's episodes (episodes of other agents would join the group).
    """
    rewards: dict[str, list[float]] = defaultdict(list)
    for t in trajectories:
        rewards[t.qid].append(float(t.reward))
    means = {qid: math.fsum(r) / len(r) for qid, r in rewards.items()}
    return [float(t.reward) - means[t.qid] for t in trajectories]


def gradient_share(model: Any, records: Sequence[TokenRecord], advantages: Sequence[float],
                   top_fraction: float = 0.2, *, batch_size: int = 16, temperature: float = 1.0,
                   scores: Sequence[TokenScores] | None = None) -> dict[str, float]:
    """How much of the policy gradient comes from the highest-entropy agent tokens.

    The policy gradient is ``g = sum_t A_t * grad log p(token_t)`` over the agent tokens of
    all ``records`` (``A_t`` the advantage of the token's episode; a sum, not a mean, so the
    norms grow with the batch while the shares do not), over all trainable parameters. The
    agent tokens whose teacher-forced entropy is at least the ``1 - top_fraction`` quantile
    of all agent tokens' entropies (TRL's ``top_entropy_quantile`` rule, here over the whole
    of ``records`` instead of one micro-batch) give ``g_top``, the others ``g_rest``, and
    ``g = g_top + g_rest``.

    The shares are projections onto ``g``: ``top_share = <g_top, g> / |g|^2``. They add up to
    1 and say how much of the step the optimizer takes along ``g`` each part makes. A ratio of
    norms would not: ``g_top`` and ``g_rest`` can point partly against each other, so that
    ``|g_top| + |g_rest| > |g|``. A share can be negative (the part works against the net
    gradient) or above 1.

    The model runs in eval mode (no dropout) and is left as it was: its mode is restored, no
    parameter changes, and gradients are taken with ``torch.autograd.grad``, so the
    parameters' ``.grad`` are not touched. Episodes with advantage 0 need no backward pass.

    Args:
        model: A causal LM as for :func:`score_tokens`, with trainable parameters.
        records: Token records.
        advantages: One advantage per record (e.g. :func:`group_advantages`).
        top_fraction: Fraction of agent tokens counted as top-entropy, in ``(0, 1]``.
        batch_size: Records per forward (and backward) pass.
        temperature: The RL phase's sampling temperature.
        scores: ``score_tokens(model, records, temperature=temperature)`` if already
            computed (saves a forward pass over the records).

    Returns:
        ``threshold`` (the entropy quantile, nats), ``top_tokens`` (fraction of agent tokens
        at or above it), ``top_norm``, ``rest_norm``, ``total_norm`` (Euclidean norms of
        ``g_top``, ``g_rest``, ``g``), ``top_share`` and ``rest_share``. The shares are
        ``nan`` when ``g = 0`` (e.g. every advantage 0): no gradient has no parts. Without
        any agent token, ``threshold`` and ``top_tokens`` are ``nan`` too.
    """
    if len(advantages) != len(records):
        raise ValueError(f"expected one advantage per record, got {len(advantages)} "
                         f"advantages for {len(records)} records")
    if not 0 < top_fraction <= 1:
        raise ValueError(f"expected 0 < top_fraction <= 1, got {top_fraction}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (requires_grad) to take the "
                         "gradient of")
    if scores is None:
        scores = score_tokens(model, records, batch_size, temperature=temperature)
    elif len(scores) != len(records):
        raise ValueError(f"expected the scores of the {len(records)} records, got {len(scores)}")
    agent = [np.asarray(r.env_mask, dtype=bool) for r in records]
    agent_entropies = np.concatenate([np.empty(0), *(s.entropy[a] for s, a in zip(scores, agent))])
    if agent_entropies.size == 0:
        return _shares(math.nan, math.nan, 0.0, 0.0, 0.0)
    threshold = float(np.quantile(agent_entropies, 1 - top_fraction))
    top = [a & (s.entropy >= threshold) for s, a in zip(scores, agent)]
    top_count = sum(int(t.sum()) for t in top)
    g_top, g_rest = _split_gradient(model, records, advantages, agent, top, params,
                                    batch_size, temperature)
    tt, rr, tr = _dot(g_top, g_top), _dot(g_rest, g_rest), _dot(g_top, g_rest)
    return _shares(threshold, top_count / agent_entropies.size, tt, rr, tr)


def _shares(threshold: float, top_tokens: float, tt: float, rr: float,
            tr: float) -> dict[str, float]:
    """The report of :func:`gradient_share` from the dot products of ``g_top`` and ``g_rest``."""
    total = max(tt + 2 * tr + rr, 0.0)  # |g|^2; max guards round-off below 0
    top_share = (tt + tr) / total if total > 0 else math.nan
    return {
        "threshold": threshold,
        "top_tokens": top_tokens,
        "top_norm": math.sqrt(tt),
        "rest_norm": math.sqrt(rr),
        "total_norm": math.sqrt(total),
        "top_share": top_share,
        "rest_share": 1 - top_share,
    }


def _split_gradient(model: Any, records: Sequence[TokenRecord], advantages: Sequence[float],
                    agent: Sequence[npt.NDArray[np.bool_]], top: Sequence[npt.NDArray[np.bool_]],
                    params: list[torch.nn.Parameter], batch_size: int, temperature: float,
                    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``g_top`` and ``g_rest``, one tensor per parameter, accumulated over batches."""
    g_top = [torch.zeros_like(p) for p in params]
    g_rest = [torch.zeros_like(p) for p in params]
    active = [i for i in range(len(records)) if advantages[i] != 0 and agent[i].any()]
    with _eval_mode(model), torch.enable_grad():
        for batch in _batches(records, active, batch_size):
            fused = _forward(model, [records[i] for i in batch], temperature)
            weights = np.zeros((2, *fused.log_probs.shape))  # per-token A for g_top, g_rest
            for row, i in enumerate(batch):
                where = _completion_slice(records[i])
                weights[0, row, where] = advantages[i] * top[i]
                weights[1, row, where] = advantages[i] * (agent[i] & ~top[i])
            on_device = torch.as_tensor(weights, dtype=fused.log_probs.dtype,
                                        device=fused.log_probs.device)
            parts = [(on_device[k], g) for k, g in enumerate((g_top, g_rest)) if weights[k].any()]
            for n, (weight, into) in enumerate(parts):
                # One forward, two backward passes through it: keep the graph for the second.
                objective = (fused.log_probs * weight).sum()
                grads = torch.autograd.grad(objective, params, retain_graph=n + 1 < len(parts),
                                            allow_unused=True)
                for acc, grad in zip(into, grads):
                    if grad is not None:
                        acc += grad
    return g_top, g_rest


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """Inner product of two gradients (lists of tensors), summed in float64."""
    return math.fsum(float((x.double() * y.double()).sum()) for x, y in zip(a, b))
