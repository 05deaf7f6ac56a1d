"""``make_retriever(kind, corpus, **options)``: every retrieval backend behind one name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from corpora.records import Corpus
from corpora.registry import Registry
from corpora.retrieval.base import Retriever
from corpora.retrieval.hybrid import HybridRetriever

RETRIEVERS = Registry("retriever", {
    "bm25": "corpora.retrieval.bm25:BM25Retriever",
    "rank_bm25": "corpora.retrieval.bm25:RankBM25Retriever",
    "dense": "corpora.retrieval.dense:DenseRetriever",
    "hybrid": "corpora.retrieval.factory:make_hybrid",
    "remote": "corpora.retrieval.remote:RemoteRetriever",
})
#: Kinds that work without a local corpus (or with one that holds only questions).
_CORPUS_OPTIONAL = frozenset({"remote"})
#: Kinds that leave the check to the kinds they are built from.
_DELEGATING = frozenset({"hybrid"})
#: Kinds that keep an index cache: ``hybrid`` hands its ``cache`` and ``cache_dir`` to these.
_CACHED_KINDS = frozenset({"bm25", "dense"})


def make_hybrid(
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
        cache: Passed to every sub-retriever that keeps an index cache (``bm25``, ``dense``).
        cache_dir: Passed to every sub-retriever that keeps an index cache.
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
    retrievers = []
    for kind in kinds:
        options = {"cache": cache, "cache_dir": cache_dir} if kind in _CACHED_KINDS else {}
        options.update(kind_options.get(kind, {}))
        retrievers.append(make_retriever(kind, corpus, **options))
    return HybridRetriever(retrievers, weights=weights, rrf_k=rrf_k, depth=depth, corpus=corpus)


def available_retrievers() -> list[str]:
    """Names accepted by ``make_retriever``."""
    return RETRIEVERS.names()


def make_retriever(kind: str = "bm25", corpus: Corpus | None = None, **options: Any) -> Retriever:
    """Build a retriever by name.

    Args:
        kind: One of ``available_retrievers()``: ``bm25`` (bm25s, cached; the default),
            ``rank_bm25`` (reference BM25), ``dense`` (sentence-transformers + FAISS),
            ``hybrid`` (reciprocal-rank fusion; options ``kinds``, ``weights``, ``rrf_k``,
            ``depth``, ``kind_options``) or ``remote`` (Search-R1 server; option ``url``);
            or a ``"module:function"`` entry point of one's own.
        corpus: The documents to search (optional only for ``remote``, which also takes a
            corpus of questions without documents).
        **options: Keyword arguments of the backend's constructor.

    Raises:
        ValueError: Unknown kind (with close-match suggestions), or no corpus (or a corpus
            without documents) for a local kind.
        TypeError: An option the backend does not take (naming the allowed ones).
    """
    if kind not in _CORPUS_OPTIONAL:
        if corpus is None:
            RETRIEVERS.resolve(kind)  # an unknown kind is the better error
            raise ValueError(f"retriever {kind!r} needs a corpus")
        if not corpus.documents and kind not in _DELEGATING:
            RETRIEVERS.resolve(kind)
            raise ValueError(
                f"retriever {kind!r} indexes a local corpus, but corpus {corpus.name!r} has no "
                f"documents (only {len(corpus.questions)} questions): give the corpus its "
                "documents (e.g. path=<documents file>) or use retriever=remote, whose "
                "server holds them"
            )
    return RETRIEVERS.build(kind, corpus=corpus, **options)
