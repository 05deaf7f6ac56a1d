"""Training with several processes: who writes the run directory, who waits, what is gathered.

``accelerate launch --multi_gpu --num_processes N -m agents.cli.train ...`` (or a config in
``conf/accelerate/``) starts N copies of ``forksearch-train`` on one run directory. TRL gives
each process its own share of every RL generation batch and the ``Trainer`` its own share of
every SFT batch; the rest follows one rule: the main process alone writes the run directory
(run state, models, pool, ``metrics.jsonl``, test episodes, summary) and the others wait at a
barrier before reading what it wrote. Figures are computed from every process's episodes,
gathered (:func:`gather`), so that each episode counts once and every process takes the same
decisions (entropy trigger, evaluation, stopping) at the same step.

Every function here is a no-op in a single process: a plain run is unchanged.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TypeVar, cast

import torch.distributed as dist

T = TypeVar("T")

#: Variables that launchers (torchrun, DeepSpeed, MPI) set to the number of processes.
_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
#: ... and to this process's rank.
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
#: How long a process waits at a collective. The others may be building the demonstration
#: pool or writing models meanwhile: torch's default of 30 minutes is short for a large corpus.
WAIT = timedelta(hours=6)


def _env_int(names: Sequence[str], default: int) -> int:
    for name in names:
        if os.environ.get(name):
            return int(os.environ[name])
    return default


def launched_rank() -> int:
    """This process's rank as its launcher set it (readable before :func:`start`)."""
    return _env_int(_RANK_VARS, 0)


def start(cpu: bool) -> None:
    """Join the process group of a multi-process launch; nothing in a single process.

    Args:
        cpu: Train on CPU (the ``gloo`` backend); else each process takes its accelerator.
    """
    if _env_int(_SIZE_VARS, 1) > 1 and not dist.is_initialized():
        from accelerate import PartialState  # the Trainer's own Accelerator then joins it

        PartialState(cpu=cpu, timeout=WAIT)


def finish() -> None:
    """Leave the process group, every process together, once the main process is done.

    A process that exits while the others still use the group can abort in the group's
    destructor (``terminate called without an active exception``).
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """Index of this process (0 in a single process)."""
    return dist.get_rank() if _active() else 0


def size() -> int:
    """Number of processes (1 in a single process)."""
    return dist.get_world_size() if _active() else 1


def is_main() -> bool:
    """Whether this process writes the run directory."""
    return rank() == 0


def barrier() -> None:
    """Wait until every process is here."""
    if _active():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Run the block on the main process first, then on the others (caches it fills)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def gather(items: Sequence[T]) -> list[T]:
    """Every process's ``items``, concatenated in process order, on every process."""
    if not _active():
        return list(items)
    parts: list[list[T] | None] = [None] * size()
    dist.all_gather_object(parts, list(items))
    return [item for part in parts for item in part or []]


def broadcast(value: T) -> T:
    """The main process's ``value``, on every process."""
    if not _active():
        return value
    box: list[T | None] = [value]
    dist.broadcast_object_list(box, src=0)
    return cast(T, box[0])


def share(items: Sequence[T]) -> list[T]:
    """This process's share of ``items`` (every ``size()``-th, from ``rank()``)."""
    return list(items[rank()::size()])
