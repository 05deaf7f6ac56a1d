"""One way to name things: a ``Registry`` of names -> ``"module:function"`` entry points.

Entry points are imported on first use (as in Gymnasium's registration table), so importing a
package stays cheap and the modules behind the names never import the registry. A name may
itself be an entry point: ``corpora.load("my_project.data:load_lovelace", path=...)``. Installed
packages add names through a packaging entry-point group (``forksearch.corpora`` for corpora):
``[project.entry-points."forksearch.corpora"] lovelace = "my_project.data:load_lovelace"``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

from corpora.records import Corpus

EntryPoint = Callable[..., Any]
_SPELLING = "spell an entry point 'package.module:function'"


class Registry:
    """Names -> entry points (``"module:function"`` strings or callables).

    Args:
        kind: What the names name, for errors (``"corpus"``, ``"retriever"``).
        entries: The built-in names and their entry points.
        group: A packaging entry-point group whose names installed packages add (a name
            registered here, or built in, wins over a plugin's).
        shared_options: Options that the caller of ``build`` handles for every entry (named in
            the error about an unknown option).
    """

    def __init__(self, kind: str, entries: Mapping[str, str | EntryPoint],
                 group: str | None = None, shared_options: Sequence[str] = ()) -> None:
        self.kind = kind
        self.group = group
        self.shared_options = tuple(shared_options)
        self._entries = dict(entries)

    def _plugins(self) -> dict[str, str]:
        """Names that installed packages declare in ``group``, read anew on each call."""
        if self.group is None:
            return {}
        return {ep.name: ep.value for ep in entry_points(group=self.group)}

    def register(self, name: str, entry_point: str | EntryPoint) -> None:
        """Add ``name`` (again to the same target is a no-op; to another is a ``ValueError``)."""
        current = self._entries.setdefault(name, entry_point)
        if current != entry_point and _load(current) is not _load(entry_point):
            raise ValueError(f"{self.kind} {name!r} is already registered to {current!r}; "
                             "register yours under another name")

    def names(self) -> list[str]:
        """The registered names and those of installed plugins, sorted."""
        return sorted({**self._plugins(), **self._entries})

    def resolve(self, name: str) -> EntryPoint:
        """The callable behind a registered name or a ``"module:function"`` name.

        Raises:
            ValueError: Unknown name (with close matches), or a module or attribute not found.
        """
        if name in self._entries or ":" in name:
            return _load(self._entries.get(name, name))
        plugin = self._plugins().get(name)
        if plugin is not None:
            return _load(plugin)
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        plural = {"corpus": "corpora"}.get(self.kind, f"{self.kind}s")
        raise ValueError(f"unknown {self.kind} {name!r}; known {plural}: "
                         f"{', '.join(self.names())} (or {_SPELLING}).{hint}")

    def build(self, name: str, *args: Any, **options: Any) -> Any:
        """Call ``resolve(name)`` with ``args`` and ``options``, checking the option names first.

        Raises:
            ValueError: As ``resolve``.
            TypeError: An option the callable does not take, naming the ones it takes.
        """
        target = self.resolve(name)
        params = inspect.signature(target).parameters.values()
        keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        allowed = [p.name for p in params if p.kind in keyword]
        bad = [option for option in options if option not in allowed]
        if bad and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            close = difflib.get_close_matches(bad[0], [*allowed, *self.shared_options], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            shared = (f" (and for every {self.kind}: {', '.join(self.shared_options)})"
                      if self.shared_options else "")
            raise TypeError(
                f"unknown option{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} for "
                f"{self.kind} {name!r}; allowed options: {', '.join(allowed)}{shared}.{hint}"
            )
        return target(*args, **options)


def _load(entry_point: str | EntryPoint) -> EntryPoint:
    if callable(entry_point):
        return entry_point
    module_name, _, attribute = entry_point.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"bad entry point {entry_point!r}; {_SPELLING}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        # A missing dependency inside an existing module keeps its own error.
        if err.name is None or not f"{module_name}.".startswith(f"{err.name}."):
            raise
        raise ValueError(f"entry point {entry_point!r}: no module {err.name!r} in the working "
                         f"directory or the installed packages; {_SPELLING}") from err
    target = getattr(module, attribute, None)
    if not callable(target):
        raise ValueError(f"entry point {entry_point!r}: module {module_name!r} has no callable "
                         f"{attribute!r}; {_SPELLING}")
    return target


#: Options every corpus takes, handled by ``load`` rather than by its loader.
SHARED_OPTIONS = ("label", "resplit", "resplit_seed")

CORPORA = Registry("corpus", group="forksearch.corpora", shared_options=SHARED_OPTIONS, entries={
    "synthetic": "corpora.synthetic:load_synthetic",
    "jsonl": "corpora.formats.jsonl:load_jsonl",
    "flashrag": "corpora.formats.flashrag:load_flashrag",
    "beir": "corpora.formats.beir:load_beir",
    "hotpotqa": "corpora.formats.hotpotqa:load_hotpotqa",
    "musique": "corpora.formats.musique:load_musique",
    "nq_open": "corpora.formats.nq_open:load_nq_open",
})


def register_corpus(name: str) -> Callable[[Callable[..., Corpus]], Callable[..., Corpus]]:
    """Decorator that registers a loader under ``name``.

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


def load(name: str, *, label: str | None = None, resplit: Mapping[str, float] | None = None,
         resplit_seed: int = 0, **options: Any) -> Corpus:
    """Load a corpus by registered name or ``"module:function"`` name (see ``Registry.build``).

    Args:
        name: The loader.
        label: The corpus's name in outputs and errors (default: the loader's own name); the
            CLIs pass the config file's name (``corpus=lovelace`` -> ``lovelace``).
        resplit: Deal the questions anew into splits, ``{"train": 0.6, "dev": 0.2, "test":
            0.2}`` (``corpora.formats.splits.resplit``): data with one split can then train.
        resplit_seed: Seed of that shuffle.
        **options: The loader's own keyword arguments, checked against its signature.
    """
    corpus = CORPORA.build(name, **options)
    if not isinstance(corpus, Corpus):
        raise TypeError(f"corpus loader {name!r} returned {type(corpus).__name__}, "
                        "expected a corpora.Corpus")
    if resplit is not None:
        from corpora.formats.splits import resplit as deal  # loaders stay unimported till used

        corpus = deal(corpus, resplit, resplit_seed)
    return dataclasses.replace(corpus, name=label) if label else corpus
