"""Behavioural-diversity metrics for search agents, as pure functions.

Strategy-level metrics (entropy of query-strategy labels and of whole-trajectory label
sequences), query-level metrics (distinct-n, unique-query ratio, Vendi score and mean pairwise
distance of query embeddings), episode-level metrics (entropy of the searches-per-episode
distribution, unbiased pass@k) and token-level metrics (entropy of agent, query and answer
tokens, share of forking tokens). Inputs are plain Python values or numpy arrays; nothing here
touches a model, an environment or a corpus.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from agents.strategies import ERROR_LABELS, LABELS, STRATEGY_LABELS, strategy_signature

__all__ = [
    "distinct_n",
    "dominant_strategy",
    "entropy_bits",
    "mean_pairwise_distance",
    "mean_pass_at_k",
    "pass_at_k",
    "searches_entropy",
    "sequence_entropy",
    "strategy_distribution",
    "strategy_entropy",
    "token_entropy_stats",
    "unique_query_ratio",
    "vendi_score",
]

FORKING_THRESHOLD_NATS = 0.672
"""Default forking-token entropy threshold in nats.

It is the 80th-percentile token entropy reported by Wang et al. 2025, "Beyond the 80/20 Rule"
(arXiv 2506.01939): tokens above it are the high-entropy minority ("forking tokens").
"""


def entropy_bits(items: Iterable[Hashable]) -> float:
    """Shannon entropy, in bits, of the empirical distribution of ``items``.

    ``H = -sum_x p(x) * log2 p(x)`` with ``p(x) = count(x) / N``.

    Args:
        items: Hashable observations.

    Returns:
        The entropy in bits; ``0.0`` for empty input.
    """
    counts = Counter(items)
    total = sum(counts.values())
    if total == 0:
        return 0.0
    return math.fsum((c / total) * math.log2(total / c) for c in counts.values())


def strategy_entropy(labels: Iterable[str]) -> float:
    """Entropy (bits) of the query-strategy label distribution, errors left out.

    ``entropy_bits`` of the labels that are strategies: queries labelled with an
    ``ERROR_LABELS`` label (``wrong_entity``) are no strategy and do not count.

    Args:
        labels: One label per query (pooled over episodes).

    Returns:
        The entropy in bits; ``0.0`` for no strategy labels.
    """
    return entropy_bits(label for label in labels if label not in ERROR_LABELS)


def sequence_entropy(label_sequences: Iterable[Sequence[str]]) -> float:
    """Entropy (bits) of whole-trajectory strategy sequences.

    ``entropy_bits(tuple(seq) for seq in label_sequences)``: each episode's ordered label
    sequence is one outcome, so ``("entity", "bridge")`` and ``("bridge", "entity")`` differ.

    Args:
        label_sequences: One label sequence per episode.

    Returns:
        The entropy in bits; ``0.0`` for no episodes.
    """
    return entropy_bits(tuple(seq) for seq in label_sequences)


def strategy_distribution(labels: Iterable[str]) -> dict[str, float]:
    """Fraction of the strategy-labelled queries with each strategy label.

    ``p(l) = count(l) / N`` for every ``l`` in ``STRATEGY_LABELS``, where ``N`` counts the
    queries with a strategy label (``ERROR_LABELS`` ones are left out; see
    :func:`error_rate`).

    Args:
        labels: Labels, each one of ``agents.strategies.LABELS``.

    Returns:
        A dict with every label of ``STRATEGY_LABELS`` as a key (in that order); the values
        sum to 1, or are all ``0.0`` for no strategy labels.

    Raises:
        ValueError: If a label is not in ``LABELS``.
    """
    counts = Counter(labels)
    unknown = sorted(set(counts) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown strategy labels {unknown}; expected one of {LABELS}")
    total = sum(counts[label] for label in STRATEGY_LABELS)
    return {label: (counts[label] / total if total else 0.0) for label in STRATEGY_LABELS}


def strategies_per_question(solved: Iterable[Sequence[Sequence[str]]]) -> float:
    """Mean number of distinct strategies that solve a question.

    An episode's strategy is its ``strategy_signature`` (labels in order, errors left out); for each
    question, the distinct strategies among its successful samples are counted, and the counts
    are averaged over the questions solved at least once.

    Args:
        solved: Per question, the label sequences of its successful episodes.

    Returns:
        The mean count (>= 1), or NaN when no question was solved.
    """
    counts = [len({strategy_signature(seq) for seq in episodes}) for episodes in solved if episodes]
    return math.fsum(counts) / len(counts) if counts else math.nan


def error_rate(labels: Iterable[str]) -> float:
    """Share of queries whose label is an error (``wrong_entity``); ``0.0`` for no queries."""
    counts = Counter(labels)
    total = sum(counts.values())
    return sum(counts[label] for label in ERROR_LABELS) / total if total else 0.0


def dominant_strategy(labels: Iterable[str]) -> str | None:
    """Most frequent strategy label: ``argmax_l count(l)``.

    Ties go to the label that comes first in ``STRATEGY_LABELS``.

    Args:
        labels: Strategy labels, each one of ``STRATEGY_LABELS``.

    Returns:
        The dominant label, or ``None`` for no labels.

    Raises:
        ValueError: If a label is not in ``STRATEGY_LABELS``.
    """
    dist = strategy_distribution(labels)
    best = max(STRATEGY_LABELS, key=lambda label: dist[label])  # max keeps the first of ties
    return best if dist[best] > 0 else None


def distinct_n(queries: Iterable[str], n: int) -> float:
    """Distinct-n of a set of queries: ``|distinct n-grams| / |n-grams|``.

    Each query is lowercased and split on whitespace; n-grams are taken within each query
    (never across two queries) and pooled over all queries.

    Args:
        queries: Query strings.
        n: The n-gram length (``n >= 1``).

    Returns:
        The ratio in ``(0, 1]``; ``0.0`` when there are no n-grams.

    Raises:
        ValueError: If ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams: list[tuple[str, ...]] = []
    for query in queries:
        tokens = query.lower().split()
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    if not grams:
        return 0.0
    return len(set(grams)) / len(grams)


