"""Recall of supporting documents: how well a retriever finds a question's evidence."""

from __future__ import annotations

from collections.abc import Sequence

from corpora.records import Question
from corpora.retrieval.base import Hit


def support_recall(questions: Sequence[Question], results: Sequence[list[Hit]], k: int) -> float:
    """Mean over questions of the share of ``supporting_ids`` found in the top ``k`` hits.

    Questions without supporting ids are skipped; 0.0 if none is left.
    """
    total, counted = 0.0, 0
    for q, hits in zip(questions, results, strict=True):
        if q.supporting_ids:
            top = {h.doc_id for h in hits[:k]}
            total += len(top & set(q.supporting_ids)) / len(q.supporting_ids)
            counted += 1
    return total / counted if counted else 0.0
