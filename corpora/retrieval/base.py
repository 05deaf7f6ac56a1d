"""The retriever protocol every backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Hit:
    """One retrieved document: its id and the backend's score (higher is better)."""

    doc_id: str
    score: float


@runtime_checkable
class Retriever(Protocol):
    """A batched search backend over one corpus."""

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Return the top ``k`` hits for each query, best first, ties broken by corpus order."""
        ...
