"""The retriever protocol every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from corpora.records import Document


@dataclass(frozen=True)
class Hit:
    """One retrieved document: its id and the backend's score (higher is better).

    Attributes:
        doc_id: The document's id.
        score: The backend's score.
        document: The document itself when the backend has it from elsewhere than the local
            corpus (a remote server sends it); ``None`` when the corpus holds it under
            ``doc_id``. Not part of equality or hashing: two hits are equal when their ids and
            scores are.
    """

    doc_id: str
    score: float
    document: Document | None = field(default=None, compare=False, repr=False)


@runtime_checkable
class Retriever(Protocol):
    """A batched search backend over one corpus."""

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Return the top ``k`` hits for each query, best first, ties broken by corpus order."""
        ...
