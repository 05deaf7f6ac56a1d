"""Profile sections: nesting, paths, totals, and the rollout's sections."""

from __future__ import annotations

import pytest

import corpora
from agents.build import make_envs
from agents.profiling import profiling, section
from agents.registry import make_agent_policy
from agents.rollout import rollout
from agents.training.config import EnvConfig


def test_sections_sum_by_path_and_cost_nothing_outside_a_profile() -> None:
    with section("outside"):  # no profile open: nothing recorded, nothing raised
        pass
    with profiling() as timings:
        for _ in range(3):
            with section("rl"), section("step"), section("env"):
                pass
        with section("eval"), section("env"):
            pass
    assert timings.calls == {"rl": 3, "rl/step": 3, "rl/step/env": 3, "eval": 1, "eval/env": 1}
    assert "outside" not in timings.seconds
    assert timings.seconds["rl"] >= timings.seconds["rl/step"] >= timings.seconds["rl/step/env"]
    assert timings.total("/env", "rl/") == timings.seconds["rl/step/env"]
    assert timings.total("env") == pytest.approx(
        timings.seconds["rl/step/env"] + timings.seconds["eval/env"])
    rows = {r["section"]: r for r in timings.table()}
    assert rows["rl/step"]["of_parent"] <= 1.0 and rows["rl"]["of_parent"] == 1.0


def test_total_counts_a_section_inside_a_same_named_one_once() -> None:
    with profiling() as timings, section("env"), section("env"):
        pass
    assert timings.total("env") == timings.seconds["env"]


def test_profiles_do_not_nest_and_close_on_errors() -> None:
    with pytest.raises(ValueError), profiling(), section("a"):
        raise ValueError("boom")
    with profiling() as timings:  # the failed profile closed, so this one opens afresh
        with pytest.raises(RuntimeError, match="already open"), profiling():
            pass
    assert dict(timings.calls) == {}


def test_rollout_bills_policy_env_and_labels_per_turn() -> None:
    corpus = corpora.load("synthetic", size="tiny")
    batch = make_envs(corpus, corpora.make_retriever("bm25", corpus), EnvConfig(), "test", 4)
    qids = [q.qid for q in corpus.split("test")[:6]]
    with profiling() as timings:
        episodes = rollout(make_agent_policy("demo_decomposition", corpus), batch, qids)
    turns = sum(len(t.actions) for t in episodes)
    # One env call per reset and per batched step; policy calls: begin per episode, act per step.
    steps = timings.calls["policy"] - len(episodes)
    assert timings.calls["env"] == len(episodes) + steps
    assert steps <= turns and timings.calls["labels"] == len(episodes)
