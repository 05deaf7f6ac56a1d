"""Step many search environments at once with one retrieval call per step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from corpora import Hit
from envs.protocol import parse_action
from envs.search_env import SearchEnv

StepResult = tuple[str, float, bool, bool, dict[str, Any]]


class SearchEnvBatch:
    """A batch of ``SearchEnv`` episodes that share one retriever.

    Unlike a Gymnasium vector env it does not auto-reset: each slot runs one episode, and
    ``step`` takes actions only for the slots still running, so a rollout engine can drop
    finished episodes from its generation batch.

    Example:
        >>> envs = [SearchEnv(corpus, "test", retriever) for _ in range(8)]
        >>> batch = SearchEnvBatch(envs)
        >>> observations, infos = batch.reset(qids=[q.qid for q in envs[0].questions[:8]])
    """

    def __init__(self, envs: Sequence[SearchEnv]) -> None:
        if not envs:
            raise ValueError("expected at least one environment")
        retriever = envs[0].retriever
        if any(env.retriever is not retriever for env in envs):
            raise ValueError("all environments of a batch must share one retriever object")
        self.envs = list(envs)
        self.retriever = retriever

    def __len__(self) -> int:
        return len(self.envs)

    def reset(
        self, qids: Sequence[str | None] | None = None, seed: int | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Reset every slot (on ``qids`` where given); ``seed`` seeds slot i with seed + i."""
        qids = list(qids) if qids is not None else [None] * len(self.envs)
        if len(qids) != len(self.envs):
            raise ValueError(f"expected {len(self.envs)} qids, got {len(qids)}")
        results = [
            env.reset(
                seed=None if seed is None else seed + i, options={"qid": qid} if qid else None
            )
            for i, (env, qid) in enumerate(zip(self.envs, qids))
        ]
        return [r[0] for r in results], [r[1] for r in results]

    def step(self, actions: dict[int, str]) -> dict[int, StepResult]:
        """Apply one action per listed slot; all searches go to the retriever in one call."""
        parsed = {i: parse_action(a) for i, a in actions.items()}
        searching = [i for i, p in parsed.items() if p.kind == "search" and not self.envs[i].done]
        top_k = max((self.envs[i].top_k for i in searching), default=1)
        hits: dict[int, list[Hit]] = {}
        if searching:
            results = self.retriever.search([parsed[i].content for i in searching], top_k)
            hits = {i: r[: self.envs[i].top_k] for i, r in zip(searching, results)}
        return {i: self.envs[i].apply(actions[i], parsed[i], hits.get(i, [])) for i in actions}
