"""Run state on disk: what a resumed run needs, committed atomically.

A run directory holds ``state.json`` (this module's :class:`RunState`), the files it points to
(the model the current phase started from, the demonstration pool, the replay candidates, the
current phase's last Hugging Face ``checkpoint-N``), and ``metrics.jsonl``. ``state.json`` is the
commit point: it is replaced atomically, only after every file it names is complete, so a run
killed at any moment resumes from the last state it committed. Files no state points to any
more are pruned after each commit. A run killed before its first commit (while it builds the
initial model and the demonstration pool) has no state yet: :func:`discard_uncommitted` clears
what it left, and the run starts again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corpora.atomic import publish

STATE_NAME = "state.json"
STATE_VERSION = 1
#: The run's config, written first by a new run (so its presence marks a forksearch run).
CONFIG_NAME = "config.json"

log = logging.getLogger(__name__)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new content, never a mix."""

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it the state

    publish(path, write, replace=True)


@dataclass
class PhaseRecord:
    """One phase of the run.

    Attributes:
        index: Position of the phase in the run (0-based).
        kind: ``sft`` or ``rl``.
        max_steps: Optimizer steps planned (an RL phase may stop earlier on the trigger).
        start_step: Global step before the phase's first step.
        refresh: Whether this SFT phase is a refresh (after RL).
        checkpoint: The phase's last committed ``checkpoint-N`` folder (relative to the run).
        steps: Phase steps that checkpoint holds.
        done: Whether that checkpoint ends the phase.
        timing: Training ``seconds`` and batch ``tokens`` up to that checkpoint, summed over the
            processes that ran the phase (``PhaseMonitor.timing_now``).
        summary: Figures of the finished phase (throughput, final evaluation).
    """

    index: int
    kind: str
    max_steps: int
    start_step: int
    refresh: bool = False
    checkpoint: str | None = None
    steps: int = 0
    done: bool = False
    timing: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Folder name of the phase, e.g. ``02-rl``."""
        return f"{self.index:02d}-{self.kind}"

    @property
    def end_step(self) -> int:
        """Global step reached by the committed part of the phase."""
        return self.start_step + self.steps


@dataclass
class RunState:
    """Everything a resumed run needs besides the files it names.

    Attributes:
        model: Model folder (relative) the current phase starts from; after the last phase,
            the final model.
        pool: Demonstration pool JSONL (relative).
        schedule: ``Schedule.state_dict()``.
        phase: The phase in progress (None between phases and at the end).
        finished: Finished phases, in order.
        trigger: ``EntropyTrigger.state_dict()`` of the RL phase in progress.
        replay: ``label_counts`` and ``candidates`` (a relative JSONL path) of the replay buffer.
        complete: Whether the whole schedule has run.
        elapsed_s: Wall time of the run up to this commit, summed over its processes (a killed
            process's time after its last commit is lost).
        kept_models: Earlier models kept besides ``model`` (the initial one and each finished
            phase's, with ``keep_phase_models``), in order: ``forksearch-analyze`` compares them.
        version: Format version of this file.
    """

    model: str
    pool: str
    schedule: dict[str, Any]
    phase: PhaseRecord | None = None
    finished: list[PhaseRecord] = field(default_factory=list)
    trigger: dict[str, Any] | None = None
    replay: dict[str, Any] | None = None
    complete: bool = False
    elapsed_s: float = 0.0
    kept_models: list[str] = field(default_factory=list)
    version: int = STATE_VERSION

    @property
    def global_step(self) -> int:
        """Global optimizer steps committed so far."""
        if self.phase is not None:
            return self.phase.end_step
        return self.finished[-1].end_step if self.finished else 0

    def referenced(self) -> set[str]:
        """Relative paths of every file or folder this state needs."""
        paths = {self.model, self.pool, *self.kept_models}
        if self.phase is not None and self.phase.checkpoint:
            paths.add(self.phase.checkpoint)
        if self.replay is not None and self.replay.get("candidates"):
            paths.add(self.replay["candidates"])
        return paths


def save_state(run_dir: Path, state: RunState) -> None:
    """Commit ``state`` atomically, then prune files it no longer references."""
    atomic_write_text(run_dir / STATE_NAME, json.dumps(asdict(state), indent=1))
    prune(run_dir, state)


def load_state(run_dir: Path) -> RunState | None:
    """Read the committed state of a run (None if it has none yet)."""
    path = run_dir / STATE_NAME
    if not path.exists():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: state version {raw.get('version')} is not the supported "
                         f"{STATE_VERSION}; start a new run directory")
    phase = PhaseRecord(**raw.pop("phase")) if raw.get("phase") else None
    raw.pop("phase", None)
    finished = [PhaseRecord(**p) for p in raw.pop("finished")]
    return RunState(phase=phase, finished=finished, **raw)


#: Folders whose entries are owned by the run state (everything else is left alone).
MANAGED_DIRS = ("models", "pool", "replay", "phases")


def prune(run_dir: Path, state: RunState) -> None:
    """Delete managed files and checkpoint folders the state does not reference.

    Keeps every referenced path and the folders above it; inside ``phases/<phase>/`` only
    ``checkpoint-*`` folders are managed (the phase's other outputs stay).
    """
    keep = {run_dir / p for p in state.referenced()}
    for top in MANAGED_DIRS:
        root = run_dir / top
        if not root.is_dir():
            continue
        candidates = (root.glob("*/checkpoint-*") if top == "phases" else root.iterdir())
        for path in candidates:
            if path in keep or any(k.is_relative_to(path) for k in keep):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def discard_uncommitted(run_dir: Path) -> None:
    """Clear what a run killed before its first commit left, so that it can start again.

    Without ``state.json`` nothing in the managed folders belongs to a committed run. They are
    removed only from a folder that a run has started in (it holds ``config.json``).

    Raises:
        FileExistsError: ``run_dir`` has managed folders but no ``config.json``: it is not a
            forksearch run and is left alone.
    """
    leftovers = [run_dir / top for top in MANAGED_DIRS if (run_dir / top).exists()]
    if not leftovers:
        return
    if not (run_dir / CONFIG_NAME).exists():
        names = ", ".join(p.name for p in leftovers)
        raise FileExistsError(f"{run_dir} holds {names} but no {CONFIG_NAME} nor {STATE_NAME}: "
                              "not a forksearch run; choose a new run directory")
    log.warning("%s: a run was stopped before its first commit; starting it again", run_dir)
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
