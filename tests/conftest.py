import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Indexes and tokenizers built by tests go to the checkout's .cache (git-ignored), not ~/.cache.
os.environ.setdefault("FORKSEARCH_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache"))
