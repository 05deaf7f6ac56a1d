"""What a phase checkpoint needs beside TRL's files for a resumed phase to repeat the same steps.

TRL's ``Trainer`` checkpoint holds the weights, optimizer, scheduler, ``trainer_state.json``
(step, logged history) and ``rng_state.pth`` (python, numpy and torch global generators). The
phase trainers keep more state across steps: the SFT trainer its count of tokens trained on
(logged as ``num_tokens``), the RL trainer its own random generators and, when
``num_iterations > 1`` or ``steps_per_generation > gradient_accumulation_steps``, a generation
batch that serves several optimizer steps. :class:`ResumableTrainerMixin` writes a trainer's
``resume_state()`` into every checkpoint (:data:`RESUME_NAME`) and gives it back on resume.
The dataloader position is TRL's, except for the order of later epochs, which
:class:`EpochSeededSampler` fixes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Sampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl.trainer.utils import RepeatSampler

from agents.profiling import section

#: A phase trainer's own resume state, in each of its checkpoint folders.
RESUME_NAME = "forksearch_state.pt"

log = logging.getLogger(__name__)


def resume_name(process: int = 0) -> str:
    """File of a process's resume state: :data:`RESUME_NAME` for the main (or only) one.

    The other processes of a multi-process run have their own generators and rollout batches.
    """
    return RESUME_NAME if process == 0 else RESUME_NAME.replace(".pt", f"-{process}.pt")


def save_resume_state(folder: Path, state: dict[str, Any], process: int = 0) -> None:
    """Write ``state`` (tensors, numbers, strings, lists and dicts of them) into ``folder``."""
    torch.save(state, folder / resume_name(process))


def load_resume_state(folder: Path, device: torch.device | str,
                      process: int = 0) -> dict[str, Any] | None:
    """Read what :func:`save_resume_state` wrote (None if the checkpoint has none).

    Tensors come back on ``device``, except random generator states (a ``torch.uint8`` tensor
    under a key ending in ``generator``), which ``Generator.set_state`` takes on the CPU.
    """
    path = folder / resume_name(process)
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v if k.endswith("generator") else _to_device(v, device) for k, v in state.items()}


def _to_device(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    return value


class ResumableTrainerMixin:
    """Saves ``resume_state()`` in every checkpoint and hands it to ``load_resume_state``.

    Overrides ``Trainer._save_checkpoint`` and ``Trainer._load_optimizer_and_scheduler``
    (``transformers`` 5: the latter runs once, before the first resumed step), calling TRL's
    first. A subclass defines the two methods below.
    """

    args: Any
    state: Any
    accelerator: Any

    def resume_state(self) -> dict[str, Any]:
        """What a resumed phase needs beside TRL's checkpoint (see the subclass)."""
        raise NotImplementedError

    def load_resume_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`resume_state` returned."""
        raise NotImplementedError

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        with section("checkpoint"):
            super()._save_checkpoint(model, trial)  # type: ignore[misc]
            folder = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            output_dir = self._get_output_dir(trial=trial)  # type: ignore[attr-defined]
            save_resume_state(Path(output_dir) / folder, self.resume_state(),
                              self.args.process_index)
            # The run state may name this checkpoint (on_save) only once every process's part
            # of it is written.
            self.accelerator.wait_for_everyone()

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)  # type: ignore[misc]
        if checkpoint is None:
            return
        state = load_resume_state(Path(checkpoint), self.accelerator.device,
                                  self.args.process_index)
        if state is None:
            log.warning("%s holds no %s (written by an older forksearch): the resumed phase "
                        "may differ from an uninterrupted one", checkpoint, RESUME_NAME)
            return
        self.load_resume_state(state)


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
