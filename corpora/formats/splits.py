"""Split rules shared by the loaders: which question goes to ``train``, ``dev`` or ``test``."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from corpora.formats.jsonio import Record, iter_records
from corpora.records import SPLITS, Corpus


def check_split(split: str, option: str = "split") -> str:
    """Return ``split`` if it is a known split name, else raise ``ValueError``."""
    if split not in SPLITS:
        raise ValueError(f"{option}: expected one of {', '.join(SPLITS)}, got {split!r}")
    return split


def check_fraction(name: str, value: float) -> float:
    """Return ``value`` if it lies in [0, 1], else raise ``ValueError``."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a fraction between 0 and 1, got {value}")
    return value


def index_splits(n: int, train_fraction: float, dev_fraction: float) -> list[str]:
    """Split ``n`` records by index: the first part ``train``, the next ``dev``, the rest ``test``.

    Boundaries are ``round(n * train_fraction)`` and ``round(n * (train_fraction +
    dev_fraction))``.
    """
    check_fraction("train_fraction", train_fraction)
    check_fraction("dev_fraction", dev_fraction)
    if train_fraction + dev_fraction > 1.0:
        raise ValueError(
            f"train_fraction + dev_fraction must not exceed 1, got {train_fraction + dev_fraction}"
        )
    n_train = round(n * train_fraction)
    n_dev = round(n * (train_fraction + dev_fraction)) - n_train
    return ["train"] * n_train + ["dev"] * n_dev + ["test"] * (n - n_train - n_dev)


def file_splits(path: Path, n: int, split: str | None, dev_fraction: float) -> list[str]:
    """Return the split of each of the ``n`` records of one data file.

    Args:
        path: The file; its name decides the split when ``split`` is ``None``.
        n: Number of records in the file.
        split: ``train``, ``dev`` or ``test`` to put every record there; ``None`` for the rule:
            a file whose name contains ``train`` gives ``train`` questions, any other file is
            divided by index, its first ``dev_fraction`` (rounded) going to ``dev`` and the rest
            to ``test``.
        dev_fraction: Share of a non-train file that goes to ``dev``.
    """
    check_fraction("dev_fraction", dev_fraction)
    if split is not None:
        return [check_split(split)] * n
    if "train" in path.name.lower():
        return ["train"] * n
    return index_splits(n, 0.0, dev_fraction)


def records_with_splits(
    paths: Sequence[Path], split: str | None, dev_fraction: float
) -> Iterator[tuple[str, str, Record]]:
    """Yield ``(split, where, record)`` for every record of ``paths``, split by ``file_splits``."""
    if split is not None:
        check_split(split)
    check_fraction("dev_fraction", dev_fraction)
    for path in paths:
        records = list(iter_records(path))
        for name, (where, record) in zip(
            file_splits(path, len(records), split, dev_fraction), records, strict=True
        ):
            yield name, where, record


def resplit(corpus: Corpus, ratios: Mapping[str, float], seed: int = 0) -> Corpus:
    """``corpus`` with its questions pooled and dealt anew into splits, by question, seeded.

    For data that comes with one split only (often dev), so that it can train: the questions
    are shuffled with ``seed`` and cut in the order train, dev, test at the cumulative
    ``ratios`` (rounded), so the same corpus, ratios and seed always give the same splits.

    Args:
        corpus: Any corpus; the split each question had is ignored.
        ratios: ``{"train": 0.6, "dev": 0.2, "test": 0.2}``; a split left out gets nothing.
            Fractions in [0, 1] that add up to 1.
        seed: Seed of the shuffle.

    Raises:
        ValueError: An unknown split name, a ratio outside [0, 1], or ratios not adding up to 1.
    """
    if not isinstance(ratios, Mapping):
        raise ValueError("resplit: expected a mapping of split -> fraction, e.g. "
                         f"{{train: 0.6, dev: 0.2, test: 0.2}}, got {ratios!r}")
    for name, value in ratios.items():
        check_split(name, "resplit")
        check_fraction(f"resplit.{name}", float(value))
    total = sum(float(v) for v in ratios.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"resplit: the fractions must add up to 1, got {total:g} "
                         f"({', '.join(f'{k}: {v}' for k, v in ratios.items())})")
    order = random.Random(seed).sample(range(len(corpus.questions)), len(corpus.questions))
    new_split = [""] * len(order)
    start, cumulative = 0, 0.0
    for name in SPLITS:  # train, dev, test: the order the cut points are taken in
        cumulative += float(ratios.get(name, 0.0))
        end = len(order) if name == SPLITS[-1] else round(len(order) * cumulative)
        for position in order[start:end]:
            new_split[position] = name
        start = end
    questions = tuple(dataclasses.replace(q, split=s)
                      for q, s in zip(corpus.questions, new_split, strict=True))
    return dataclasses.replace(corpus, questions=questions)
