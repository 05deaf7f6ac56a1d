"""Publish a file or folder atomically: readers see nothing, or the complete result."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def publish(target: Path, write: Callable[[Path], object], *, replace: bool = False) -> Path:
    """Create ``target`` by writing a temporary path beside it, then renaming it into place.

    Args:
        target: The file or folder to create; missing parent folders are created.
        write: Creates the file or folder at the path it gets: a unique ``.<name>.<hex>.tmp``
            that does not exist yet, removed if anything fails (only a killed process leaves
            one behind).
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
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    old = tmp.with_name(f"{tmp.name}.old")
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
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
    return target
