"""Read JSON, JSONL and gzipped JSONL data files, with errors that say where and how to fix."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeAlias

from corpora.paths import data_dir

#: A file location as users pass it.
PathLike: TypeAlias = str | os.PathLike[str]
#: One or several files.
PathOption: TypeAlias = PathLike | Sequence[PathLike]
#: One decoded JSON object.
Record: TypeAlias = dict[str, Any]


class CorpusFormatError(ValueError):
    """A data file breaks its format.

    The message starts with the location (``path:line`` for JSONL, ``path: record N`` for a JSON
    list), then says what is wrong and what to do about it.
    """


def format_error(where: str, problem: str, fix: str) -> CorpusFormatError:
    """Build a ``CorpusFormatError`` reading ``"{where}: {problem}; {fix}"``."""
    return CorpusFormatError(f"{where}: {problem}; {fix}")


def existing_file(path: PathLike, option: str = "path") -> Path:
    """Return ``path`` as a ``Path``, or raise ``FileNotFoundError`` with a hint.

    Args:
        path: The file (or folder) to check.
        option: The loader option that sets this path, named in the hint.
    """
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(
            f"{resolved}: no such file or folder; pass {option}=... to the loader, or set "
            f"$FORKSEARCH_DATA_DIR (now {data_dir()}) to the folder that holds the sample data"
        )
    return resolved


def as_paths(option: PathOption | None, defaults: Sequence[Path]) -> list[Path]:
    """Turn a ``path`` option (one path, several, or ``None`` for ``defaults``) into a list."""
    if option is None:
        return list(defaults)
    if isinstance(option, (str, os.PathLike)):
        return [Path(option)]
    return [Path(p) for p in option]


def open_text(path: Path) -> IO[str]:
    """Open a UTF-8 text file, decompressing it when its name ends in ``.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def iter_jsonl(path: PathLike, option: str = "path") -> Iterator[tuple[str, Record]]:
    """Yield ``(where, record)`` for each non-blank line of a (possibly gzipped) JSONL file.

    Raises:
        FileNotFoundError: The file does not exist.
        CorpusFormatError: A line is not a JSON object, or the file is not (gzipped) UTF-8.
    """
    file = existing_file(path, option)
    lineno = 0
    try:
        with open_text(file) as lines:
            for lineno, line in enumerate(lines, 1):
                if line.strip():
                    where = f"{file}:{lineno}"
                    yield where, _as_object(_decode(line, where), where)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise _unreadable(f"{file}:{lineno + 1}", err) from err


def read_json(path: PathLike, option: str = "path") -> Any:
    """Decode a whole (possibly gzipped) JSON file."""
    file = existing_file(path, option)
    try:
        with open_text(file) as handle:
            text = handle.read()
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise _unreadable(str(file), err) from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _json_error(f"{file}:{err.lineno}", err, "fix the file") from None


def iter_records(path: PathLike, option: str = "path") -> Iterator[tuple[str, Record]]:
    """Yield ``(where, record)`` from a JSON list or a JSONL file, told apart by content.

    A file whose first non-blank character is ``[`` is a JSON list; anything else is JSONL.
    """
    file = existing_file(path, option)
    if _first_char(file) != "[":
        yield from iter_jsonl(file, option)
        return
    for number, value in enumerate(read_json(file, option), 1):
        where = f"{file}: record {number}"
        yield where, _as_object(value, where)


def require(
    record: Record,
    name: str,
    where: str,
    expected: Sequence[str],
    kind: type | tuple[type, ...] = str,
) -> Any:
    """Return ``record[name]``, raising a ``CorpusFormatError`` if it is missing or mistyped.

    Args:
        record: The decoded record.
        name: The field to read.
        where: The record's location, for the message.
        expected: All the fields the format requires, listed in the message.
        kind: The accepted Python type(s) of the value.
    """
    if name not in record:
        raise format_error(
            where,
            f"missing field {name!r} (expected fields: {', '.join(expected)})",
            "add it or remove that record",
        )
    return check_type(record[name], name, where, kind)


def check_type(value: Any, name: str, where: str, kind: type | tuple[type, ...]) -> Any:
    """Return ``value`` if it has type ``kind``, else raise a ``CorpusFormatError``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise format_error(
            where,
            f"field {name!r} should be {wanted}, got {type(value).__name__}",
            "fix that record",
        )
    return value


def _decode(line: str, where: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise _json_error(where, err, "fix or remove that line") from None


def _unreadable(where: str, err: Exception) -> CorpusFormatError:
    return format_error(where, f"unreadable ({err})", "check that it is UTF-8 or gzip text")


def _json_error(where: str, err: json.JSONDecodeError, fix: str) -> CorpusFormatError:
    return format_error(where, f"invalid JSON ({err.msg} at column {err.colno})", fix)


def _as_object(value: Any, where: str) -> Record:
    if not isinstance(value, dict):
        raise format_error(
            where, f"expected a JSON object, got {type(value).__name__}", "fix that record"
        )
    return value


def _first_char(file: Path) -> str:
    try:
        with open_text(file) as handle:
            while chunk := handle.read(4096):
                if stripped := chunk.lstrip():
                    return stripped[0]
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise _unreadable(str(file), err) from err
    return ""
