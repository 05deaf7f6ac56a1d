"""Publish a file or folder atomically: readers see nothing, or the complete result."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def publish(target: Path, write: Callable[[Path], object], *, replace: bool = False) -> Path:
    """Create ``target`` through a temporary path beside it, then rename it into place.

    ``write`` gets a unique path in ``target``'s folder (so the rename is atomic) that does not
    exist yet, and creates a file or a folder there. The temporary path is removed when ``write``
    or the rename fails; only a killed process leaves one behind (``.<name>.<hex>.tmp``).

    Args:
        target: The file or folder to create; missing parent folders are created.
        write: Writes the content at the path it is given.
        replace: Replace an existing ``target`` instead of refusing. When several writers
            replace the same target at once, each rename is atomic and one of them stands.

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
    old = target.with_name(f"{tmp.name}.old")
    try:
        write(tmp)
        if replace and target.is_dir():
            # os.replace cannot overwrite a non-empty folder: move the old one aside first.
            os.replace(target, old)
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
