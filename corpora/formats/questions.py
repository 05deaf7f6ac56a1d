"""Collect questions from data files: gold answers and question-id checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from corpora.formats.errors import format_error
from corpora.formats.fields import check_type
from corpora.records import Question


def answer_tuple(
    values: Iterable[object], where: str, name: str = "answers", required: bool = True
) -> tuple[str, ...]:
    """Strip and de-duplicate gold answers (order kept).

    Args:
        values: The answers as read (each must be a string that is not blank).
        where: The record's location, for the message.
        name: The field the answers came from, for the message.
        required: Whether no answer at all is a format error (``False`` for alias lists).
    """
    answers: dict[str, None] = {}
    for number, value in enumerate(values, 1):
        text = check_type(value, name, where, str).strip()
        if not text:
            raise format_error(
                where,
                f"gold answer {number} in {name!r} is blank (no gold answer may be empty)",
                "write the answer or remove it",
            )
        answers.setdefault(text)
    if required and not answers:
        raise format_error(where, f"no gold answer in {name!r}", "add one or remove that record")
    return tuple(answers)


def unique_ids(ids: Sequence[str]) -> tuple[str, ...]:
    """Drop repeated ids, keeping the first occurrence of each."""
    return tuple(dict.fromkeys(ids))


class QuestionSet:
    """Questions in load order; a repeated question id is a format error naming both places."""

    def __init__(self) -> None:
        self._questions: list[Question] = []
        self._where: dict[str, str] = {}

    def add(self, question: Question, where: str) -> None:
        """Add a question read at location ``where``."""
        if question.qid in self._where:
            raise format_error(
                where,
                f"duplicate question id {question.qid!r} (first at {self._where[question.qid]})",
                "give every question its own id, and load each file once",
            )
        self._where[question.qid] = where
        self._questions.append(question)

    def questions(self) -> tuple[Question, ...]:
        """Return all questions added so far."""
        return tuple(self._questions)
