"""Names -> callables, one pattern for every registry (corpora, retrievers, agents).

A ``Registry`` maps names to ``"module:function"`` entry points, imported only when a name is
used (as in Gymnasium's registration table), so importing a package stays cheap and the modules
behind the names never import the registry: there is no import cycle. A name may also itself be
an entry point, which is how a user's own loader is named without any registration::

    corpora.load("synthetic", size="small")
    corpora.load("my_project.data:load_lovelace", path="data/lovelace.jsonl")
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from corpora.records import Corpus

ENTRY_POINT_HINT = "spell an entry point 'package.module:function'"


class Registry:
    """A table of names -> entry points (``"module:function"`` strings or callables).

    Args:
        kind: What the names name, used in errors (``"corpus"``, ``"retriever"``).
        entries: The built-in names and their entry points.
    """

    def __init__(self, kind: str, entries: Mapping[str, str | Callable[..., Any]]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def register(self, name: str, entry_point: str | Callable[..., Any]) -> None:
        """Add ``name``; registering it again to the same target is a no-op.

        Raises:
            ValueError: ``name`` contains ``:`` or is registered to a different target.
        """
        if ":" in name:
            raise ValueError(f"{self.kind} name {name!r} may not contain ':' (that spells an "
                             "entry point, usable without registering)")
        current = self._entries.get(name)
        if current is not None and current != entry_point:
            if _load(current) is not _load(entry_point):
                raise ValueError(f"{self.kind} {name!r} is already registered to {current!r}; "
                                 "register yours under another name")
        self._entries[name] = entry_point

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def resolve(self, name: str) -> Callable[..., Any]:
        """The callable behind ``name`` (a registered name or a ``"module:function"`` string).

        Raises:
            ValueError: Unknown name (with close-match suggestions), or an entry point whose
                module or attribute does not exist.
        """
        if name in self._entries:
            return _load(self._entries[name])
        if ":" in name:
            return _load(name)
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown {self.kind} {name!r}; known {self.kind} names: "
                         f"{', '.join(self.names())} (or {ENTRY_POINT_HINT}).{hint}")

    def build(self, name: str, *args: Any, **options: Any) -> Any:
        """Call the callable behind ``name`` with ``args`` and ``options``.

        Raises:
            ValueError: As ``resolve``.
            TypeError: An option the callable does not take, naming the allowed ones.
        """
        target = self.resolve(name)
        params = inspect.signature(target).parameters.values()
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            allowed = [p.name for p in params if p.kind in keyword]
            bad = [option for option in options if option not in allowed]
            if bad:
                close = difflib.get_close_matches(bad[0], allowed, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise TypeError(
                    f"unknown option{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} "
                    f"for {self.kind} {name!r}; allowed options: {', '.join(allowed)}.{hint}"
                )
        return target(*args, **options)


def _load(entry_point: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(entry_point):
        return entry_point
    module_name, _, attribute = entry_point.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"bad entry point {entry_point!r}; {ENTRY_POINT_HINT}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        # Only a missing module named by the entry point is the caller's typo; a missing
        # dependency inside an existing module keeps its own ImportError.
        if err.name is None or not f"{module_name}.".startswith(f"{err.name}."):
            raise
        raise ValueError(f"entry point {entry_point!r}: no module named {err.name!r}; "
                         f"{ENTRY_POINT_HINT}") from err
    target = getattr(module, attribute, None)
    if not callable(target):
        raise ValueError(f"entry point {entry_point!r}: module {module_name!r} has no callable "
                         f"{attribute!r}; {ENTRY_POINT_HINT}")
    return target


CORPORA = Registry("corpus", {
    "synthetic": "corpora.synthetic:load_synthetic",
    "jsonl": "corpora.formats.jsonl:load_jsonl",
    "flashrag": "corpora.formats.flashrag:load_flashrag",
    "beir": "corpora.formats.beir:load_beir",
    "hotpotqa": "corpora.formats.hotpotqa:load_hotpotqa",
    "musique": "corpora.formats.musique:load_musique",
    "nq_open": "corpora.formats.nq_open:load_nq_open",
})


def register_corpus(name: str) -> Callable[[Callable[..., Corpus]], Callable[..., Corpus]]:
    """Decorator that registers a loader under ``name`` (a ``"module:function"`` name needs none).

    Example:
        >>> @register_corpus("my_corpus")
        ... def load_my_corpus(path: str = "data/my.jsonl") -> Corpus: ...
    """

    def wrap(fn: Callable[..., Corpus]) -> Callable[..., Corpus]:
        CORPORA.register(name, fn)
        return fn

    return wrap


def available() -> list[str]:
    """Names of all registered corpora."""
    return CORPORA.names()


def load(name: str, **options: Any) -> Corpus:
    """Load a corpus by registered name or ``"module:function"`` entry point.

    Raises:
        ValueError: Unknown name, with close-match suggestions.
        TypeError: An option the loader does not take.
    """
    corpus: Corpus = CORPORA.build(name, **options)
    return corpus
