r"""Read the fields of decoded records: presence, type and value checks with located errors.

Every check raises a ``CorpusFormatError`` that starts with the record's location (``where``)
and names the field. Strings are also checked for unpaired surrogate escapes (``"\ud800"``),
which JSON allows but UTF-8 cannot hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from corpora.formats.errors import format_error

Kinds = type | tuple[type, ...]


def require(
    record: dict[str, Any], name: str, where: str, expected: Sequence[str], kind: Kinds = str
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


def check_type(value: Any, name: str, where: str, kind: Kinds) -> Any:
    """Return ``value`` if it has type ``kind`` (a bool is not an int), else raise."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        shown = "null" if value is None else f"{type(value).__name__} {value!r:.40}"
        raise format_error(
            where, f"field {name!r} should be {wanted}, got {shown}", "fix that record"
        )
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise format_error(
                where,
                f"field {name!r} holds an unpaired surrogate escape "
                f"(\\u{ord(value[err.start]):04x} at character {err.start + 1})",
                "write the character itself, or a complete surrogate pair",
            ) from None
    return value


def nonblank(value: str, name: str, where: str) -> str:
    """Return ``value`` unchanged, or raise if it is empty or only white space."""
    if not value.strip():
        raise format_error(where, f"field {name!r} is empty", "fill it in or remove that record")
    return value


def text_field(record: dict[str, Any], name: str, where: str, expected: Sequence[str]) -> str:
    """Return the required, non-blank string field ``name``, stripped."""
    return nonblank(require(record, name, where, expected), name, where).strip()


def identifier(
    record: dict[str, Any], names: Sequence[str], where: str, expected: Sequence[str]
) -> str:
    """Return the first present of ``names`` (an id field, then its aliases) as a string.

    An id may be a string or an integer (``7`` and ``"7"`` are the same id); it must not be
    blank.
    """
    name = next((n for n in names if n in record), names[0])
    return nonblank(str(require(record, name, where, expected, (str, int))), name, where)


def optional(record: dict[str, Any], name: str, where: str, kind: Kinds, default: Any) -> Any:
    """Return field ``name`` checked against ``kind``, or ``default`` when it is absent."""
    return check_type(record[name], name, where, kind) if name in record else default


def positive(value: int, name: str, where: str) -> int:
    """Return ``value`` if it is at least 1, else raise."""
    if value < 1:
        raise format_error(where, f"field {name!r} should be at least 1, got {value}", "fix it")
    return value


def string_list(value: list[Any], name: str, where: str) -> list[str]:
    """Return ``value`` if every item is a non-blank string, else raise naming the item."""
    for index, item in enumerate(value):
        nonblank(check_type(item, f"{name}[{index}]", where, str), f"{name}[{index}]", where)
    return value
