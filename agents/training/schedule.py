"""The phase schedule (which phase comes next) and the strategy-entropy trigger of RL phases.

Both keep their whole state in JSON-able dicts so a checkpoint can restore them exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agents.diversity import strategy_entropy
from agents.training.config import ScheduleConfig


@dataclass(frozen=True)
class PhasePlan:
    """One phase to run: ``kind`` is ``sft`` or ``rl``; RL may stop early on the trigger."""

    kind: str
    max_steps: int
    refresh: bool = False


@dataclass
class Schedule:
    """Plans phases from the schedule config and the phases finished so far.

    Args:
        cfg: The schedule settings.
        sft_steps: Steps of the first SFT phase.
    """

    cfg: ScheduleConfig
    sft_steps: int
    rl_steps_done: int = 0
    sft_phases_done: int = 0
    last_kind: str | None = None

    def next_phase(self) -> PhasePlan | None:
        """Plan the next phase (None when the RL budget is spent)."""
        kind, remaining = self.cfg.kind, self.cfg.rl_steps - self.rl_steps_done
        if self.last_kind is None:
            first = PhasePlan("rl", remaining) if kind == "rl_only" else None
            return first or PhasePlan("sft", self.sft_steps)
        if remaining <= 0:
            return None
        if self.last_kind == "rl" and kind in ("alternating", "diversity_triggered"):
            return PhasePlan("sft", self.cfg.refresh_steps, refresh=True)
        steps = min(self.cfg.period, remaining) if kind == "alternating" else remaining
        return PhasePlan("rl", steps)

    @property
    def triggered(self) -> bool:
        """Whether RL phases stop early when strategy entropy collapses."""
        return self.cfg.kind == "diversity_triggered"

    def finish(self, kind: str, steps: int) -> None:
        """Record a finished phase of ``steps`` optimizer steps."""
        if kind == "rl":
            self.rl_steps_done += steps
        else:
            self.sft_phases_done += 1
        self.last_kind = kind

    def state_dict(self) -> dict[str, Any]:
        """Return the progress of the schedule (its config is not state)."""
        return {"rl_steps_done": self.rl_steps_done, "sft_phases_done": self.sft_phases_done,
                "last_kind": self.last_kind}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.rl_steps_done = int(state["rl_steps_done"])
        self.sft_phases_done = int(state["sft_phases_done"])
        self.last_kind = state["last_kind"]


@dataclass
class EntropyTrigger:
    """Decides when an RL phase's query-strategy entropy has collapsed.

    Strategy labels of the RL rollouts are pooled over windows of ``window`` optimizer steps.
    The first window's entropy is the phase's reference; the trigger fires at the end of a
    window whose entropy (bits) is below ``threshold`` or below ``(1 - drop) * reference``. A
    window without any query has entropy 0 (the policy stopped searching altogether).

    Args:
        threshold: Absolute entropy floor in bits.
        drop: Relative fall from the reference that fires, in (0, 1).
        window: Optimizer steps per window.
    """

    threshold: float
    drop: float
    window: int
    reference: float | None = None
    pending: list[str] = field(default_factory=list)
    history: list[float] = field(default_factory=list)

    def observe(self, labels: list[str]) -> None:
        """Add the strategy labels of freshly generated rollouts."""
        self.pending.extend(labels)

    def check(self, phase_step: int) -> bool:
        """At the end of a window, close it and say whether the entropy collapsed."""
        if phase_step % self.window != 0:
            return False
        # No query at all is the extreme collapse: strategy_entropy gives it 0 bits.
        entropy = strategy_entropy(self.pending)
        self.pending = []
        self.history.append(entropy)
        if self.reference is None:
            self.reference = entropy
            return entropy < self.threshold
        return entropy < self.threshold or entropy < (1.0 - self.drop) * self.reference

    def state_dict(self) -> dict[str, Any]:
        """Return the whole trigger as JSON-able values."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EntropyTrigger:
        """Rebuild a trigger from ``state_dict``."""
        return cls(**state)
