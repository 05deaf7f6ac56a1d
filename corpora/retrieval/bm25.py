"""Lexical BM25 retrieval: ``bm25s`` (fast, cached) and ``rank_bm25`` (the reference).

Both backends share ``corpora.retrieval.text.tokenize`` and index ``title + " " + text``.

Scoring: BM25 with ``k1`` and ``b`` (1.5 and 0.75 by default, as in ``rank_bm25.BM25Okapi``).
``BM25Retriever`` uses bm25s' ``lucene`` method, the one closest to ``BM25Okapi`` in practice.
The two differ only in idf (the term-frequency part is the same up to BM25Okapi's constant
``(k1 + 1)`` factor, which Lucene, and therefore bm25s, leaves out):

* BM25Okapi: ``log((N - df + 0.5) / (df + 0.5))``, which is negative for a term in more than
  half of the documents; such terms get ``epsilon * mean idf`` instead.
* lucene: ``log(1 + (N - df + 0.5) / (df + 0.5))``, always positive.

bm25s' ``robertson`` method has BM25Okapi's idf formula but clamps it to 0 for terms in more
than half of the documents, so in small corpora a query whose terms are all common matched
nothing at all (top-10 overlap with BM25Okapi on synthetic-small: 0.75). ``lucene`` agrees best:
top-1 0.986 and top-10 overlap 0.982 on synthetic-small's questions, 1.000 and 0.996 on the
hotpotqa sample. Scores are therefore on Lucene's scale, not BM25Okapi's.

Results (both backends):

* a query with no indexable token (empty, or stopwords only) gets ``[]``;
* only documents with a score above zero are returned (documents sharing no query term are
  not hits), so a query gets at most ``k`` hits, fewer when fewer documents match, and ``k``
  larger than the corpus never raises;
* hits are sorted by (-score, corpus position): equal scores keep corpus order.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from corpora.records import Corpus
from corpora.retrieval.base import Hit
from corpora.retrieval.cache import CacheStatus, IndexCache
from corpora.retrieval.ranking import check_search_args, hits_at, top_k_positions
from corpora.retrieval.text import TOKENIZER_VERSION, document_text, tokenize

#: bm25s method used by ``BM25Retriever`` (see the module docstring).
BM25S_METHOD = "lucene"


def _check_params(k1: float, b: float) -> None:
    if k1 < 0:
        raise ValueError(f"k1 must be >= 0, got {k1}")
    if not 0.0 <= b <= 1.0:
        raise ValueError(f"b must be in [0, 1], got {b}")


def _import_bm25s() -> Any:
    # bm25s sets its logger to DEBUG when imported, which overrides the application's choice
    # (a root logger at INFO, as in the CLIs) and prints "Building index from tokens" and the
    # like on every build; restore the level it had before.
    logger = logging.getLogger("bm25s")
    level = logger.level
    try:
        import bm25s
    except ImportError as err:  # pragma: no cover - bm25s is a dependency
        raise ImportError("BM25Retriever needs bm25s: pip install bm25s") from err
    finally:
        logger.setLevel(level)
    return bm25s


class BM25Retriever:
    """BM25 on ``bm25s``: the fast default lexical retriever, with an on-disk index cache.

    Args:
        corpus: The documents to index.
        k1: Term-frequency saturation.
        b: Length normalization.
        cache: Load the index from (and save it to) the index cache; ``False`` always builds.
        cache_dir: Cache root; default ``corpora.paths.cache_dir() / "indexes"``.

    Attributes:
        corpus: The indexed corpus.
        cache_status: ``loaded``, ``built``, ``rebuilt`` or ``disabled``.
    """

    name = "bm25"

    def __init__(
        self,
        corpus: Corpus,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        _check_params(k1, b)
        self.corpus = corpus
        self.k1 = float(k1)
        self.b = float(b)
        self._doc_ids = [doc.doc_id for doc in corpus.documents]
        self.cache_status: CacheStatus = "disabled"
        self._model: Any = None
        if not cache:
            self._model = self._build()
        else:
            self._model, self.cache_status = IndexCache(cache_dir).load_or_build(
                corpus, "bm25s", self.settings, build=self._build, save=_save, load=self._load
            )

    @property
    def settings(self) -> dict[str, Any]:
        """Everything that changes the index (hashed into the cache key)."""
        return {
            "k1": self.k1,
            "b": self.b,
            "method": BM25S_METHOD,
            "tokenizer": TOKENIZER_VERSION,
            "text": "title+text",
        }

    def _build(self) -> Any:
        bm25s = _import_bm25s()
        tokens = [tokenize(document_text(doc)) for doc in self.corpus.documents]
        if not any(tokens):
            return None  # nothing indexable: every query gets []
        model = bm25s.BM25(k1=self.k1, b=self.b, method=BM25S_METHOD)
        model.index(tokens, show_progress=False)
        return model

    def _load(self, path: Path) -> Any:
        if (path / "empty").is_file():
            return None
        model = _import_bm25s().BM25.load(str(path), show_progress=False)
        if int(model.scores["num_docs"]) != len(self._doc_ids):
            raise ValueError("cached index has a different number of documents")
        return model

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top ``k`` hits per query (see the module docstring for the rules)."""
        check_search_args(queries, k)
        out: list[list[Hit]] = []
        for query in queries:
            ids = self._model.get_tokens_ids(tokenize(query)) if self._model is not None else []
            if not ids or k == 0:
                out.append([])
                continue
            scores = self._model.get_scores_from_ids(ids)
            positions = top_k_positions(scores, k, positive_only=True)
            out.append(hits_at(positions, scores, self._doc_ids))
        return out


def _save(model: Any, path: Path) -> None:
    if model is None:
        (path / "empty").write_text("no indexable tokens\n")
    else:
        model.save(str(path), show_progress=False)


class RankBM25Retriever:
    """BM25 on ``rank_bm25.BM25Okapi``: the slow, uncached reference for ``BM25Retriever``.

    Args:
        corpus: The documents to index.
        k1: Term-frequency saturation.
        b: Length normalization.
        epsilon: BM25Okapi's floor for negative idf, as a fraction of the mean idf.

    Attributes:
        corpus: The indexed corpus.
    """

    name = "rank_bm25"

    def __init__(
        self, corpus: Corpus, *, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25
    ) -> None:
        _check_params(k1, b)
        try:
            from rank_bm25 import BM25Okapi
        except ImportError as err:  # pragma: no cover - rank_bm25 is a dependency
            raise ImportError("RankBM25Retriever needs rank_bm25: pip install rank-bm25") from err
        self.corpus = corpus
        self._doc_ids = [doc.doc_id for doc in corpus.documents]
        tokens = [tokenize(document_text(doc)) for doc in corpus.documents]
        # BM25Okapi divides by the mean idf and the mean length: both are undefined without tokens.
        self._model = BM25Okapi(tokens, k1=k1, b=b, epsilon=epsilon) if any(tokens) else None

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top ``k`` hits per query (same rules as ``BM25Retriever``)."""
        check_search_args(queries, k)
        out: list[list[Hit]] = []
        model = self._model
        for query in queries:
            tokens = [t for t in tokenize(query) if model is not None and t in model.idf]
            if model is None or not tokens or k == 0:
                out.append([])
                continue
            scores = np.asarray(model.get_scores(tokens), dtype=np.float64)
            positions = top_k_positions(scores, k, positive_only=True)
            out.append(hits_at(positions, scores, self._doc_ids))
        return out
