"""Where a run's wall time goes: nested, named sections summed by their path.

Sections cost one global read while no profile is open, so the code keeps them in place::

    with profiling() as timings:
        train(cfg, run_dir)
    print(timings.table())

Inside a profile each ``section("env")`` adds its wall time under its path, the names of the
sections open around it joined by ``/`` (``rl/step/generation/rollout/env``), so the same code
reached from an RL step and from an evaluation is counted apart. On a GPU a section waits for
the device at its ends: without that, asynchronous kernels would be billed to whichever
section next reads a result.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


@dataclass
class Timings:
    """Seconds and calls per section path."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _open: list[str] = field(default_factory=list)

    def total(self, suffix: str, under: str = "") -> float:
        """Seconds of every path under ``under`` that ends with ``suffix`` (nested ones once)."""
        paths = [p for p in self.seconds if p.startswith(under) and p.endswith(suffix)]
        # A path inside another matching path is already counted in it.
        outer = [p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths)]
        return sum(self.seconds[p] for p in outer)

    def table(self) -> list[dict[str, float | str | int]]:
        """One row per path in tree order: seconds, calls, and the share of its parent."""
        rows: list[dict[str, float | str | int]] = []
        for path in sorted(self.seconds):
            parent = path.rpartition("/")[0]
            base = self.seconds.get(parent, 0.0) if parent else 0.0
            rows.append({"section": path, "seconds": round(self.seconds[path], 3),
                         "calls": self.calls[path],
                         "of_parent": round(self.seconds[path] / base, 4) if base else 1.0})
        return rows


_active: Timings | None = None


@contextmanager
def profiling() -> Iterator[Timings]:
    """Record every section entered until the block ends (profiles do not nest)."""
    global _active
    if _active is not None:
        raise RuntimeError("a profile is already open")
    _active = Timings()
    try:
        yield _active
    finally:
        _active = None


@contextmanager
def section(name: str) -> Iterator[None]:
    """Add the block's wall time to ``name`` under the sections open around it."""
    timings = _active
    if timings is None:
        yield
        return
    timings._open.append(name)
    path = "/".join(timings._open)
    _synchronize()
    start = time.perf_counter()
    try:
        yield
    finally:
        _synchronize()
        timings.seconds[path] += time.perf_counter() - start
        timings.calls[path] += 1
        timings._open.pop()


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
