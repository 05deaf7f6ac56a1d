"""Documents, questions, corpus formats and retrievers (no Gymnasium imports here)."""

from corpora.records import Corpus, Document, Question
from corpora.registry import available, load, register_corpus
from corpora.retrieval import Hit, Retriever, available_retrievers, make_retriever

__all__ = [
    "Corpus",
    "Document",
    "Hit",
    "Question",
    "Retriever",
    "available",
    "available_retrievers",
    "load",
    "make_retriever",
    "register_corpus",
]
