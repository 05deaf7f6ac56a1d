"""Summaries of a set of trajectories: accuracy, search behaviour and diversity."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from agents import diversity as dv
from agents.trajectory import Trajectory

#: Maps a list of query strings to an [n, d] embedding array (e.g. a sentence encoder).
Embedder = Callable[[list[str]], np.ndarray]
MAX_EMBEDDED_QUERIES = 512


def summarize(
    trajectories: Sequence[Trajectory], k: int, embed: Embedder | None = None, seed: int = 0
) -> dict[str, Any]:
    """Accuracy, pass@k, search behaviour and the diversity metrics of a set of episodes.

    Args:
        trajectories: Episodes, possibly several samples per question.
        k: The k of pass@k (capped at the samples per question).
        embed: Optional query embedder for the Vendi score and mean pairwise distance; up to
            512 queries (a seeded random subset) are embedded.
        seed: Seed of that subset.

    Returns:
        A flat dict of figures plus a ``diversity`` dict (:func:`diversity_metrics`).
    """
    if not trajectories:
        raise ValueError("expected at least one trajectory to summarize")
    by_question: dict[str, list[Trajectory]] = defaultdict(list)
    by_type: dict[str, list[float]] = defaultdict(list)
    labels_by_type: dict[str, list[str]] = defaultdict(list)
    for t in trajectories:
        by_question[t.qid].append(t)
        by_type[t.qtype].append(t.em)
        labels_by_type[t.qtype].extend(t.strategy_labels)
    samples = min(len(group) for group in by_question.values())
    k_eff = min(k, samples)
    correct = [[t.success for t in group] for group in by_question.values()]
    actions = sum(len(t.actions) for t in trajectories)
    row: dict[str, Any] = {
        "episodes": len(trajectories),
        "questions": len(by_question),
        "em": _mean([t.em for t in trajectories]),
        "f1": _mean([t.f1 for t in trajectories]),
        "pass_at_1": dv.mean_pass_at_k(correct, 1),
        "pass_at_k": dv.mean_pass_at_k(correct, k_eff),
        "k": k_eff,
        # The whole curve: RL tends to win at small k and lose at large k.
        "pass_at_k_curve": {str(n): dv.mean_pass_at_k(correct, n) for n in range(1, samples + 1)},
        "em_by_type": {qtype: _mean(v) for qtype, v in sorted(by_type.items())},
        # Which strategies each question type gets: collapsing onto one shows up per type.
        "strategy_by_type": {qtype: dv.strategy_distribution(labels)
                             for qtype, labels in sorted(labels_by_type.items())},
        "searches_per_episode": _mean([t.searches for t in trajectories]),
        "invalid_action_rate": sum(t.invalid_actions for t in trajectories) / max(actions, 1),
        "truncated_rate": _mean([float(t.truncated) for t in trajectories]),
    }
    row["diversity"] = diversity_metrics(trajectories, embed, seed)
    return row


def diversity_metrics(
    trajectories: Sequence[Trajectory], embed: Embedder | None = None, seed: int = 0
) -> dict[str, Any]:
    """Query-strategy and token diversity of a set of episodes."""
    labels = [label for t in trajectories for label in t.strategy_labels]
    queries = [q for t in trajectories for q in t.queries]
    groups: dict[str, list[str]] = defaultdict(list)
    solved: dict[str, list[list[str]]] = defaultdict(list)
    for t in trajectories:
        groups[t.qid].extend(t.queries)
        if t.success:
            solved[t.qid].append(t.strategy_labels)
    out: dict[str, Any] = {
        "strategy_entropy": dv.strategy_entropy(labels),
        # Diversity among successes: an agent cannot raise these by failing in new ways.
        "success_strategy_entropy": dv.strategy_entropy(
            label for episodes in solved.values() for seq in episodes for label in seq),
        "strategies_per_solved_question": dv.strategies_per_question(solved.values()),
        "wrong_entity_rate": dv.error_rate(labels),
        "sequence_entropy": dv.sequence_entropy(t.strategy_labels for t in trajectories),
        "strategy_distribution": dv.strategy_distribution(labels),
        "dominant_strategy": dv.dominant_strategy(labels),
        "distinct_1": dv.distinct_n(queries, 1),
        "distinct_2": dv.distinct_n(queries, 2),
        "unique_query_ratio": dv.unique_query_ratio(groups.values()),
        "searches_entropy": dv.searches_entropy(t.searches for t in trajectories),
        "vendi_score": math.nan,
        "mean_pairwise_distance": math.nan,
    }
    if embed is not None and len(queries) >= 2:
        rng = np.random.default_rng(seed)
        if len(queries) > MAX_EMBEDDED_QUERIES:
            picked = rng.choice(len(queries), MAX_EMBEDDED_QUERIES, replace=False)
            queries = [queries[i] for i in sorted(picked)]
        vectors = embed(queries)
        # One BLAS thread: at n <= 512 it is as fast as two, while on a CPU shared with other
        # jobs two threads that wait for each other made vendi's eigvalsh take 0.1-1.7 s instead
        # of ~10 ms (measured in forksearch-bench on a busy 2-core machine).
        with threadpool_limits(1, user_api="blas"):
            out["vendi_score"] = dv.vendi_score(vectors)
            out["mean_pairwise_distance"] = dv.mean_pairwise_distance(vectors)
    out.update(token_entropy(trajectories))
    return out


def token_entropy(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Token entropy over agent / query / answer tokens and the forking share (LM agents only)."""
    with_tokens = [t.tokens for t in trajectories if t.tokens.entropies]
    if not with_tokens:
        nan = math.nan
        return {
            "entropy_all": nan,
            "entropy_query": nan,
            "entropy_answer": nan,
            "forking_share": nan,
        }
    cat = np.concatenate
    return dv.token_entropy_stats(
        cat([np.asarray(t.entropies, dtype=float) for t in with_tokens]),
        cat([np.asarray(t.env_mask, dtype=bool) for t in with_tokens]),
        cat([np.asarray(t.query_mask, dtype=bool) for t in with_tokens]),
        cat([np.asarray(t.answer_mask, dtype=bool) for t in with_tokens]),
    )


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def json_safe(value: Any) -> Any:
    """``value`` with every NaN/inf float replaced by None, so strict JSON parsers accept it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
