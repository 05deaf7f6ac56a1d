"""Documents, questions, corpus formats and retrievers (no Gymnasium imports here)."""

from corpora.records import Corpus, Document, Question
from corpora.registry import available, load, register_corpus
from corpora.retrieval import Hit, Retriever
from corpora.retrieval.factory import make_retriever

__all__ = [
    "Corpus",
    "Document",
    "Hit",
    "Question",
    "Retriever",
    "available",
    "load",
    "register_corpus",
]
