"""Measurement of a training run: batch and held-out figures, and the ``metrics.jsonl`` log.

``metrics.jsonl`` holds one JSON object per optimizer step of the whole run (``step`` counts
steps across phases). Figures without a ``dev_`` prefix describe the batch the step trained on
(RL: its rollouts; SFT: its demonstrations, token entropies teacher-forced); ``dev_`` figures
come from episodes of the current policy on the held-out split, at the steps where one ran
(``null`` elsewhere). In a multi-process run the batch figures cover the batch of every
process (``episodes`` counts its episodes or demonstrations) and the main process alone writes
the file (see :mod:`agents.training.distributed`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.evaluation import json_safe, summarize
from agents.training.checkpoint import atomic_write_text
from agents.trajectory import Trajectory

METRICS_NAME = "metrics.jsonl"

#: Figures summarised from a set of episodes (prefixed ``dev_`` for held-out ones).
EPISODE_FIELDS = (
    "episodes", "reward", "em", "f1", "invalid_action_rate", "searches_per_episode",
    "entropy_all", "entropy_query", "entropy_answer", "forking_share",
    "strategy_entropy", "sequence_entropy", "unique_query_ratio", "distinct_2",
    "success_strategy_entropy", "wrong_entity_rate",
)
#: Fields present in every row (``null`` when not measured at that step).
ROW_FIELDS = (
    "phase", "phase_index", "step", "phase_step", "loss", "learning_rate",
    *EPISODE_FIELDS, "dev_em", "dev_f1", "dev_pass_at_k", "dev_invalid_action_rate",
    "dev_strategy_entropy", "dev_unique_query_ratio", "dev_searches_per_episode",
    "dev_entropy_all", "dev_entropy_query", "dev_entropy_answer",
    "dev_success_strategy_entropy", "dev_wrong_entity_rate",
)


def episode_stats(trajectories: Sequence[Trajectory], k: int = 1,
                  prefix: str = "") -> dict[str, float]:
    """Summarise a set of episodes as flat figures (see ``agents.evaluation.summarize``).

    Args:
        trajectories: Episodes (several samples per question allowed).
        k: The k of pass@k.
        prefix: Prepended to every key (``dev_`` for held-out episodes).

    Returns:
        ``EPISODE_FIELDS`` (``episodes`` counts them) plus ``pass_at_k`` and
        ``em_<question type>``, NaN where undefined.
    """
    summary = summarize(trajectories, k=k)
    diversity = summary["diversity"]
    flat: dict[str, float] = {
        "episodes": len(trajectories),
        "reward": _mean([t.reward for t in trajectories]),
        "pass_at_k": summary["pass_at_k"],
        **{f"em_{qtype}": em for qtype, em in summary["em_by_type"].items()},
        # Per-label shares of the queries, for the strategy-distribution-over-time plot.
        **{f"share_{label}": v for label, v in diversity["strategy_distribution"].items()},
    }
    for name in EPISODE_FIELDS:
        if name not in flat:
            flat[name] = summary[name] if name in summary else diversity[name]
    return {f"{prefix}{k_}": float(v) for k_, v in flat.items()}


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def make_row(phase: str, phase_index: int, step: int, phase_step: int,
             logs: Mapping[str, Any]) -> dict[str, Any]:
    """One ``metrics.jsonl`` row: every ``ROW_FIELDS`` key, then the trainer's other logs."""
    row: dict[str, Any] = {"phase": phase, "phase_index": phase_index, "step": step,
                           "phase_step": phase_step}
    for name in ROW_FIELDS[4:]:
        row[name] = logs.get(name)
    for name, value in logs.items():
        row.setdefault(name, value)
    return json_safe(row)


class MetricsLog:
    """Append-only ``metrics.jsonl`` whose rows have strictly increasing, unique ``step``.

    Args:
        path: The JSONL file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self) -> list[dict[str, Any]]:
        """Every complete row (a torn last line, from a killed writer, is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def truncate(self, last_step: int) -> None:
        """Keep only rows with ``step <= last_step`` (the steps a checkpoint holds)."""
        kept = [r for r in self.rows() if r.get("step", math.inf) <= last_step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row and flush it to disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
