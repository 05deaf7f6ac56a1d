"""Publish a file or folder atomically: readers see nothing, or the complete result.

A writer works in ``.<name>.<token>.tmp`` beside the target (and, while replacing a folder,
moves the old one to ``.<name>.<token>.tmp.old``), holding an exclusive ``flock`` on
``.<name>.<token>.lock`` all the while. A killed writer leaves these behind; ``reclaim``
removes them once their lock is free (the writer is gone) or, where no lock can tell, once
nothing in them has changed for a long time.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

try:
    import fcntl
except ImportError:  # Windows: no flock; leftovers are reclaimed by age alone
    fcntl = None  # type: ignore[assignment]

#: Leftovers without a lock that tells (none, or a file system without locks) are removed
#: only after this long without a change to anything in them.
MAX_IDLE_S = 3600.0

_LEFTOVER = re.compile(r"\.(?P<stem>.+\.[0-9a-f]{8})\.(?P<kind>tmp|tmp\.old|lock)")
LockState = Literal["free", "held", "unknown"]


def publish(target: Path, write: Callable[[Path], object], *, replace: bool = False) -> Path:
    """Create ``target`` by writing a temporary path beside it, then renaming it into place.

    Args:
        target: The file or folder to create; missing parent folders are created.
        write: Creates the file or folder at the path it gets: a unique ``.<name>.<hex>.tmp``
            that does not exist yet, removed if anything fails (only a killed process leaves
            one behind, for ``reclaim``).
        replace: Replace an existing ``target`` instead of refusing; of several writers
            replacing it at once, one result stands whole.

    Returns:
        ``target``.

    Raises:
        FileExistsError: ``target`` exists and ``replace`` is false.
    """
    target = Path(target)
    if not replace and target.exists():
        raise FileExistsError(f"{target} already exists and is never overwritten in place; "
                              "write to a new name")
    target.parent.mkdir(parents=True, exist_ok=True)
    stem = f"{target.name}.{uuid.uuid4().hex[:8]}"
    tmp = target.with_name(f".{stem}.tmp")
    old = tmp.with_name(f"{tmp.name}.old")
    with _writer_lock(target.with_name(f".{stem}.lock")):
        try:
            write(tmp)
            if replace and target.is_dir():
                os.replace(target, old)  # os.replace cannot overwrite a non-empty folder
            try:
                os.replace(tmp, target)
            except OSError:
                if not (replace and target.exists()):
                    raise  # otherwise another writer published in between: theirs stands
        finally:
            for leftover in (tmp, old):
                _remove(leftover)
    return target


def reclaim(folder: Path, *, max_idle_s: float = MAX_IDLE_S) -> list[Path]:
    """Remove the temporary files and folders that killed ``publish`` calls left in ``folder``.

    A leftover is removed when its writer's lock is free (the writer is gone), or, when no
    lock tells (an older leftover without one, or a file system without ``flock``), when
    nothing in it has changed for ``max_idle_s`` seconds. A leftover whose lock is held
    belongs to a live writer and is never touched. Errors (a folder that cannot be read or
    a leftover that cannot be removed) are ignored: reclaiming is housekeeping.

    Returns:
        The leftovers removed.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    leftovers: dict[str, list[Path]] = {}  # stem -> its .tmp and .tmp.old paths
    for name in names:
        if match := _LEFTOVER.fullmatch(name):
            paths = leftovers.setdefault(match["stem"], [])
            if match["kind"] != "lock":
                paths.append(folder / name)
    removed: list[Path] = []
    for stem, paths in leftovers.items():
        lock = folder / f".{stem}.lock"
        with _probe(lock) as state:
            # A free lock alone may be a writer that has not taken it yet: it goes by age.
            gone = state == "free" and bool(paths)
            if state == "held" or not gone and _idle_s(paths or [lock]) < max_idle_s:
                continue
            for path in paths:
                _remove(path)
            removed += paths
            lock.unlink(missing_ok=True)
    return removed


@contextmanager
def _writer_lock(lock: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock`` (created, and removed afterwards) if possible."""
    fd = -1
    if fcntl is not None:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # cannot create it, or no locks here: reclaim goes by age
            pass
    try:
        yield
    finally:
        if fd >= 0:
            lock.unlink(missing_ok=True)  # before closing: the name goes while still held
            os.close(fd)


@contextmanager
def _probe(lock: Path) -> Iterator[LockState]:
    """Tell whether a live writer holds ``lock``; a free lock stays held by us meanwhile."""
    if fcntl is None:
        yield "unknown"
        return
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:  # no lock file (an older leftover), or not ours to open
        yield "unknown"
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield "held"
        except OSError:  # no locks on this file system
            yield "unknown"
        else:
            yield "free"
    finally:
        os.close(fd)


def _idle_s(paths: list[Path]) -> float:
    """Seconds since anything in ``paths`` (files and folders, recursively) last changed."""
    newest = 0.0
    for path in paths:
        try:
            newest = max(newest, path.lstat().st_mtime)
        except OSError:
            continue
        for parent, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(parent, name)).st_mtime)
                except OSError:
                    pass
    return time.time() - newest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
