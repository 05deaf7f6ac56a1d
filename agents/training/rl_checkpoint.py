"""What an RL checkpoint needs beside TRL's files for a resumed phase to repeat the same steps.

TRL's ``Trainer`` checkpoint holds the weights, optimizer, scheduler, ``trainer_state.json``
(step, logged history, input tokens seen) and ``rng_state.pth`` (python, numpy and torch global
generators). An RL phase of :class:`~agents.training.grpo.SearchGRPOTrainer` also draws from
generators of its own, and keeps a generation batch across optimizer steps when
``num_iterations > 1`` or ``steps_per_generation > gradient_accumulation_steps``:
:data:`RESUME_NAME` holds those (see :meth:`SearchGRPOTrainer.resume_state`). The dataloader
position is TRL's, except for the order of later epochs, which :class:`EpochSeededSampler` fixes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Sampler
from trl.trainer.utils import RepeatSampler

#: The RL phase's own resume state, in each of its checkpoint folders.
RESUME_NAME = "search_grpo_state.pt"


def save_resume_state(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, lists and dicts of them) into ``folder``."""
    torch.save(state, folder / RESUME_NAME)


def load_resume_state(folder: Path, device: torch.device | str) -> dict[str, Any] | None:
    """Read what :func:`save_resume_state` wrote (None if the checkpoint has none).

    Generator states stay on the CPU (``Generator.set_state`` takes a CPU tensor); the tensors
    of ``buffered_inputs`` go to ``device``, where the trainer keeps its generation batch.
    """
    path = folder / RESUME_NAME
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    state["buffered_inputs"] = _to_device(state.get("buffered_inputs"), device)
    return state


def _to_device(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    return value


class EpochSeededSampler(Sampler[int]):
    """TRL's ``RepeatSampler`` whose shuffle at an epoch does not depend on earlier epochs run.

    ``RepeatSampler`` draws one permutation per epoch from a generator seeded once, so a phase
    resumed in epoch ``e`` would draw epoch 0's order again. ``set_epoch`` (which ``Trainer``
    calls before each epoch, resumed or not) reseeds it and draws the ``e`` earlier
    permutations: the same orders as an uninterrupted phase, which it leaves unchanged.

    Args:
        inner: The sampler ``GRPOTrainer._get_train_sampler`` built.
    """

    def __init__(self, inner: RepeatSampler) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[int]:
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)

    def set_epoch(self, epoch: int) -> None:
        """Put the shuffle where an uninterrupted phase has it at the start of ``epoch``."""
        inner = self.inner
        if not inner.shuffle or inner.seed is None:
            return
        inner.generator.manual_seed(inner.seed)
        for _ in range(epoch):
            torch.randperm(inner.num_samples, generator=inner.generator)
