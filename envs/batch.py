"""Step many search environments at once with one retrieval call per step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from corpora import Hit
from envs.search_env import SearchEnv, StepResult


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
        for env in envs:
            if not isinstance(env, SearchEnv):
                raise TypeError(f"expected SearchEnv environments, got {type(env).__name__}")
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

    def step(self, actions: Mapping[int, str]) -> dict[int, StepResult]:
        """Apply one action per listed slot; all searches go to the retriever in one call.

        Actions are data (a bad one is an invalid action of its slot, as in ``SearchEnv.step``);
        slots are the caller's: anything but an int in ``range(len(self))`` raises.

        Raises:
            TypeError: ``actions`` is not a mapping, or a slot is not an int.
            KeyError: A slot outside ``range(len(self))`` (negative ones included).
        """
        if not isinstance(actions, Mapping):
            raise TypeError(f"expected a dict of slot -> action, got {type(actions).__name__}")
        actions = {self._slot(slot): action for slot, action in actions.items()}
        parsed = {i: self.envs[i].parse(a) for i, a in actions.items()}
        searching = [i for i, p in parsed.items() if p.kind == "search" and not self.envs[i].done]
        top_k = max((self.envs[i].top_k for i in searching), default=1)
        hits: dict[int, list[Hit]] = {}
        if searching:
            results = self.retriever.search([parsed[i].content for i in searching], top_k)
            hits = {i: r[: self.envs[i].top_k] for i, r in zip(searching, results)}
        return {i: self.envs[i].apply(actions[i], parsed[i], hits.get(i, [])) for i in actions}

    def _slot(self, slot: object) -> int:
        valid = f"slots are 0 to {len(self.envs) - 1}"
        if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)):
            raise TypeError(f"expected an int slot, got {slot!r} ({type(slot).__name__}); {valid}")
        if not 0 <= slot < len(self.envs):
            raise KeyError(f"no slot {slot} in a batch of {len(self.envs)}; {valid}")
        return int(slot)
