"""Corpora and retrievers shared by the environments built from the same names in one process.

A corpus is keyed by its name, its options and the state of every file or folder the options
name (modification time, size, inode), so a rewritten data file is read again; a retriever is
keyed by the documents it searches (``Corpus.fingerprint``: equal documents share one) and its
own name and options.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import corpora
from corpora import Corpus, Retriever

CACHE_SIZE = 8

T = TypeVar("T")
_corpora: OrderedDict[Hashable, Corpus] = OrderedDict()
_retrievers: OrderedDict[Hashable, Retriever] = OrderedDict()


def shared_corpus(name: str, options: Mapping[str, Any]) -> Corpus:
    """``corpora.load(name, **options)``, reused while the files the options name are unchanged."""
    key = (name, _freeze(options), tuple(_file_states(options)))
    return _lookup(_corpora, key, lambda: corpora.load(name, **options))


def shared_retriever(kind: str, corpus: Corpus, options: Mapping[str, Any]) -> Retriever:
    """``corpora.make_retriever(kind, corpus, **options)``, reused for equal documents."""
    # The fingerprint, not the corpus: hashing a frozen Corpus walks every document on each
    # dict operation, while the fingerprint is computed once per corpus object (and the
    # cached index backends compute it anyway).
    key = (corpus.fingerprint, kind, _freeze(options))
    return _lookup(_retrievers, key, lambda: corpora.make_retriever(kind, corpus, **options))


def clear() -> None:
    """Forget every shared corpus and retriever."""
    _corpora.clear()
    _retrievers.clear()


def _lookup(cache: OrderedDict[Hashable, T], key: Hashable, build: Callable[[], T]) -> T:
    # Least recently used goes first once the cache is full.
    value = cache.pop(key) if key in cache else build()
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for option values (dicts and lists are common in options)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_freeze(v) for v in value]
        return tuple(sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    try:
        hash(value)
    except TypeError:
        return (type(value).__name__, repr(value))
    return value


def _file_states(value: Any) -> list[tuple[str, int, int, int]]:
    """``(path, mtime_ns, size, inode)`` of every existing file named in the options.

    A folder counts with every file below it, so that a rewritten file inside it counts too.
    """
    if isinstance(value, Mapping):
        return [state for v in value.values() for state in _file_states(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [state for v in value for state in _file_states(v)]
    if not isinstance(value, (str, os.PathLike)):
        return []
    path = os.fspath(value)
    if os.path.isdir(path):
        files = sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
        return [state for f in files for state in _file_states(f)]
    try:
        stat = os.stat(path)
    except (OSError, ValueError):  # not a path at all (ValueError: a NUL in the string)
        return []
    return [(path, stat.st_mtime_ns, stat.st_size, stat.st_ino)]
