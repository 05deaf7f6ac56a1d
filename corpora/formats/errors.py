"""The one error type of the data-file loaders, and how its messages are built."""

from __future__ import annotations


class CorpusFormatError(ValueError):
    """A data file breaks its format.

    The message starts with the location (``path:line`` for a JSONL or TSV line,
    ``path:line: record N`` for an item of a JSON list, ``path`` alone for a whole-file
    problem such as an empty file), then says what is wrong and what to do about it.
    """


def format_error(where: str, problem: str, fix: str) -> CorpusFormatError:
    """Build a ``CorpusFormatError`` reading ``"{where}: {problem}; {fix}"``."""
    return CorpusFormatError(f"{where}: {problem}; {fix}")
