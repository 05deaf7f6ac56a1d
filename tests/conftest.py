import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Indexes and tokenizers built by tests go to the checkout's .cache (git-ignored), not ~/.cache.
os.environ.setdefault("FORKSEARCH_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache"))



@pytest.fixture()
def require_sample() -> Callable[[str], None]:
    """A check that skips the calling test when the shipped sample of a dataset is absent."""
    from corpora.paths import data_dir

    def check(name: str) -> None:
        if not (data_dir() / name).is_dir():
            pytest.skip(f"sample data not found: {data_dir() / name} (see ../shared/data)")

    return check
