"""Loaders for real dataset formats; importing this package registers them.

Registered names: ``hotpotqa``, ``musique``, ``nq_open`` (shipped samples by default), ``beir``,
``flashrag`` and ``jsonl`` (need a path). Malformed files raise ``CorpusFormatError`` naming the
file, line and problem.
"""

from corpora.formats import beir, flashrag, hotpotqa, jsonl, musique, nq_open
from corpora.formats.jsonio import CorpusFormatError

__all__ = ["CorpusFormatError", "beir", "flashrag", "hotpotqa", "jsonl", "musique", "nq_open"]
