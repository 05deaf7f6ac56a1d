"""Name -> loader registry: ``corpora.load("synthetic", size="small")``."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from corpora.records import Corpus

Loader = Callable[..., Corpus]
_LOADERS: dict[str, Loader] = {}


def register_corpus(name: str) -> Callable[[Loader], Loader]:
    """Decorator that registers a loader under ``name``.

    Example:
        >>> @register_corpus("my_corpus")
        ... def load_my_corpus(path: str = "data/my.jsonl") -> Corpus: ...
    """

    def wrap(fn: Loader) -> Loader:
        if name in _LOADERS and _LOADERS[name] is not fn:
            raise ValueError(f"corpus {name!r} is already registered to {_LOADERS[name]!r}")
        _LOADERS[name] = fn
        return fn

    return wrap


def unknown_name_error(kind: str, name: str, known: list[str]) -> ValueError:
    """Build the error for an unknown registry name, with close-match suggestions."""
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(sorted(known))}.{hint}")


def available() -> list[str]:
    """Names of all registered corpora."""
    _import_builtin_loaders()
    return sorted(_LOADERS)


def load(name: str, **options: Any) -> Corpus:
    """Load a registered corpus by name; options go to its loader."""
    _import_builtin_loaders()
    if name not in _LOADERS:
        raise unknown_name_error("corpus", name, list(_LOADERS))
    return _LOADERS[name](**options)


def _import_builtin_loaders() -> None:
    # Imported lazily so that `import corpora` stays cheap and loaders register themselves.
    from corpora import formats, synthetic  # noqa: F401
