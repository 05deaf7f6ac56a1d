"""Trajectory records: one finished episode, saved as one JSONL line."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class Trajectory:
    """One episode of one agent on one question.

    Token-level fields are filled by LM policies only (empty for scripted agents).
    ``completion_ids`` holds every token after the prompt, agent and environment alike;
    ``env_mask`` is 1 on agent-generated tokens and 0 on environment tokens (``<information>``
    blocks and feedback), so training puts no loss on retrieved text. ``logprobs`` and
    ``entropies`` are the sampling-time values (0.0 on environment tokens); ``query_mask`` and
    ``answer_mask`` mark the agent tokens inside ``<search>`` and ``<answer>`` tags.
    """

    qid: str
    question: str
    agent: str
    sample: int = 0
    actions: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    action_types: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    retrieved_ids: list[list[str]] = field(default_factory=list)
    strategy_labels: list[str] = field(default_factory=list)
    answer: str | None = None
    reward: float = 0.0
    em: float = 0.0
    f1: float = 0.0
    invalid_actions: int = 0
    truncated: bool = False
    qtype: str = "unknown"
    strategy: str = ""
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    query_mask: list[int] = field(default_factory=list)
    answer_mask: list[int] = field(default_factory=list)

    @property
    def searches(self) -> int:
        """Number of searches in the episode."""
        return len(self.queries)

    @property
    def success(self) -> bool:
        """Whether the episode's answer was an exact match."""
        return self.em >= 1.0


def save_jsonl(trajectories: Iterable[Trajectory], path: str | Path) -> Path:
    """Write trajectories to ``path``, one JSON object per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for t in trajectories:
            f.write(json.dumps(asdict(t), ensure_ascii=False) + "\n")
    return path


def load_jsonl(path: str | Path) -> list[Trajectory]:
    """Read trajectories written by ``save_jsonl``; errors name the file and line."""
    names = {f.name for f in fields(Trajectory)}
    out: list[Trajectory] = []
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{path}:{lineno}: invalid JSON ({err}); fix or remove that line"
                ) from err
            unknown = set(record) - names
            if unknown:
                raise ValueError(f"{path}:{lineno}: unknown trajectory fields {sorted(unknown)}")
            out.append(Trajectory(**record))
    return out
