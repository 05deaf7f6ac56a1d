"""Read JSON lists, JSONL and gzipped JSONL data files, with errors that say where and how to fix.

Every record comes with its location: ``path:line`` for a JSONL line, ``path:line: record N``
for the N-th item of a JSON list (the line it starts on). Beyond what ``json`` refuses, a
record is refused when an object repeats a key, when it nests deeper than the JSON reader can
follow, or when a number is too long to read; a file without any record is refused too.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

from corpora.formats.errors import CorpusFormatError, format_error
from corpora.formats.textio import PathLike, existing_file, first_byte, iter_lines, read_text

#: One decoded JSON object.
Record: TypeAlias = dict[str, Any]

#: Nesting depth reported when the JSON reader gives up (it stops near the recursion limit).
DEEP = 500
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')  # strings are skipped whole


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object)


def iter_jsonl(
    path: PathLike, option: str = "path", what: str = "documents"
) -> Iterator[tuple[str, Record]]:
    """Yield ``(where, record)`` for each non-blank line of a (possibly gzipped) JSONL file.

    Args:
        path: The file.
        option: The loader option that names it, for messages.
        what: What the file should hold (``"documents"``, ``"questions"``), for messages.

    Raises:
        FileNotFoundError: The file does not exist.
        CorpusFormatError: A line is not a JSON object, the file is not (gzipped) UTF-8, or it
            holds no record at all.
    """
    file = existing_file(path, option)
    lines = 0
    records = 0
    for lineno, line in iter_lines(file):
        lines = lineno
        if line.strip():
            where = f"{file}:{lineno}"
            records += 1
            yield where, _as_object(_decode(line, where, file, lineno), where)
    if not records:
        detail = f"has {lines} line{'s' * (lines != 1)}, all blank" if lines else "is empty"
        raise _no_records(file, what, detail, option)


def iter_records(
    path: PathLike, option: str = "path", what: str = "documents"
) -> Iterator[tuple[str, Record]]:
    """Yield ``(where, record)`` from a JSON list or a JSONL file, told apart by content.

    A file whose first non-blank character is ``[`` is a JSON list; anything else is JSONL.
    Arguments and errors are those of ``iter_jsonl``.
    """
    file = existing_file(path, option)
    if first_byte(file) != b"[":
        yield from iter_jsonl(file, option, what)
        return
    empty = True
    for where, value in _list_items(read_text(file), file):
        empty = False
        yield where, _as_object(value, where)
    if empty:
        raise _no_records(file, what, "holds an empty JSON list", option)


def _list_items(text: str, file: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, value)`` for each item of the JSON list that ``text`` holds."""
    lineno, counted, number = 1, 0, 0
    try:
        pos = _skip(text, 0)
        if not text.startswith("[", pos):
            raise json.JSONDecodeError("Expecting value", text, pos)
        pos = _skip(text, pos + 1)
        if text.startswith("]", pos):
            pos = _skip(text, pos + 1)
        else:
            while True:
                lineno += text.count("\n", counted, pos)
                counted, number = pos, number + 1
                where = f"{file}:{lineno}: record {number}"
                value, pos = _parse(text, pos, where, file)
                yield where, value
                pos = _skip(text, pos)
                if text.startswith("]", pos):
                    pos = _skip(text, pos + 1)
                    break
                if not text.startswith(",", pos):
                    raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
                pos = _skip(text, pos + 1)
        if pos != len(text):
            raise json.JSONDecodeError("Extra data", text, pos)
    except json.JSONDecodeError as err:
        raise _json_error(f"{file}:{err.lineno}", err, "fix the file") from None


def _decode(line: str, where: str, file: Path, lineno: int) -> Any:
    """Decode one JSONL line."""
    try:
        value, end = _parse(line, _skip(line, 0), where, file, lineno)
        if _skip(line, end) != len(line):
            raise json.JSONDecodeError("Extra data", line, _skip(line, end))
    except json.JSONDecodeError as err:
        raise _json_error(where, err, "fix or remove that line") from None
    return value


def _parse(text: str, pos: int, where: str, file: Path, first_line: int = 1) -> tuple[Any, int]:
    """Decode the JSON value at ``text[pos:]``; return it and where it ends.

    Raises:
        json.JSONDecodeError: Invalid JSON, for the caller to locate.
        CorpusFormatError: A repeated key, a value nested too deeply, an unreadable number.
    """
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise _too_deep(text, pos, file, first_line) from None
    except _RepeatedKey as err:
        raise format_error(
            where, f"key {err.key!r} appears twice in one object", "keep one of the two values"
        ) from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise format_error(
            where, f"a number that cannot be read ({err})", "write it as a string or remove it"
        ) from None


def _skip(text: str, pos: int) -> int:
    """The position of the first non-white-space character at or after ``pos``."""
    return _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]


def _too_deep(text: str, start: int, file: Path, first_line: int = 1) -> CorpusFormatError:
    """The error for a value nested too deeply, located where it passes ``DEEP`` levels."""
    depth, pos = 0, start
    for token in _BRACKETS.finditer(text, start):
        if token.group() in "[{":
            depth += 1
            if depth > DEEP:
                pos = token.start()
                break
        elif token.group() in "]}":
            depth -= 1
    lineno = first_line + text.count("\n", 0, pos)
    column = pos - text.rfind("\n", 0, pos)
    return format_error(
        f"{file}:{lineno}",
        f"a value nested more than {DEEP} levels deep (column {column}); the JSON reader stops "
        f"at about {sys.getrecursionlimit()} levels",
        "flatten that value or remove the record",
    )


def _json_error(where: str, err: json.JSONDecodeError, fix: str) -> CorpusFormatError:
    return format_error(where, f"invalid JSON ({err.msg} at column {err.colno})", fix)


def _no_records(file: Path, what: str, detail: str, option: str) -> CorpusFormatError:
    return format_error(
        str(file), f"no {what} in {file.name}: the file {detail}",
        f"fill it, or point {option}= at another file",
    )


def _as_object(value: Any, where: str) -> Record:
    if not isinstance(value, dict):
        raise format_error(
            where, f"expected a JSON object, got {type(value).__name__}", "fix that record"
        )
    return value
