"""Loaders for real dataset formats, named in ``corpora.registry.CORPORA``.

Names: ``hotpotqa``, ``musique``, ``nq_open`` (shipped samples by default), ``beir``,
``flashrag`` and ``jsonl`` (need a path). Files are UTF-8 (a byte-order mark is skipped),
optionally gzipped (``.gz``). Malformed files raise ``CorpusFormatError`` naming the file, line
and problem; each loader's docstring lists what it refuses and what it accepts as optional.
"""

from corpora.formats.errors import CorpusFormatError

__all__ = ["CorpusFormatError"]
