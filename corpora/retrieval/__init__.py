"""Retrieval backends behind one batched protocol."""

from corpora.retrieval.base import Hit, Retriever

__all__ = ["Hit", "Retriever"]
