"""Loaders for real dataset formats, named in ``corpora.registry.CORPORA``.

Names: ``hotpotqa``, ``musique``, ``nq_open`` (shipped samples by default), ``beir``,
``flashrag`` and ``jsonl`` (need a path). Malformed files raise ``CorpusFormatError`` naming the
file, line and problem.
"""

from corpora.formats.jsonio import CorpusFormatError

__all__ = ["CorpusFormatError"]
