"""``make_retriever(kind, corpus, **options)``: every retrieval backend behind one name."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from corpora.records import Corpus
from corpora.registry import unknown_name_error
from corpora.retrieval.base import Retriever
from corpora.retrieval.bm25 import BM25Retriever, RankBM25Retriever
from corpora.retrieval.dense import DenseRetriever
from corpora.retrieval.hybrid import HybridRetriever
from corpora.retrieval.remote import RemoteRetriever

#: Options that ``hybrid`` hands on to every sub-retriever that accepts them.
_SHARED_HYBRID_OPTIONS = ("cache", "cache_dir")


def _make_hybrid(
    corpus: Corpus | None,
    *,
    kinds: Sequence[str] = ("bm25", "dense"),
    weights: Sequence[float] | None = None,
    rrf_k: float = 60,
    depth: int | None = None,
    kind_options: Mapping[str, Mapping[str, Any]] | None = None,
    cache: bool = True,
    cache_dir: str | None = None,
) -> Retriever:
    """Build a ``HybridRetriever`` over retrievers made by ``make_retriever``.

    Args:
        corpus: Corpus handed to every sub-retriever.
        kinds: Sub-retriever kinds (any but ``hybrid``).
        weights: One RRF weight per kind; default all 1.
        rrf_k: The RRF constant.
        depth: Candidates fetched per sub-retriever; default ``max(4 * k, 20)``.
        kind_options: Options per kind, e.g. ``{"dense": {"index": "hnsw"}}``.
        cache: Passed to every sub-retriever that takes it.
        cache_dir: Passed to every sub-retriever that takes it.
    """
    if isinstance(kinds, str):
        kinds = (kinds,)
    if not kinds:
        raise ValueError("hybrid needs at least one kind")
    if "hybrid" in kinds:
        raise ValueError("hybrid cannot contain hybrid")
    kind_options = dict(kind_options or {})
    stray = sorted(set(kind_options) - set(kinds))
    if stray:
        raise ValueError(f"kind_options for kinds not in {tuple(kinds)}: {', '.join(stray)}")
    shared = {"cache": cache, "cache_dir": cache_dir}
    retrievers = []
    for kind in kinds:
        allowed = _allowed_options(kind)
        options = {name: shared[name] for name in _SHARED_HYBRID_OPTIONS if name in allowed}
        options.update(kind_options.get(kind, {}))
        retrievers.append(make_retriever(kind, corpus, **options))
    return HybridRetriever(retrievers, weights=weights, rrf_k=rrf_k, depth=depth, corpus=corpus)


_FACTORIES: dict[str, Callable[..., Retriever]] = {
    "bm25": BM25Retriever,
    "rank_bm25": RankBM25Retriever,
    "dense": DenseRetriever,
    "hybrid": _make_hybrid,
    "remote": RemoteRetriever,
}
#: Kinds that work without a local corpus.
_CORPUS_OPTIONAL = frozenset({"remote"})


def available_retrievers() -> list[str]:
    """Names accepted by ``make_retriever``."""
    return sorted(_FACTORIES)


def _allowed_options(kind: str) -> list[str]:
    params = inspect.signature(_FACTORIES[kind]).parameters
    return [name for name in params if name not in ("self", "corpus")]


def make_retriever(kind: str = "bm25", corpus: Corpus | None = None, **options: Any) -> Retriever:
    """Build a retriever by name.

    Args:
        kind: One of ``available_retrievers()``: ``bm25`` (bm25s, cached; the default),
            ``rank_bm25`` (reference BM25), ``dense`` (sentence-transformers + FAISS),
            ``hybrid`` (reciprocal-rank fusion; options ``kinds``, ``weights``, ``rrf_k``,
            ``depth``, ``kind_options``) or ``remote`` (Search-R1 server; option ``url``).
        corpus: The documents to search (optional only for ``remote``).
        **options: Keyword arguments of the backend's constructor.

    Raises:
        ValueError: Unknown kind (with close-match suggestions), or no corpus for a local kind.
        TypeError: An option the backend does not take (naming the allowed ones).
    """
    if kind not in _FACTORIES:
        raise unknown_name_error("retriever", kind, list(_FACTORIES))
    allowed = _allowed_options(kind)
    bad = [name for name in options if name not in allowed]
    if bad:
        close = difflib.get_close_matches(bad[0], allowed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TypeError(
            f"unknown option{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} for "
            f"retriever {kind!r}; allowed options: {', '.join(allowed)}.{hint}"
        )
    if corpus is None and kind not in _CORPUS_OPTIONAL:
        raise ValueError(f"retriever {kind!r} needs a corpus")
    return _FACTORIES[kind](corpus=corpus, **options)
