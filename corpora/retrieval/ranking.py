"""Deterministic top-k selection shared by the backends: best score first, ties by corpus order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from corpora.retrieval.base import Hit


def check_search_args(queries: list[str], k: int) -> None:
    """Reject the common mistakes: one string instead of a list, a negative ``k``."""
    if isinstance(queries, str):
        raise TypeError("search() takes a list of queries; wrap a single query as [query]")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")


def top_k_positions(scores: np.ndarray, k: int, *, positive_only: bool) -> np.ndarray:
    """Positions of the ``k`` best scores, sorted by (-score, position).

    Args:
        scores: One score per document, in corpus order.
        k: How many to return at most (fewer when the corpus, or the positive scores, run out).
        positive_only: Keep only documents with a score above zero.

    Returns:
        An int array of corpus positions. Ties at the cut-off are resolved by position too, so
        the result never depends on how the partial sort happens to order equal scores.
    """
    if k <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64)
    candidates = np.flatnonzero(scores > 0) if positive_only else np.arange(scores.size)
    if candidates.size > k:
        cand_scores = scores[candidates]
        cut = candidates.size - k
        kth_best = np.partition(cand_scores, cut)[cut]
        candidates = candidates[cand_scores >= kth_best]
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[:k]]


def hits_at(positions: np.ndarray, scores: np.ndarray, doc_ids: Sequence[str]) -> list[Hit]:
    """Turn corpus positions into ``Hit`` objects."""
    return [Hit(doc_ids[int(p)], float(scores[p])) for p in positions]


def sort_candidates(
    positions: np.ndarray, scores: np.ndarray, k: int, *, decimals: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sort a candidate list (e.g. from FAISS) by (-score, position) and keep ``k``.

    ``decimals`` rounds the scores used as the sort key only, so that float noise between
    identical documents (embedded in different batches) still counts as a tie.
    """
    keep = positions >= 0
    positions, scores = positions[keep], scores[keep]
    key = np.round(scores, decimals) if decimals is not None else scores
    order = np.lexsort((positions, -key))[:k]
    return positions[order], scores[order]
