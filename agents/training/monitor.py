"""What runs beside a phase's TRL trainer: measurement, logging, trigger and checkpoint commits.

:class:`PhaseMonitor` is a ``transformers`` callback attached to the SFT and RL trainers alike;
:class:`MeasuredTrainerMixin` makes a trainer hand the monitor's figures to ``Trainer.log`` so
that ``report_to`` backends (TensorBoard) and ``metrics.jsonl`` receive the same values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from agents.training import distributed
from agents.training.demonstrations import ReplayBuffer
from agents.training.metrics import MetricsLog, episode_stats, make_row
from agents.training.schedule import EntropyTrigger
from agents.trajectory import Trajectory

log = logging.getLogger(__name__)

#: Evaluates the current model on the held-out split; returns ``dev_``-prefixed figures.
Evaluator = Callable[[Any], dict[str, float]]
#: Commits a checkpoint: ``(phase steps it holds, its folder, whether it ends the phase,
#: the phase's timing so far)`` (see :meth:`PhaseMonitor.timing_now`).
Committer = Callable[[int, Path, bool, dict[str, float]], None]


@dataclass
class PhaseInfo:
    """Where a phase sits in the run."""

    kind: str
    index: int
    start_step: int
    max_steps: int


@dataclass
class PhaseMonitor(TrainerCallback):
    """Measures and logs one phase, fires the entropy trigger, and commits its checkpoints.

    Args:
        phase: The phase being run.
        metrics: The run's ``metrics.jsonl``.
        evaluate: Held-out evaluation of the current model (every process calls it, at the
            same steps: it may split the questions between them).
        commit: Called after each checkpoint is written.
        eval_every: Also evaluate every this many phase steps (0: only at the phase's end).
        trigger: Strategy-entropy trigger that may end an RL phase early.
        replay: Replay buffer fed with the RL rollouts.
        progress: Show a progress bar.
        timing: The phase's ``timing`` committed by earlier processes (a resumed phase).
    """

    phase: PhaseInfo
    metrics: MetricsLog
    evaluate: Evaluator
    commit: Committer
    eval_every: int = 0
    trigger: EntropyTrigger | None = None
    replay: ReplayBuffer | None = None
    progress: bool = True
    timing: dict[str, float] = field(default_factory=dict)
    batch_stats: dict[str, float] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    stopped_early: bool = False
    _bar: Any = None
    _started: float | None = None

    def observe(self, episodes: Sequence[Trajectory], tokens: int) -> None:
        """Record a fresh training batch (rollouts or demonstrations) of ``tokens`` tokens.

        Called on every process with its own share of the batch: the figures, trigger and
        replay buffer see the whole batch, gathered from every process.
        """
        shares = distributed.gather([(list(episodes), tokens)])
        episodes = [t for share, _ in shares for t in share]
        self.batch_stats = episode_stats(episodes)
        # Every process's tokens since this start; timing_now() adds those committed earlier.
        self.tokens += sum(n for _, n in shares)
        if self.trigger is not None:
            self.trigger.observe(episodes)
        if self.replay is not None:
            self.replay.observe(episodes)

    def set_token_entropy(self, stats: dict[str, float]) -> None:
        """Override the batch's token-entropy figures (SFT: teacher-forced on demonstrations)."""
        self.batch_stats.update(stats)

    def take_logs(self) -> dict[str, float]:
        """Figures to add to this step's trainer logs: the batch's, and an evaluation if one ran."""
        logs = {**self.batch_stats, **self.pending}
        self.pending = {}
        return logs

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        """Open the progress bar at the (possibly resumed) phase step."""
        self._started = time.perf_counter()
        self._bar = tqdm(total=self.phase.max_steps, initial=state.global_step,
                         desc=f"phase {self.phase.index} {self.phase.kind}",
                         disable=not (self.progress and state.is_world_process_zero),
                         dynamic_ncols=True)

    def on_step_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:
        """Check the trigger, then evaluate on the held-out split when the step calls for it."""
        trigger = self.trigger
        if trigger is not None and trigger.check(state.global_step):
            self.stopped_early = state.global_step < state.max_steps
            control.should_training_stop = True
            control.should_save = True
            if state.is_world_process_zero:
                log.info("phase %d: %s", self.phase.index, trigger.describe())
        if trigger is not None and trigger.closes_window(state.global_step):
            # The window just closed: its figures go into this step's row.
            self.pending.update({f"window_{k}": v for k, v in trigger.history[-1].items()
                                 if k != "step"})
        ends = control.should_training_stop or state.global_step >= state.max_steps
        due = self.eval_every > 0 and state.global_step % self.eval_every == 0
        if ends or due:
            self.pending.update(self.evaluate(kwargs["model"]))

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Append the step's row to ``metrics.jsonl`` (the end-of-training summary is no step).

        Only the main process writes: every process logs the same, gathered, figures.
        """
        if logs is None or "train_runtime" in logs or not state.is_world_process_zero:
            return
        self.metrics.append(make_row(self.phase.kind, self.phase.index,
                                     self.phase.start_step + state.global_step,
                                     state.global_step, logs))
        if self._bar is not None:
            self._bar.update(state.global_step - self._bar.n)
            shown = {k: logs[k] for k in ("loss", "reward", "dev_em") if logs.get(k) is not None}
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> None:
        """Commit the checkpoint just written."""
        done = control.should_training_stop or state.global_step >= state.max_steps
        folder = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        self.commit(state.global_step, folder, done, self.timing_now())

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()

    def timing_now(self) -> dict[str, float]:
        """Training seconds and batch tokens of the phase so far, over every process.

        What a killed process did after its last commit is not counted: the resumed process
        does it again and counts it.
        """
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return {"seconds": self.timing.get("seconds", 0.0) + running,
                "tokens": self.timing.get("tokens", 0.0) + self.tokens}


def throughput(steps: int, timing: dict[str, float]) -> dict[str, float]:
    """Training seconds, steps and tokens per second of a phase from its committed ``timing``."""
    seconds = timing.get("seconds", 0.0)
    rate = 1.0 / max(seconds, 1e-9)
    return {"seconds": seconds, "steps_per_s": steps * rate,
            "tokens_per_s": timing.get("tokens", 0.0) * rate}


class MeasuredTrainerMixin:
    """Adds the monitor's figures to every step's logs before ``Trainer.log`` dispatches them.

    Also skips TRL's Hub model card: TRL writes a ``README.md`` into the output folder at every
    checkpoint, which in a run directory only clutters each phase's folder.
    """

    monitor: PhaseMonitor

    def create_model_card(self, *args: object, **kwargs: object) -> None:
        """Write no model card (see the class docstring)."""

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """``Trainer.log`` with the batch figures and any held-out evaluation merged in."""
        if "train_runtime" not in logs:
            logs.update(self.monitor.take_logs())
        super().log(logs, start_time)  # type: ignore[misc]