def _normalise_query(query: str) -> str:
    return " ".join(query.lower().split())


def unique_query_ratio(groups: Iterable[Sequence[str]]) -> float:
    """Mean unique-query ratio over groups of samples of one question.

    For a group ``g`` (all queries issued by the ``k`` samples of one question, pooled),
    ``u(g) = |{norm(q) : q in g}| / |g|`` with ``norm`` = lowercase, collapse whitespace, strip.
    The result is the mean of ``u(g)`` over groups with at least one query.

    Args:
        groups: One sequence of queries per question.

    Returns:
        The mean ratio in ``(0, 1]``; ``0.0`` if no group has a query.
    """
    ratios = [len({_normalise_query(q) for q in group}) / len(group) for group in groups if group]
    if not ratios:
        return 0.0
    return math.fsum(ratios) / len(ratios)


def _unit_rows(embeddings: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Return the rows of a 2-D array scaled to unit L2 norm."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array [n, dim], got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0.0):
        raise ValueError("embeddings contain an all-zero row; cosine similarity is undefined")
    return x / norms


def vendi_score(embeddings: npt.ArrayLike) -> float:
    """Vendi score of a set of embeddings under cosine similarity.

    With ``K[i, j] = cos(x_i, x_j)`` and ``lambda_1..lambda_n`` the eigenvalues of ``K / n``
    (tiny negative ones clipped to 0), ``VS = exp(-sum_i lambda_i * ln lambda_i)``: the
    effective number of distinct items. ``n`` identical rows give 1, ``n`` orthogonal rows give
    ``n``.

    Args:
        embeddings: Array of shape ``[n, dim]``, one row per item (e.g. per query).

    Returns:
        The Vendi score in ``[1, n]``; ``0.0`` for ``n == 0``.

    Raises:
        ValueError: If the array is not 2-D or has an all-zero row.
    """
    x = _unit_rows(embeddings)
    n = x.shape[0]
    if n == 0:
        return 0.0
    eigenvalues = np.clip(np.linalg.eigvalsh((x @ x.T) / n), 0.0, None)
    eigenvalues = eigenvalues / eigenvalues.sum()  # trace(K / n) = 1 up to rounding
    positive = eigenvalues[eigenvalues > 0.0]
    return float(np.exp(-np.sum(positive * np.log(positive))))


def mean_pairwise_distance(embeddings: npt.ArrayLike) -> float:
    """Mean cosine distance over unordered pairs of rows.

    ``(2 / (n (n - 1))) * sum_{i < j} (1 - cos(x_i, x_j))``.

    Args:
        embeddings: Array of shape ``[n, dim]``.

    Returns:
        The mean distance in ``[0, 2]``; ``0.0`` if there are fewer than 2 rows.

    Raises:
        ValueError: If the array is not 2-D or has an all-zero row.
    """
    x = _unit_rows(embeddings)
    n = x.shape[0]
    if n < 2:
        return 0.0
    upper = np.triu_indices(n, k=1)
    return float(np.mean(1.0 - (x @ x.T)[upper]))


def searches_entropy(counts: Iterable[int]) -> float:
    """Entropy (bits) of the searches-per-episode distribution: ``entropy_bits(counts)``.

    Args:
        counts: Number of searches of each episode.

    Returns:
        The entropy in bits; ``0.0`` for no episodes.
    """
    return entropy_bits(int(c) for c in counts)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator of Chen et al. 2021: ``1 - C(n - c, k) / C(n, k)``.

    The probability that at least one of ``k`` samples drawn without replacement from ``n``
    samples (``c`` of them correct) is correct. Computed in the stable product form
    ``1 - prod_{i = n - c + 1}^{n} (1 - k / i)``; it is exactly 1 when ``n - c < k``.
    For ``k = 1`` it equals ``c / n``.

    Args:
        n: Number of samples drawn for the question.
        c: Number of correct samples.
        k: The k of pass@k (``1 <= k <= n``).

    Returns:
        The estimate in ``[0, 1]``.

    Raises:
        ValueError: If an argument is negative, ``k < 1``, ``k > n`` or ``c > n``.
    """
    if n < 0 or c < 0 or k < 0:
        raise ValueError(f"pass_at_k arguments must be non-negative, got n={n}, c={c}, k={k}")
    if k < 1:
        raise ValueError(f"pass_at_k needs k >= 1, got k={k}")
    if k > n:
        raise ValueError(f"pass_at_k needs k <= n (k samples out of n), got n={n}, k={k}")
    if c > n:
        raise ValueError(f"pass_at_k needs c <= n (correct out of n), got n={n}, c={c}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def mean_pass_at_k(correct_per_question: Iterable[Sequence[bool]], k: int) -> float:
    """Mean of :func:`pass_at_k` over questions.

    For each question, ``n`` is the number of samples and ``c`` the number marked correct.

    Args:
        correct_per_question: Per question, one correctness flag per sample.
        k: The k of pass@k; every question needs at least ``k`` samples.

    Returns:
        The mean pass@k; ``nan`` for no questions (0.0 would read as a measured failure).

    Raises:
        ValueError: As :func:`pass_at_k`, e.g. if a question has fewer than ``k`` samples.
    """
    scores = [
        pass_at_k(len(flags), sum(bool(f) for f in flags), k) for flags in correct_per_question
    ]
    if not scores:
        return float("nan")
    return math.fsum(scores) / len(scores)


def token_entropy_stats(
    entropies: npt.ArrayLike,
    agent_mask: npt.ArrayLike,
    query_mask: npt.ArrayLike,
    answer_mask: npt.ArrayLike,
    forking_threshold: float = FORKING_THRESHOLD_NATS,
) -> dict[str, float]:
    """Token-entropy summary over agent, query ("planning") and answer ("execution") tokens.

    With ``H_t`` the per-token entropy in nats and ``A``, ``Qm``, ``Am`` the boolean masks:

    - ``entropy_all = mean(H_t for t in A)``;
    - ``entropy_query = mean(H_t for t in Qm & A)``;
    - ``entropy_answer = mean(H_t for t in Am & A)``;
    - ``forking_share = |{t in A : H_t > forking_threshold}| / |A|``.

    Query and answer tokens are agent tokens, so their masks are intersected with
    ``agent_mask``. A selection with no tokens gives ``nan`` (not 0.0, which would read as a
    measured, fully confident policy). The default threshold of 0.672 nats is the
    80th-percentile token entropy reported by Wang et al. 2025 (arXiv 2506.01939).

    Args:
        entropies: Per-token entropies in nats, any shape (e.g. ``[batch, seq]``).
        agent_mask: True on tokens the agent generated (False on prompt, environment, padding).
        query_mask: True on tokens inside search queries.
        answer_mask: True on tokens inside the final answer.
        forking_threshold: Entropy (nats) above which a token counts as forking.

    Returns:
        A dict with keys ``entropy_all``, ``entropy_query``, ``entropy_answer`` and
        ``forking_share``.

    Raises:
        ValueError: If a mask's shape differs from the shape of ``entropies``.
    """
    h = np.asarray(entropies, dtype=np.float64)
    agent = _bool_mask(agent_mask, h.shape, "agent_mask")
    query = _bool_mask(query_mask, h.shape, "query_mask") & agent
    answer = _bool_mask(answer_mask, h.shape, "answer_mask") & agent
    n_agent = int(agent.sum())
    return {
        "entropy_all": _masked_mean(h, agent),
        "entropy_query": _masked_mean(h, query),
        "entropy_answer": _masked_mean(h, answer),
        "forking_share": (
            float(np.count_nonzero(h[agent] > forking_threshold)) / n_agent
            if n_agent
            else float("nan")
        ),
    }


def _bool_mask(mask: npt.ArrayLike, shape: tuple[int, ...], name: str) -> npt.NDArray[np.bool_]:
    m = np.asarray(mask, dtype=bool)
    if m.shape != shape:
        raise ValueError(f"{name} has shape {m.shape}, expected the entropies' shape {shape}")
    return m


def _masked_mean(values: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_]) -> float:
    selected = values[mask]
    return float(selected.mean()) if selected.size else float("nan")

