"""Retrieval backends behind one batched protocol.

``make_retriever(kind, corpus, **options)`` builds any of them by name (see
``available_retrievers()``). Heavy libraries (faiss, sentence-transformers, torch, bm25s,
rank_bm25) are imported only when a backend that needs them is built.
"""

from corpora.retrieval.base import Hit, Retriever
from corpora.retrieval.bm25 import BM25Retriever, RankBM25Retriever
from corpora.retrieval.cache import IndexCache
from corpora.retrieval.dense import DenseRetriever
from corpora.retrieval.factory import available_retrievers, make_retriever
from corpora.retrieval.hybrid import HybridRetriever
from corpora.retrieval.remote import RemoteRetrievalError, RemoteRetriever
from corpora.retrieval.text import document_text, tokenize

__all__ = [
    "BM25Retriever",
    "DenseRetriever",
    "Hit",
    "HybridRetriever",
    "IndexCache",
    "RankBM25Retriever",
    "RemoteRetrievalError",
    "RemoteRetriever",
    "Retriever",
    "available_retrievers",
    "document_text",
    "make_retriever",
    "tokenize",
]
