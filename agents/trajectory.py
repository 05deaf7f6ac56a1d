"""Trajectory records: one finished episode, saved as one JSONL line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class TokenRecord:
    """Token-level record of one LM episode, one entry per completion token in every list.

    ``completion_ids`` holds every token after ``prompt_ids``, agent and environment alike;
    ``env_mask`` is 1 on agent-generated tokens and 0 on environment tokens (``<information>``
    blocks and feedback), so training puts no loss on retrieved text. ``logprobs`` and
    ``entropies`` are the sampling-time values (0.0 on environment tokens); ``query_mask`` and
    ``answer_mask`` mark the agent tokens inside ``<search>`` and ``<answer>`` tags.
    """

    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    query_mask: list[int] = field(default_factory=list)
    answer_mask: list[int] = field(default_factory=list)

    def __len__(self) -> int:  # tokens so far, prompt included
        return len(self.prompt_ids) + len(self.completion_ids)

    def add_observation(self, ids: Sequence[int]) -> None:
        """Append environment tokens: no loss, no sampling values, inside no tag."""
        zeros, values = [0] * len(ids), [0.0] * len(ids)
        self._extend(ids, zeros, values, values, zeros, zeros)

    def add_turn(self, ids: Sequence[int], logprobs: Sequence[float], entropies: Sequence[float],
                 query_mask: Sequence[int], answer_mask: Sequence[int]) -> None:
        """Append one generated turn with its sampling-time values and tag masks."""
        self._extend(ids, [1] * len(ids), logprobs, entropies, query_mask, answer_mask)

    def rollout_fields(self) -> dict[str, list[Any]]:
        """TRL's ``rollout_func`` fields of this episode, plus the extra ``query_mask``."""
        return {"prompt_ids": self.prompt_ids, "completion_ids": self.completion_ids,
                "logprobs": self.logprobs, "env_mask": self.env_mask,
                "query_mask": self.query_mask}

    def _extend(self, ids: Sequence[int], env_mask: Sequence[int], logprobs: Sequence[float],
                entropies: Sequence[float], query_mask: Sequence[int],
                answer_mask: Sequence[int]) -> None:
        lengths = [len(c) for c in (ids, env_mask, logprobs, entropies, query_mask, answer_mask)]
        if len(set(lengths)) > 1:  # a misaligned column would shift every later token's loss
            raise ValueError(f"expected one value per token, got lengths {lengths} for ids, "
                             "env_mask, logprobs, entropies, query_mask, answer_mask")
        self.completion_ids += ids
        self.env_mask += env_mask
        self.logprobs += logprobs
        self.entropies += entropies
        self.query_mask += query_mask
        self.answer_mask += answer_mask


@dataclass
class Trajectory:
    """One episode of one agent on one question (``tokens`` stays empty for scripted agents)."""

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
    tokens: TokenRecord = field(default_factory=TokenRecord)

    @property
    def searches(self) -> int:
        """Number of searches in the episode."""
        return len(self.queries)

    @property
    def success(self) -> bool:
        """Whether the episode's answer was an exact match."""
        return self.em >= 1.0


def save_jsonl(trajectories: Iterable[Trajectory], path: str | Path) -> Path:
    """Write trajectories to ``path``, one JSON object per line (``tokens`` nested)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for t in trajectories:
            f.write(json.dumps(asdict(t), ensure_ascii=False) + "\n")
    return path


def load_jsonl(path: str | Path) -> list[Trajectory]:
    """Read trajectories written by ``save_jsonl``; errors name the file and line."""
    names = {f.name for f in fields(Trajectory)}
    token_names = {f.name for f in fields(TokenRecord)}
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
            tokens = record.pop("tokens", {})
            unknown = [*(set(record) - names), *(f"tokens.{k}" for k in set(tokens) - token_names)]
            if unknown:
                raise ValueError(f"{path}:{lineno}: unknown trajectory fields {sorted(unknown)}")
            out.append(Trajectory(**record, tokens=TokenRecord(**tokens)))
    return out


def spread_sample(trajectories: Sequence[Trajectory], max_episodes: int) -> list[Trajectory]:
    """All episodes of questions picked evenly across ``trajectories``, at most ``max_episodes``.

    Splits are often ordered by question type (the synthetic world lists its 1-hop questions
    first), so the first episodes would show one type only; evenly spaced questions show them
    all. Every episode of a picked question is kept, so its group of samples stays whole.
    """
    groups: dict[str, list[Trajectory]] = {}
    for trajectory in trajectories:
        groups.setdefault(trajectory.qid, []).append(trajectory)
    qids = list(groups)
    per_question = max(len(g) for g in groups.values()) if groups else 1
    n = min(len(qids), max(1, max_episodes // per_question))
    picked = [qids[i * len(qids) // n] for i in range(n)] if qids else []
    return [t for qid in picked for t in groups[qid]][:max_episodes]
