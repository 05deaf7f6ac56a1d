"""Reciprocal-rank fusion of several retrievers."""

from __future__ import annotations

import math
from collections.abc import Sequence

from corpora.records import Corpus, Document
from corpora.retrieval.base import Hit, Retriever
from corpora.retrieval.ranking import check_search_args


class HybridRetriever:
    """Fuses rankings with weighted reciprocal-rank fusion (RRF).

    A document's fused score is ``sum_i weight_i / (rrf_k + rank_i)`` over the retrievers that
    return it (``rank_i`` starts at 1). Each retriever is asked for ``depth`` candidates
    (default ``max(4 * k, 20)``), so documents just below one retriever's top ``k`` can still
    win. Ties are broken by corpus position (then doc id for documents the corpus lacks).

    Args:
        retrievers: The retrievers to fuse (all over the same corpus).
        weights: One non-negative weight per retriever; default all 1.
        rrf_k: The RRF constant; larger values flatten the rank discount.
        depth: Candidates fetched from each retriever; ``None`` means ``max(4 * k, 20)``.
        corpus: Corpus for the tie order; default the first retriever's ``corpus`` attribute.

    Attributes:
        corpus: The shared corpus (``None`` when no retriever exposes one).
    """

    name = "hybrid"

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        weights: Sequence[float] | None = None,
        rrf_k: float = 60,
        *,
        depth: int | None = None,
        corpus: Corpus | None = None,
    ) -> None:
        self.retrievers = list(retrievers)
        if not self.retrievers:
            raise ValueError("HybridRetriever needs at least one retriever")
        if weights is None:
            weights = [1.0] * len(self.retrievers)
        self.weights = [float(w) for w in weights]
        if len(self.weights) != len(self.retrievers):
            raise ValueError(
                f"got {len(self.weights)} weights for {len(self.retrievers)} retrievers"
            )
        if any(w < 0 or not math.isfinite(w) for w in self.weights) or not any(self.weights):
            raise ValueError(f"weights must be finite, >= 0 and not all 0, got {self.weights}")
        if rrf_k < 0:
            raise ValueError(f"rrf_k must be >= 0, got {rrf_k}")
        if depth is not None and depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.rrf_k = float(rrf_k)
        self.depth = depth
        corpora = [getattr(r, "corpus", None) for r in self.retrievers]
        known = [c for c in corpora if c is not None]
        self.corpus = corpus if corpus is not None else (known[0] if known else None)
        if self.corpus is not None and any(c.fingerprint != self.corpus.fingerprint for c in known):
            raise ValueError("HybridRetriever: the retrievers index different corpora")
        self._position = (
            {doc.doc_id: i for i, doc in enumerate(self.corpus.documents)}
            if self.corpus is not None
            else {}
        )

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top ``k`` fused hits per query; each retriever is called once for the whole batch."""
        check_search_args(queries, k)
        if k == 0 or not queries:
            return [[] for _ in queries]
        depth = self.depth if self.depth is not None else max(4 * k, 20)
        rankings = [r.search(list(queries), depth) for r in self.retrievers]
        out: list[list[Hit]] = []
        for qi in range(len(queries)):
            fused: dict[str, float] = {}
            documents: dict[str, Document] = {}  # kept from hits that carry one (remote ones)
            for weight, ranking in zip(self.weights, rankings, strict=True):
                for rank, hit in enumerate(ranking[qi], start=1):
                    fused[hit.doc_id] = fused.get(hit.doc_id, 0.0) + weight / (self.rrf_k + rank)
                    if hit.document is not None:
                        documents.setdefault(hit.doc_id, hit.document)
            order = sorted(
                fused.items(),
                key=lambda item: (-item[1], self._position.get(item[0], math.inf), item[0]),
            )
            out.append([Hit(doc_id, score, documents.get(doc_id))
                        for doc_id, score in order[:k] if score > 0])
        return out
