"""The diversity trigger inside a phase's monitor, fed real rollouts that collapse."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from transformers import TrainerControl, TrainerState

import corpora
from agents.build import make_envs
from agents.registry import make_agent_policy
from agents.rollout import rollout
from agents.training.config import EnvConfig, ScheduleConfig
from agents.training.metrics import MetricsLog
from agents.training.monitor import PhaseInfo, PhaseMonitor
from agents.training.schedule import EntropyTrigger


def test_a_collapse_onto_one_strategy_stops_the_phase_and_says_why(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    corpus = corpora.load("synthetic", size="tiny")
    batch = make_envs(corpus, corpora.make_retriever("bm25", corpus), EnvConfig(), "train", 16)
    qids = [q.qid for q in corpus.split("train")[:12]]

    def play(agents: list[str]) -> list:
        return [t for name in agents for t in rollout(make_agent_policy(name, corpus), batch, qids)]

    sched = ScheduleConfig()  # the calibrated defaults
    trigger = EntropyTrigger(sched.entropy_threshold, sched.entropy_drop, 1, sched.pass_drop)
    monitor = PhaseMonitor(PhaseInfo("rl", 1, 0, 10), MetricsLog(tmp_path / "metrics.jsonl"),
                           evaluate=lambda model: {}, commit=lambda *a: None, trigger=trigger,
                           progress=False)

    def step(n: int, episodes: list) -> TrainerControl:
        monitor.observe(episodes, tokens=0)
        control = TrainerControl()
        monitor.on_step_end(None, TrainerState(global_step=n, max_steps=10), control,
                            model=None)
        return control

    # Post-SFT: the same questions solved in several ways (demonstrators of four strategies).
    diverse = play(["demo_entity", "demo_keyword", "demo_verbatim", "demo_reformulation"])
    assert not step(1, diverse).should_training_stop
    assert monitor.take_logs()["window_success_strategy_entropy"] > 1.5
    # Still diverse, in another draw: noise, no firing.
    assert not step(2, diverse[::-1]).should_training_stop
    # Squeezed onto two strategies: every query is the question or its rarest words.
    with caplog.at_level(logging.INFO, logger="agents.training.monitor"):
        control = step(3, play(["demo_verbatim", "demo_keyword"]))
    assert control.should_training_stop and control.should_save and monitor.stopped_early
    assert trigger.fired is not None and trigger.fired["figure"] == "success_strategy_entropy"
    assert trigger.fired["value"] < (1 - sched.entropy_drop) * trigger.fired["reference"]
    assert "trigger at phase step 3: success_strategy_entropy" in caplog.text
    assert monitor.take_logs()["window_success_strategy_entropy"] == trigger.fired["value"]
