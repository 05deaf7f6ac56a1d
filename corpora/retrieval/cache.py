"""On-disk cache of built retrieval indexes.

Layout: one folder per entry under ``<root>/`` (default ``corpora.paths.cache_dir() / "indexes"``)::

    <root>/<backend>-<corpus fingerprint>-<settings hash>/
        meta.json        # written last: backend, fingerprint, settings, size + sha256 per file
        ...              # the backend's own files (bm25s arrays, FAISS index, embeddings.npy)

The key changes whenever the documents (``Corpus.fingerprint``) or an index-changing setting
change, so a stale index is never loaded: the new key simply has no entry yet and is built.
Entries are built in a temporary folder beside the final one and published atomically
(``corpora.atomic.publish``), so readers never see half-written files. An entry whose manifest
is missing or does not match its files, or whose files fail to load, is rebuilt and replaced
(with a warning), never fatal.
Failing to *write* the cache (read-only disk, full disk) only warns: the built index is used.
Each ``load_or_build`` first reclaims what killed builds left in ``<root>/`` (hidden ``.tmp``,
``.tmp.old`` and ``.lock`` names, see ``corpora.atomic.reclaim``): at once when their writer
is gone, after ``leftover_idle_s`` without a change when that cannot be told, never while a
live process writes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from corpora.atomic import MAX_IDLE_S, publish, reclaim
from corpora.paths import cache_dir
from corpora.records import Corpus

T = TypeVar("T")
CacheStatus = Literal["loaded", "built", "rebuilt", "disabled"]

#: Bump when the layout of entries changes: old entries are then simply never matched.
CACHE_FORMAT = 1
META_FILE = "meta.json"

log = logging.getLogger(__name__)


def default_cache_root() -> Path:
    """``corpora.paths.cache_dir() / "indexes"`` (follows ``$FORKSEARCH_CACHE_DIR``)."""
    return cache_dir() / "indexes"


def settings_hash(settings: Mapping[str, Any]) -> str:
    """Hash the index-changing settings (JSON with sorted keys) into a short hex string."""
    blob = json.dumps(dict(settings), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest(folder: Path) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != META_FILE:
            rel = path.relative_to(folder).as_posix()
            files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    return files


def _identity(corpus: Corpus, backend: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    # The manifest fields an entry must match to be loaded.
    return {
        "format": CACHE_FORMAT,
        "backend": backend,
        "fingerprint": corpus.fingerprint,
        "n_docs": len(corpus.documents),
        "settings_hash": settings_hash(settings),
    }


class CorruptCacheEntry(Exception):
    """A cache entry that is incomplete, altered, or written for other settings."""


class IndexCache:
    """Builds an index once per (corpus, backend, settings) and loads it afterwards.

    Args:
        root: Folder that holds the entries; ``None`` means ``default_cache_root()``.
        leftover_idle_s: Leftovers of killed builds whose writer cannot be told alive or gone
            are removed after this many seconds without a change.
    """

    def __init__(
        self, root: str | os.PathLike[str] | None = None, leftover_idle_s: float = MAX_IDLE_S
    ) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self.leftover_idle_s = leftover_idle_s

    def key(self, corpus: Corpus, backend: str, settings: Mapping[str, Any]) -> str:
        """Name the entry: ``<backend>-<corpus fingerprint>-<settings hash>``."""
        return f"{backend}-{corpus.fingerprint}-{settings_hash(settings)}"

    def path(self, corpus: Corpus, backend: str, settings: Mapping[str, Any]) -> Path:
        """Return the folder of the entry for these arguments (it may not exist yet)."""
        return self.root / self.key(corpus, backend, settings)

    def load_or_build(
        self,
        corpus: Corpus,
        backend: str,
        settings: Mapping[str, Any],
        *,
        build: Callable[[], T],
        save: Callable[[T, Path], None],
        load: Callable[[Path], T],
    ) -> tuple[T, CacheStatus]:
        """Load the entry if it is valid, otherwise build, save and publish it.

        Args:
            corpus: The corpus the index is built over (its fingerprint is part of the key).
            backend: Backend name, part of the key.
            settings: JSON-serializable settings that change the index (part of the key).
            build: Builds the index in memory.
            save: Writes a built index into an (empty, existing) folder.
            load: Reads an index back from a folder ``save`` wrote; may raise on bad files.

        Returns:
            The index and how it was obtained: ``loaded``, ``built`` (no entry existed) or
            ``rebuilt`` (an entry existed but was corrupt).
        """
        for leftover in reclaim(self.root, max_idle_s=self.leftover_idle_s):
            log.info("removed %s, left by a killed index build", leftover)
        entry = self.path(corpus, backend, settings)
        status: CacheStatus = "built"
        if entry.exists():
            try:
                self._validate(entry, corpus, backend, settings)
                return load(entry), "loaded"
            except Exception as err:  # any unreadable entry is rebuilt
                log.warning("rebuilding corrupt index cache entry %s: %s", entry, err)
                status = "rebuilt"
        index = build()
        self._publish(index, entry, corpus, backend, settings, save)
        return index, status

    def _validate(
        self, entry: Path, corpus: Corpus, backend: str, settings: Mapping[str, Any]
    ) -> None:
        meta_path = entry / META_FILE
        if not meta_path.is_file():
            raise CorruptCacheEntry(f"no {META_FILE} (partial entry)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        for name, value in _identity(corpus, backend, settings).items():
            if meta.get(name) != value:
                raise CorruptCacheEntry(f"{name} is {meta.get(name)!r}, expected {value!r}")
        files = meta.get("files")
        if not isinstance(files, dict) or not files:
            raise CorruptCacheEntry("manifest lists no files")
        for rel, info in files.items():
            path = entry / rel
            if not path.is_file():
                raise CorruptCacheEntry(f"missing file {rel}")
            if path.stat().st_size != info.get("size"):
                raise CorruptCacheEntry(f"{rel} has the wrong size")
            if _sha256(path) != info.get("sha256"):
                raise CorruptCacheEntry(f"{rel} does not match its checksum")

    def _publish(
        self,
        index: T,
        entry: Path,
        corpus: Corpus,
        backend: str,
        settings: Mapping[str, Any],
        save: Callable[[T, Path], None],
    ) -> None:
        def write(folder: Path) -> None:
            folder.mkdir()
            save(index, folder)
            meta = {
                **_identity(corpus, backend, settings),
                "corpus_name": corpus.name,
                "settings": dict(settings),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "files": _manifest(folder),
            }
            (folder / META_FILE).write_text(
                json.dumps(meta, indent=2, sort_keys=True, default=str), encoding="utf-8"
            )

        try:
            publish(entry, write, replace=True)
        except Exception as err:  # an unwritable cache is not fatal
            log.warning("could not write index cache entry %s: %s", entry, err)
