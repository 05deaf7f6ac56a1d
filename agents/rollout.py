"""Batched multi-turn rollouts: many episodes at once, one retrieval call per turn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tqdm.auto import tqdm

from agents.base import Agent
from agents.profiling import section
from agents.strategies import label_episode
from agents.trajectory import TokenRecord, Trajectory
from envs.batch import SearchEnvBatch


class BatchPolicy(Protocol):
    """Acts for many episodes at once (an LM batches generation across them)."""

    name: str

    def begin(self, slot: int, question: str, qid: str, prompt: str) -> None:
        """Start the episode in ``slot``; ``prompt`` is the environment's first observation."""
        ...

    def act(self, slots: Sequence[int], observations: Sequence[str]) -> list[str]:
        """One turn for each slot, given the observation each slot received last."""
        ...

    def token_record(self, slot: int) -> TokenRecord:
        """Token-level record of the slot's finished episode (empty for scripted agents)."""
        ...


class ScriptedPolicy:
    """Runs one scripted ``Agent`` instance per slot behind the ``BatchPolicy`` interface."""

    def __init__(self, make_agent: Callable[[], Agent]) -> None:
        self.make_agent = make_agent
        self.name = make_agent().name
        self.agents: dict[int, Agent] = {}

    def begin(self, slot: int, question: str, qid: str, prompt: str) -> None:
        """Reset the slot's agent (created on first use)."""
        if slot not in self.agents:
            self.agents[slot] = self.make_agent()
        self.agents[slot].reset(question, qid)

    def act(self, slots: Sequence[int], observations: Sequence[str]) -> list[str]:
        """Each slot's agent acts on its own observation."""
        return [self.agents[s].act(o) for s, o in zip(slots, observations)]

    def token_record(self, slot: int) -> TokenRecord:
        """Scripted agents have no tokens."""
        return TokenRecord()


def rollout(
    policy: BatchPolicy,
    batch: SearchEnvBatch,
    qids: Sequence[str],
    samples: int = 1,
    progress: bool = False,
    strategy: str = "",
) -> list[Trajectory]:
    """Play ``samples`` episodes of each question, ``len(batch)`` episodes at a time.

    Every turn, all running episodes act together (one ``policy.act`` call) and their searches
    are retrieved together (one retriever call). Returns one trajectory per episode, in
    (question, sample) order.
    """
    jobs = [(qid, s) for qid in qids for s in range(samples)]
    results: list[Trajectory | None] = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc=f"rollout {policy.name}", disable=not progress, leave=False)
    next_job = 0
    running: dict[int, tuple[int, Trajectory]] = {}  # slot -> (job index, record so far)
    pending_obs: dict[int, str] = {}
    while next_job < len(jobs) or running:
        for slot in range(len(batch)):
            if slot not in running and next_job < len(jobs):
                qid, sample = jobs[next_job]
                with section("env"):
                    obs, info = batch.envs[slot].reset(options={"qid": qid})
                question = batch.envs[slot].question
                with section("policy"):
                    policy.begin(slot, question.question, qid, obs)
                running[slot] = (
                    next_job,
                    Trajectory(
                        qid=qid,
                        question=question.question,
                        agent=policy.name,
                        sample=sample,
                        qtype=question.qtype,
                        strategy=strategy,
                    ),
                )
                pending_obs[slot] = obs
                next_job += 1
        slots = sorted(running)
        with section("policy"):
            actions = policy.act(slots, [pending_obs[s] for s in slots])
        with section("env"):
            steps = batch.step(dict(zip(slots, actions)))
        for slot, action in zip(slots, actions):
            obs, reward, terminated, truncated, info = steps[slot]
            job, record = running[slot]
            record.actions.append(action)
            record.observations.append(obs)
            record.action_types.append(info["action_type"])
            pending_obs[slot] = obs
            if terminated or truncated:
                _finish(record, info, reward, truncated)
                record.tokens = policy.token_record(slot)
                results[job] = record
                del running[slot]
                bar.update(1)
    bar.close()
    return [r for r in results if r is not None]


def _finish(
    record: Trajectory, info: dict[str, Any], reward: float, truncated: bool
) -> None:
    record.queries = list(info["queries"])
    record.retrieved_ids = [list(ids) for ids in info["retrieved_ids"]]
    record.answer = info["answer"]
    record.reward, record.em, record.f1 = reward, info["em"], info["f1"]
    record.invalid_actions = info["invalid_actions"]
    record.truncated = truncated
    # The documents the environment showed, not the corpus's: a remote retriever's server
    # sends documents that the local corpus need not hold.
    texts = [[f"{d.title} {d.text}" for d in docs] for docs in info["retrieved_documents"]]
    with section("labels"):
        record.strategy_labels = label_episode(record.question, record.queries, texts)
