"""Query embeddings for the diversity metrics, computed once per unique query per run.

``forksearch-bench`` embeds up to 512 queries of every agent for the Vendi score and the mean
pairwise distance (:func:`agents.evaluation.diversity_metrics`). Agents repeat one another's
queries (every verbatim agent sends the question itself) and their own (one query per sample),
so on the default synthetic bench only about 900 of the 4,250 embedded queries are distinct.
:class:`CachedQueryEmbedder` encodes each distinct query once, in one batched call per request,
and serves repeats from memory. The rows it returns are the encoder's, so the metrics are
unchanged: every requested query (repeats included) keeps its row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Encodes a list of texts into an ``[n, d]`` array (the shape of ``agents.evaluation.Embedder``).
EncodeFn = Callable[[list[str]], np.ndarray]

def sentence_encoder(model: str | None = None, device: str | None = None,
                     batch_size: int = 128) -> EncodeFn:
    """An :data:`EncodeFn` over a sentence-transformers model, loaded on its first call.

    Args:
        model: Encoder name or folder; ``None`` is the bundled all-MiniLM-L6-v2
            (``corpora.retrieval.dense.load_encoder``, which loads each model once per process).
        device: Torch device; ``None`` lets sentence-transformers pick.
        batch_size: Texts per forward pass. sentence-transformers sorts the texts by length
            before batching, so padding is already small.

    Returns:
        A function mapping texts to L2-normalized ``float32`` rows, in input order.
    """
    def encode(texts: list[str]) -> np.ndarray:
        from corpora.retrieval.dense import load_encoder

        encoder = load_encoder(model, device)
        vectors = encoder.encode(texts, normalize_embeddings=True, batch_size=batch_size,
                                 convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    return encode


class CachedQueryEmbedder:
    """An ``agents.evaluation.Embedder`` that encodes each distinct query once.

    Each call encodes the queries it has not seen before in one batched call to ``encode``
    (none, and no model load, when all are known) and returns one row per requested query, in
    the order asked, repeats included.

    Args:
        encode: The encoder; ``None`` is :func:`sentence_encoder` with its defaults (MiniLM,
            loaded on the first call that needs it).

    Attributes:
        encoded: Queries sent to the encoder so far: the distinct queries cached.
        requested: Queries asked for so far (repeats included).
    """

    def __init__(self, encode: EncodeFn | None = None) -> None:
        self._encode = encode if encode is not None else sentence_encoder()
        self._rows: dict[str, np.ndarray] = {}
        self.encoded = 0
        self.requested = 0

    def __call__(self, queries: list[str]) -> np.ndarray:
        """The ``[len(queries), d]`` embeddings of ``queries``, in their order."""
        self.requested += len(queries)
        unseen = list(dict.fromkeys(q for q in queries if q not in self._rows))
        if unseen:
            vectors = np.asarray(self._encode(unseen))
            if vectors.shape[0] != len(unseen):
                raise ValueError(f"the encoder returned {vectors.shape[0]} rows for "
                                 f"{len(unseen)} texts")
            self._rows.update(zip(unseen, vectors))
            self.encoded += len(unseen)
        if not queries:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._rows[q] for q in queries])

    @property
    def dim(self) -> int:
        """Embedding width (0 until something was encoded)."""
        return len(next(iter(self._rows.values()))) if self._rows else 0
