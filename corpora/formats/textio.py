r"""Read UTF-8 data files (optionally gzipped) with exact line numbers and byte offsets.

Files are read as bytes and decoded line by line, so an encoding error is reported at the line
(and byte) that holds it, not where a text decoder's read-ahead buffer happened to start. A
UTF-8 byte-order mark at the start of a file is skipped. Lines end at ``\n``, ``\r\n`` or
``\r``, as in Python's text mode.
"""

from __future__ import annotations

import codecs
import gzip
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TypeAlias

from corpora.formats.errors import CorpusFormatError, format_error
from corpora.paths import data_dir

#: A file location as users pass it.
PathLike: TypeAlias = str | os.PathLike[str]
#: One or several files.
PathOption: TypeAlias = PathLike | Sequence[PathLike]

_BOM = codecs.BOM_UTF8
_GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_NEWLINE = re.compile(rb"\r\n|\r|\n")
_LONE_CR = re.compile(rb"\r(?!\n)")
# What a damaged file or gzip stream raises while it is read.
_READ_ERRORS = (OSError, EOFError, zlib.error)


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


def as_paths(option: PathOption | None, defaults: Sequence[Path], official: str = "") -> list[Path]:
    """Turn a ``path`` option (one path, several, or ``None`` for ``defaults``) into a list.

    Args:
        option: The loader's ``path`` option.
        defaults: The shipped sample files, read when ``option`` is ``None``.
        official: Which files of the dataset to get instead, named when a sample is missing.

    Raises:
        FileNotFoundError: ``option`` is ``None`` and a sample file is not there; the message
            names the official files and the option to set.
    """
    if option is None:
        missing = [p for p in defaults if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"{missing[0]}: the sample data is not here. Get {official or 'the dataset'} "
                "and point the loader at them with path=<file or [files]> (on the command line "
                "corpus.path=...), or set $FORKSEARCH_DATA_DIR to a folder holding the samples"
            )
        return list(defaults)
    if isinstance(option, (str, os.PathLike)):
        return [Path(option)]
    return [Path(p) for p in option]


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading bytes, decompressing it when its name ends in ``.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def iter_lines(file: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` for every line of ``file``, without its line ending.

    Raises:
        CorpusFormatError: A line is not UTF-8 (naming the line and the byte offset), or the
            file or its gzip stream cannot be read (naming the line being read).
    """
    lineno = 0
    offset = 0  # bytes of the (decompressed) file before ``chunk``
    head = b""
    try:
        with open_binary(file) as stream:
            for chunk in stream:  # chunks end at b"\n": a b"\r\n" is never cut in two
                skip = 0
                if offset == 0:
                    head = chunk[:4]
                    skip = len(_BOM) if chunk.startswith(_BOM) else 0
                for start, body in _split_lines(chunk, skip):
                    lineno += 1
                    try:
                        text = body.decode("utf-8")
                    except UnicodeDecodeError as err:
                        at = offset + start + err.start
                        raise _not_utf8(f"{file}:{lineno}", file, err, at, head) from None
                    yield lineno, text
                offset += len(chunk)
    except _READ_ERRORS as err:
        raise _unreadable(f"{file}:{lineno + 1}", err) from err


def read_text(file: Path) -> str:
    r"""Return the whole of ``file`` decoded, its byte-order mark dropped, newlines as ``\n``.

    Raises:
        CorpusFormatError: As ``iter_lines``.
    """
    try:
        with open_binary(file) as stream:
            data = stream.read()
    except _READ_ERRORS as err:
        raise _unreadable(str(file), err) from err
    skip = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = str(memoryview(data)[skip:], "utf-8")
    except UnicodeDecodeError as err:
        offset = skip + err.start
        lineno = data.count(b"\n", 0, offset) + len(_LONE_CR.findall(data, 0, offset)) + 1
        raise _not_utf8(f"{file}:{lineno}", file, err, offset, data[:4]) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def first_byte(file: Path) -> bytes:
    """Return the first byte of ``file`` that is not a byte-order mark or ASCII white space.

    Returns ``b""`` for an empty or blank file.
    """
    lines = 1
    try:
        with open_binary(file) as stream:
            chunk = stream.read(4096)
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM):]
            while chunk:
                stripped = chunk.lstrip()
                if stripped:
                    return stripped[:1]
                lines += chunk.count(b"\n")
                chunk = stream.read(4096)
    except _READ_ERRORS as err:
        raise _unreadable(f"{file}:{lines}", err) from err
    return b""


def _split_lines(chunk: bytes, skip: int) -> list[tuple[int, bytes]]:
    r"""Cut a chunk ending in (at most one) ``b"\n"`` into ``(start, line)`` pairs."""
    if b"\r" not in chunk:  # the common case: one line, ended by b"\n" or by the end of file
        end = len(chunk) - 1 if chunk.endswith(b"\n") else len(chunk)
        return [(skip, chunk[skip:end])]
    pieces = []
    start = skip
    for newline in _NEWLINE.finditer(chunk, skip):
        pieces.append((start, chunk[start:newline.start()]))
        start = newline.end()
    if start < len(chunk):
        pieces.append((start, chunk[start:]))
    return pieces


def _not_utf8(
    where: str, file: Path, err: UnicodeDecodeError, offset: int, head: bytes
) -> CorpusFormatError:
    bad = err.object[err.start:err.start + 1].hex()
    of = " of the decompressed data" if file.suffix == ".gz" else ""
    if head.startswith(_GZIP_MAGIC):
        fix = "the file is gzip-compressed: give it a name ending in .gz"
    elif head.startswith(_UTF16_BOMS):
        fix = "the file is UTF-16: save it as UTF-8"
    else:
        fix = "save the file as UTF-8 or fix that byte"
    return format_error(
        where, f"not UTF-8 text (byte 0x{bad} at byte offset {offset}{of}: {err.reason})", fix
    )


def _unreadable(where: str, err: Exception) -> CorpusFormatError:
    return format_error(where, f"unreadable ({err})", "check that it is UTF-8 or gzip text")
