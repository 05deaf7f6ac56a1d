"""Reward shaping of RL rollouts: a bonus for solving a question in a strategy rare in its group.

In the spirit of DARLING (arXiv 2509.02534: diversity-aware rewards within a GRPO group) and of
outcome-based exploration (arXiv 2509.06941: bonuses for rare outcomes), but over query
strategies: within each group of episodes of one question, a correct episode whose strategy
(its sequence of strategy labels, error labels left out) few other episodes of the group share
earns up to ``coef`` more reward. Wrong episodes earn nothing, so the bonus cannot pay for
failing in a new way; and a strategy every episode of the group uses earns nothing, so a
collapsed group gets plain GRPO's signal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence

from agents.strategies import strategy_signature


def strategy_bonus(groups: Sequence[Hashable], labels: Sequence[Sequence[str]],
                   correct: Sequence[bool], coef: float) -> list[float]:
    """Bonus of each episode: ``coef * (1 - n_s / G)`` if correct, else 0.

    ``G`` is the number of episodes in the episode's group and ``n_s`` how many of them
    (itself included) share its strategy.

    Args:
        groups: The group of each episode (its question).
        labels: The strategy labels of each episode's queries.
        correct: Whether each episode answered correctly.
        coef: The largest bonus (a correct strategy no other episode of its group used, in a
            group so large that ``1 / G`` vanishes).

    Returns:
        One bonus per episode, in order.
    """
    if not len(groups) == len(labels) == len(correct):
        raise ValueError(f"expected one group, label list and outcome per episode, got "
                         f"{len(groups)}, {len(labels)} and {len(correct)}")
    signatures = [strategy_signature(seq) for seq in labels]
    size: Counter[Hashable] = Counter(groups)
    shared: dict[Hashable, Counter[tuple[str, ...]]] = defaultdict(Counter)
    for group, signature in zip(groups, signatures):
        shared[group][signature] += 1
    return [coef * (1.0 - shared[g][s] / size[g]) if ok else 0.0
            for g, s, ok in zip(groups, signatures, correct)]
