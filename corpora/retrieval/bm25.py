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

Building and loading ``bm25`` (``BM25Retriever``): the documents are streamed once through
``tokenize`` into integer ids (one vocabulary dict, compact numpy arrays per chunk of documents;
no token list per document is kept) and the score matrix is computed in numpy, bit for bit the
one ``bm25s.BM25.index`` computes from token lists (see ``build_bm25_arrays``). A cached index is
memory-mapped on load: its arrays cost almost nothing until queried, and processes that load the
same entry share one copy in the page cache. ``python benchmarks/retrieval.py --docs N``
measures build time, memory and latency against bm25s and rank_bm25.

Results (both backends):

* a query with no indexable token (empty, or stopwords only) gets ``[]``;
* only documents with a score above zero are returned (documents sharing no query term are
  not hits), so a query gets at most ``k`` hits, fewer when fewer documents match, and ``k``
  larger than the corpus never raises;
* hits are sorted by (-score, corpus position): equal scores keep corpus order.
"""

from __future__ import annotations

import logging
import math
import os
from array import array
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corpora.records import Corpus, Document
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
        arrays = build_bm25_arrays(self.corpus.documents, k1=self.k1, b=self.b)
        if arrays is None:
            return None  # nothing indexable: every query gets []
        return _model_from_arrays(arrays, k1=self.k1, b=self.b)

    def _load(self, path: Path) -> Any:
        if (path / "empty").is_file():
            return None
        # Memory-mapped: the arrays cost (almost) nothing until queried, and every process that
        # loads the entry shares one copy of them through the page cache.
        model = _import_bm25s().BM25.load(str(path), mmap=True, show_progress=False)
        model.unique_token_ids_set = None  # only for searching by token ids: search() never does
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


@dataclass
class BM25Arrays:
    """A built BM25 index in bm25s' layout: a CSC matrix of per-(document, token) scores.

    Column ``vocab[token]`` holds, in ``data[indptr[c]:indptr[c + 1]]``, the scores of the
    documents ``indices[indptr[c]:indptr[c + 1]]`` (ascending) that contain the token.
    """

    vocab: dict[str, int]
    data: np.ndarray  # float32, one score per (document, distinct token) pair
    indices: np.ndarray  # int32 document positions
    indptr: np.ndarray  # int64, len(vocab) + 1
    num_docs: int


#: Documents tokenized and counted per step of ``build_bm25_arrays``.
BUILD_CHUNK_DOCS = 32_768


def build_bm25_arrays(
    documents: Iterable[Document], *, k1: float, b: float, chunk_docs: int = BUILD_CHUNK_DOCS
) -> BM25Arrays | None:
    """Build the lucene-BM25 score matrix of ``documents``, streamed; ``None`` without tokens.

    Gives exactly the arrays ``bm25s.BM25(method="lucene").index`` computes from
    ``[tokenize(document_text(d)) for d in documents]`` (same float32 scores, same rounding),
    up to the numbering of the vocabulary (here: order of first appearance), without ever
    holding a token list per document: each chunk of documents is tokenized into integer ids
    (one growing vocabulary dict), reduced at once to its distinct (document, token) pairs and
    their counts (two compact arrays), and the pairs are scattered into the CSC arrays at the end.
    """
    vocab: defaultdict[str, int] = defaultdict()
    vocab.default_factory = vocab.__len__  # an unseen token gets the next id
    lookup = vocab.__getitem__
    lengths: list[np.ndarray] = []  # tokens per document, per chunk
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (tokens, tf, pairs per doc)

    def flush(ids: array[int], doc_lengths: array[int]) -> None:
        lens = np.frombuffer(doc_lengths, dtype=np.int64).copy()
        tok = np.frombuffer(ids, dtype=np.int32)
        width = max(len(vocab), 1)
        doc = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
        pairs, tf = np.unique(doc * width + tok, return_counts=True)  # sorted by (doc, token)
        per_doc = np.bincount(pairs // width, minlength=len(lens))
        tf_dtype = np.uint16 if tf.size == 0 or tf.max() <= np.iinfo(np.uint16).max else np.int32
        chunks.append(((pairs % width).astype(np.int32), tf.astype(tf_dtype), per_doc))
        lengths.append(lens)

    ids: array[int] = array("i")
    doc_lengths: array[int] = array("q")
    for doc in documents:
        before = len(ids)
        ids.extend(map(lookup, tokenize(document_text(doc))))
        doc_lengths.append(len(ids) - before)
        if len(doc_lengths) == chunk_docs:
            flush(ids, doc_lengths)
            ids, doc_lengths = array("i"), array("q")
    if doc_lengths:
        flush(ids, doc_lengths)
    del ids, doc_lengths
    if not vocab:
        return None

    n_vocab = len(vocab)
    all_lengths = np.concatenate(lengths)
    num_docs = len(all_lengths)
    # As bm25s: the mean of an int64 array, and a Python-float idf rounded to float32.
    avg_doc_len = all_lengths.mean()
    df = np.zeros(n_vocab, dtype=np.int64)
    for tok, _, _ in chunks:
        df += np.bincount(tok, minlength=n_vocab)
    idf = np.array(
        [math.log(1 + (num_docs - n + 0.5) / (n + 0.5)) for n in df.tolist()], dtype=np.float32
    )
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    heads = indptr[:-1].copy()  # next free slot of each column
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    indices = np.empty(int(indptr[-1]), dtype=np.int32)

    first_doc = 0
    for lens in lengths:
        tok, tf, per_doc = chunks.pop(0)
        local = np.repeat(np.arange(len(lens), dtype=np.int64), per_doc)
        # bm25s' lucene term: tf / (k1 * ((1 - b) + b * l_d / l_avg) + tf), in float64 (its
        # l_avg is a numpy float64), times the float32 idf, stored as float32.
        norm = k1 * ((1 - b) + b * lens / avg_doc_len)
        tf64 = tf.astype(np.float64)
        scores = (idf[tok].astype(np.float64) * (tf64 / (norm[local] + tf64))).astype(np.float32)
        # Scatter into the columns; a stable sort keeps each column's documents ascending.
        order = np.argsort(tok, kind="stable")
        sorted_tok = tok[order]
        rank = np.arange(len(order)) - np.searchsorted(sorted_tok, sorted_tok)
        slots = heads[sorted_tok] + rank
        data[slots] = scores[order]
        indices[slots] = (local[order] + first_doc).astype(np.int32)
        heads += np.bincount(tok, minlength=n_vocab)
        first_doc += len(lens)
    return BM25Arrays(dict(vocab), data, indices, indptr, num_docs)


def _model_from_arrays(arrays: BM25Arrays, *, k1: float, b: float) -> Any:
    """A ``bm25s.BM25`` that searches (and saves) ``arrays`` as if it had indexed them."""
    model = _import_bm25s().BM25(k1=k1, b=b, method=BM25S_METHOD)
    model.scores = {
        "data": arrays.data,
        "indices": arrays.indices,
        "indptr": arrays.indptr,
        "num_docs": arrays.num_docs,
    }
    model.vocab_dict = arrays.vocab
    model.unique_token_ids_set = None  # only bm25s' search by token ids needs it (see _load)
    model.nonoccurrence_array = None
    return model


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
