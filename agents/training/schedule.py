"""The phase schedule (which phase comes next) and the diversity trigger of RL phases.

Both keep their whole state in JSON-able dicts so a checkpoint can restore them exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.diversity import strategy_entropy
from agents.training.config import ScheduleConfig
from agents.trajectory import Trajectory


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
        if remaining <= 0 or kind == "sft_only":
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
    """Decides when an RL phase squeezes the diversity of its successes.

    The phase's rollouts are pooled over windows of ``window`` optimizer steps, and each window
    is measured by

    - ``success_strategy_entropy``: strategy entropy (bits) of the queries of correct episodes,
      which an agent cannot raise by failing in new ways;
    - ``group_pass_rate``: the share of GRPO groups (the episodes of one question in one
      rollout batch) with a correct episode, pass@G on the training questions;
    - ``strategy_entropy``: strategy entropy of all queries (no query at all: 0 bits).

    The phase's first window, the policy fresh from SFT, is the reference. A later window fires
    the trigger when its success-strategy entropy fell below ``(1 - drop)`` times the
    reference's, or its group pass rate below ``(1 - pass_drop)`` times the reference's (the
    squeeze: fewer ways to succeed, fewer questions solved at all); any window fires when its
    strategy entropy is below ``threshold`` bits. With ``patience`` > 1 the trigger waits for
    that many such windows in a row, so that one unlucky window (40 groups move the pass rate
    by several points) does not stop the phase. ``fired`` says which figure fired last, with
    its value and the reference.

    Args:
        threshold: Absolute floor of the strategy entropy of all queries, in bits.
        drop: Relative fall of the success-strategy entropy that fires, in (0, 1).
        window: Optimizer steps per window.
        pass_drop: Relative fall of the group pass rate that fires, in (0, 1].
        patience: Windows in a row that must show the squeeze.
    """

    threshold: float
    drop: float
    window: int
    pass_drop: float = 1.0
    patience: int = 1
    reference: dict[str, float] | None = None
    strikes: int = 0  # windows in a row that showed the squeeze
    # The open window: every query's label, the labels of correct episodes' queries, and
    # whether each GRPO group had a correct episode.
    labels: list[str] = field(default_factory=list)
    success_labels: list[str] = field(default_factory=list)
    groups_solved: list[bool] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    fired: dict[str, Any] | None = None

    def observe(self, episodes: Sequence[Trajectory]) -> None:
        """Add freshly generated rollouts (one rollout batch: its groups are its questions)."""
        solved: dict[str, bool] = {}
        for t in episodes:
            self.labels.extend(t.strategy_labels)
            if t.success:
                self.success_labels.extend(t.strategy_labels)
            solved[t.qid] = solved.get(t.qid, False) or t.success
        self.groups_solved.extend(solved.values())

    def closes_window(self, phase_step: int) -> bool:
        """Whether ``check(phase_step)`` closes a window."""
        return phase_step % self.window == 0

    def check(self, phase_step: int) -> bool:
        """At the end of a window, close it and say whether the squeeze shows."""
        if not self.closes_window(phase_step):
            return False
        groups = self.groups_solved
        figures = {
            "step": float(phase_step),
            "success_strategy_entropy": strategy_entropy(self.success_labels),
            "group_pass_rate": sum(groups) / len(groups) if groups else 0.0,
            "strategy_entropy": strategy_entropy(self.labels),
        }
        self.labels, self.success_labels, self.groups_solved = [], [], []
        self.history.append(figures)
        reasons = []
        if figures["strategy_entropy"] < self.threshold:
            reasons.append(("strategy_entropy", self.threshold))
        if self.reference is None:
            self.reference = figures
        else:
            ref = self.reference
            for name, fall in (("success_strategy_entropy", self.drop),
                               ("group_pass_rate", self.pass_drop)):
                if figures[name] < (1.0 - fall) * ref[name]:
                    reasons.append((name, (1.0 - fall) * ref[name]))
        self.strikes = self.strikes + 1 if reasons else 0
        if self.strikes < self.patience:
            return False
        name, bound = reasons[0]
        self.fired = {"step": phase_step, "figure": name, "value": figures[name],
                      "below": bound,
                      "reference": self.reference[name] if name != "strategy_entropy"
                      else None}
        return True

    def describe(self) -> str:
        """One line on what fired the trigger ("" when it has not fired)."""
        if self.fired is None:
            return ""
        f = self.fired
        ref = f" (reference {f['reference']:.3g})" if f["reference"] is not None else ""
        return (f"trigger at phase step {f['step']}: {f['figure']} {f['value']:.3g} < "
                f"{f['below']:.3g}{ref}")

    def state_dict(self) -> dict[str, Any]:
        """Return the whole trigger as JSON-able values."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EntropyTrigger:
        """Rebuild a trigger from ``state_dict``."""
        return cls(**state)
