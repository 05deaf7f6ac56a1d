"""Where forksearch finds sample data and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder of the shipped sample datasets.

    ``$FORKSEARCH_DATA_DIR`` if set, otherwise ``shared/data`` beside the repository checkout.
    """
    env = os.environ.get("FORKSEARCH_DATA_DIR")
    return Path(env) if env else _REPO_ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    """Folder for indexes and tokenizers: ``$FORKSEARCH_CACHE_DIR`` or ``~/.cache/forksearch``."""
    env = os.environ.get("FORKSEARCH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "forksearch"
