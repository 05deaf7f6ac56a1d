"""Pure parts of the trainer: config validation, schedule, trigger, pool, run state, metrics log."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import get_type_hints

import pytest
from omegaconf import OmegaConf

from agents.cli.schema import compose_config
from agents.training.checkpoint import PhaseRecord, RunState, load_state, save_state
from agents.training.config import (
    EntropyRegulation,
    RLPhaseConfig,
    ScheduleConfig,
    TrainConfig,
)
from agents.training.demonstrations import DemoPool, ReplayBuffer
from agents.training.metrics import ROW_FIELDS, MetricsLog, make_row
from agents.training.schedule import EntropyTrigger, Schedule
from agents.trajectory import TokenRecord, Trajectory
from corpora.atomic import publish


def test_defaults_are_plain_grpo_with_off_policy_updates() -> None:
    cfg = TrainConfig()
    assert cfg.entropy.policy_loss == "clip" and cfg.rl.off_policy
    assert cfg.corpus == {"name": "synthetic"} and cfg.test.split == "test"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TrainConfig(rl=RLPhaseConfig(num_iterations=1),
                             entropy=EntropyRegulation(policy_loss="kl_cov")), "kl_cov is inert"),
        (lambda: EntropyRegulation(policy_loss="kl"), "entropy.policy_loss must be one of"),
        (lambda: TrainConfig(corpus={"size": "tiny"}), "corpus.name must name a corpus"),
        (lambda: ScheduleConfig(kind="sometimes"), "schedule.kind must be one of"),
        (lambda: RLPhaseConfig(num_generations=1), "rl.num_generations must be >= 2"),
        (lambda: EntropyRegulation(epsilon_low=0.3, epsilon_high=0.2), "epsilon_high"),
        (lambda: ScheduleConfig(kind="sft_then_rl", replay=True), "schedule.replay needs"),
        (lambda: RLPhaseConfig(loss_type="ppo"), "rl.loss_type must be one of"),
        (lambda: TrainConfig(objectives=["test_em", "accuracy"]),
         r"objectives must name summary.json figures.*got \['test_em', 'accuracy'\]"),
        (lambda: TrainConfig(objectives=[]), "objectives must name"),
    ],
)
def test_invalid_settings_say_what_is_wrong(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_on_policy_run_is_valid_without_kl_cov() -> None:
    cfg = TrainConfig(rl=RLPhaseConfig(num_iterations=1))
    assert not cfg.rl.off_policy
    assert RLPhaseConfig(num_iterations=1, steps_per_generation=2).off_policy


def test_configs_work_as_hydra_structured_configs() -> None:
    schema = OmegaConf.structured(TrainConfig)
    merged = OmegaConf.merge(schema, OmegaConf.from_dotlist(
        ["rl.learning_rate=5e-5", "schedule.kind=alternating", "corpus.size=tiny"]))
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, TrainConfig)
    assert cfg.rl.learning_rate == 5e-5 and cfg.schedule.kind == "alternating"
    assert cfg.corpus == {"name": "synthetic", "size": "tiny"}
    with pytest.raises(ValueError, match="schedule.kind"):
        OmegaConf.to_object(OmegaConf.merge(schema, OmegaConf.from_dotlist(["schedule.kind=x"])))


def _plan(cfg: ScheduleConfig, sft_steps: int = 5, rl_taken: dict[int, int] | None = None
          ) -> list[tuple[str, int]]:
    schedule, out = Schedule(cfg, sft_steps), []
    while (plan := schedule.next_phase()) is not None:
        steps = (rl_taken or {}).get(len(out), plan.max_steps)
        out.append((plan.kind, steps))
        schedule.finish(plan.kind, steps)
    return out


def test_schedules_plan_their_phases() -> None:
    assert _plan(ScheduleConfig(kind="rl_only", rl_steps=7)) == [("rl", 7)]
    assert _plan(ScheduleConfig(kind="sft_then_rl", rl_steps=7)) == [("sft", 5), ("rl", 7)]
    assert _plan(ScheduleConfig(kind="alternating", rl_steps=5, period=2, refresh_steps=3)) == [
        ("sft", 5), ("rl", 2), ("sft", 3), ("rl", 2), ("sft", 3), ("rl", 1)]
    # A triggered RL phase that stops after 4 of its 10 steps is followed by a refresh.
    assert _plan(ScheduleConfig(kind="diversity_triggered", rl_steps=10, refresh_steps=3),
                 rl_taken={1: 4}) == [("sft", 5), ("rl", 4), ("sft", 3), ("rl", 6)]


def test_schedule_state_round_trips() -> None:
    cfg = ScheduleConfig(kind="alternating", rl_steps=5, period=2)
    a = Schedule(cfg, 5)
    a.finish("sft", 5)
    a.finish("rl", 2)
    b = Schedule(cfg, 5)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.next_phase() == a.next_phase()


def _batch(groups: list[list[tuple[list[str], bool]]]) -> list[Trajectory]:
    """A rollout batch: per question, its episodes as (labels, correct)."""
    return [Trajectory(qid=f"q{g}", question="?", agent="a", em=float(ok), strategy_labels=labels)
            for g, episodes in enumerate(groups) for labels, ok in episodes]


def test_trigger_fires_on_the_squeeze_of_successes_and_says_which_figure() -> None:
    trigger = EntropyTrigger(threshold=0.5, drop=0.25, window=2, pass_drop=0.5)
    diverse = [[(["entity"], True), (["bridge"], True)],
               [(["keyword"], True), (["verbatim"], True)]]
    trigger.observe(_batch(diverse))  # successes in 4 strategies: 2 bits; 2 of 2 groups pass
    assert not trigger.check(1)  # not a window end: nothing happens
    assert not trigger.check(2) and trigger.reference is not None
    assert trigger.reference["success_strategy_entropy"] == 2.0
    assert trigger.reference["group_pass_rate"] == 1.0
    # Failures in new ways raise the entropy of all queries, not that of the successes:
    # 1.5 bits among successes is a 25% fall exactly, which does not fire.
    trigger.observe(_batch([[(["entity"], True), (["entity"], True)],
                            [(["bridge"], True), (["keyword"], True)],
                            [(["novel"], False), (["repeat"], False)]]))
    assert not trigger.check(4) and trigger.fired is None
    trigger.observe(_batch([[(["entity"], True), (["entity"], True)],
                            [(["entity"], True), (["bridge"], True)]]))  # 0.81 bits
    assert trigger.check(6)
    assert trigger.fired == {"step": 6, "figure": "success_strategy_entropy",
                             "value": pytest.approx(0.811, abs=1e-3), "below": 1.5,
                             "reference": 2.0}
    assert "success_strategy_entropy 0.811 < 1.5 (reference 2)" in trigger.describe()
    restored = EntropyTrigger.from_state(json.loads(json.dumps(trigger.state_dict())))
    assert restored == trigger
    # Solving fewer questions at all fires too: 1 of 4 groups against 2 of 2.
    passes = EntropyTrigger(threshold=0.0, drop=0.99, window=1, pass_drop=0.5)
    passes.observe(_batch(diverse))
    assert not passes.check(1)
    passes.observe(_batch([[(["entity"], True), (["bridge"], True)]]
                          + [[(["keyword"], False)]] * 3))
    assert passes.check(2) and passes.fired is not None
    assert passes.fired["figure"] == "group_pass_rate" and passes.fired["value"] == 0.25
    low = EntropyTrigger(threshold=0.5, drop=0.9, window=1)
    low.observe(_batch([[(["entity"], True)] * 4]))  # 0 bits: below the absolute floor
    assert low.check(1)
    assert low.check(2)  # a window without queries: 0 bits
    assert [h["strategy_entropy"] for h in low.history] == [0.0, 0.0]


def test_trigger_with_patience_waits_for_the_squeeze_to_last() -> None:
    trigger = EntropyTrigger(threshold=0.0, drop=0.99, window=1, pass_drop=0.5, patience=2)
    solved = [[(["entity"], True)]] * 2
    unlucky = [[(["entity"], True)]] + [[(["keyword"], False)]] * 3  # 1 of 4 groups solved
    for batch, fires in ((solved, False), (unlucky, False), (solved, False), (unlucky, False),
                         (unlucky, True)):
        trigger.observe(_batch(batch))
        assert trigger.check(len(trigger.history) + 1) == fires
    # One unlucky window between good ones never fired; the second in a row did.
    assert trigger.strikes == 2 and trigger.fired is not None
    assert trigger.fired["step"] == 5 and trigger.fired["figure"] == "group_pass_rate"
    assert EntropyTrigger.from_state(json.loads(json.dumps(trigger.state_dict()))) == trigger


def _demo(qid: str, strategy: str, labels: list[str], em: float = 1.0) -> Trajectory:
    return Trajectory(qid=qid, question=f"q {qid}", agent="a", strategy=strategy, em=em,
                      reward=em, actions=[f"<search>{qid}</search>", "<answer>x</answer>"],
                      queries=[qid] * len(labels), strategy_labels=labels,
                      tokens=TokenRecord(prompt_ids=[1, 2], completion_ids=[3]))


def test_balanced_sample_holds_every_strategy_equally_in_each_round() -> None:
    pool = DemoPool([_demo(f"a{i}", "entity", ["entity"]) for i in range(20)]
                    + [_demo(f"b{i}", "bridge", ["bridge"]) for i in range(2)]
                    + [_demo(f"c{i}", "verbatim", ["verbatim"]) for i in range(5)])
    order = pool.balanced_sample(30, seed=0)
    for start in range(0, 30, 3):
        assert Counter(t.strategy for t in order[start:start + 3]) == {
            "entity": 1, "bridge": 1, "verbatim": 1}
    # A small strategy is cycled through completely before any demonstration repeats.
    bridges = [t.qid for t in order if t.strategy == "bridge"]
    assert all(set(bridges[i:i + 2]) == {"b0", "b1"} for i in range(0, 10, 2))
    assert order == pool.balanced_sample(30, seed=0)


def test_pool_add_skips_duplicates_and_round_trips(tmp_path: Path) -> None:
    pool = DemoPool([_demo("a", "entity", ["entity"])])
    assert pool.add([_demo("a", "entity", ["entity"]), _demo("b", "bridge", ["bridge"])]) == 1
    loaded = DemoPool.load(pool.save(tmp_path / "pool.jsonl"))
    assert loaded.counts() == {"bridge": 1, "entity": 1}


def test_replay_selects_successes_of_under_used_labels() -> None:
    pool = DemoPool([_demo("a", "entity", ["entity"]), _demo("b", "bridge", ["bridge"])])
    buffer = ReplayBuffer()
    rl = ([_demo(f"e{i}", "", ["entity"]) for i in range(9)]
          + [_demo("win", "", ["entity", "bridge"]), _demo("lose", "", ["bridge"], em=0.0)])
    buffer.observe(rl)
    assert all(not t.tokens.prompt_ids for t in buffer.candidates)  # token fields are dropped
    chosen = buffer.select(pool, rare_ratio=0.5, max_items=5, seed=0)
    # bridge: 2 of 11 RL queries (18%) < 0.5 * 50% of demonstration queries; entity is not rare.
    assert [(t.qid, t.strategy) for t in chosen] == [("win", "replay_bridge")]


def test_state_commit_prunes_unreferenced_files(tmp_path: Path) -> None:
    for rel in ("models/init", "models/00-sft", "phases/01-rl/checkpoint-2",
                "phases/01-rl/checkpoint-4", "phases/01-rl/runs"):
        (tmp_path / rel).mkdir(parents=True)
    publish(tmp_path / "pool/pool-00.jsonl", lambda p: p.write_text(""))
    (tmp_path / "pool/.pool-01.jsonl.tmp").write_text("half-written")
    state = RunState(model="models/00-sft", pool="pool/pool-00.jsonl", schedule={},
                     phase=PhaseRecord(1, "rl", 6, 10, checkpoint="phases/01-rl/checkpoint-4",
                                       steps=4))
    save_state(tmp_path, state)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["models", "models/00-sft", "phases", "phases/01-rl",
                    "phases/01-rl/checkpoint-4", "phases/01-rl/runs", "pool",
                    "pool/pool-00.jsonl", "state.json"]
    loaded = load_state(tmp_path)
    assert loaded == state and loaded is not None and loaded.global_step == 14


def test_publish_refuses_to_overwrite(tmp_path: Path) -> None:
    publish(tmp_path / "a.txt", lambda p: p.write_text("x"))
    with pytest.raises(FileExistsError):
        publish(tmp_path / "a.txt", lambda p: p.write_text("y"))


def test_metrics_log_truncates_to_a_checkpoint_and_skips_torn_lines(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in range(1, 6):
        log.append(make_row("rl", 1, step, step, {"loss": 0.5, "reward": float("nan")}))
    with log.path.open("a") as f:
        f.write('{"phase": "rl", "st')  # a write cut by kill -9
    assert [r["step"] for r in log.rows()] == [1, 2, 3, 4, 5]
    log.truncate(3)
    log.append(make_row("rl", 1, 4, 4, {}))
    rows = log.rows()
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert set(ROW_FIELDS) <= set(rows[0]) and rows[0]["reward"] is None
    assert asdict(PhaseRecord(0, "sft", 1, 0))["kind"] == "sft"


def test_tiny_model_sizes_are_checked_against_the_model_builder() -> None:
    from agents.lm import load_model_and_tokenizer
    from agents.training.config import ModelConfig

    with pytest.raises(ValueError, match=r"unknown \['layers'\].*num_layers"):
        ModelConfig(tiny={"layers": 3})
    with pytest.raises(ValueError, match="model.tiny.num_heads must be > 0"):
        ModelConfig(tiny={"num_heads": 0})
    import corpora

    sizes = ModelConfig(tiny={"num_layers": 3, "hidden_size": 64}).tiny
    model, _ = load_model_and_tokenizer("tiny", corpora.load("synthetic", size="tiny"), **sizes)
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (3, 64)


def _numeric(cls: type) -> list[tuple[str, type]]:
    """The int and float fields of a dataclass (optional ones too), with their type."""
    hints = get_type_hints(cls)
    return [(f.name, kind) for f in fields(cls)
            for kind in (int, float) if hints[f.name] in (kind, kind | None)]


def _numeric_keys() -> list[tuple[str, str, type]]:
    """Every numeric option of the training config: ``(part, field, type)``; part "" is the root."""
    root = TrainConfig()
    out = [("", name, kind) for name, kind in _numeric(TrainConfig)]
    for f in fields(root):
        if is_dataclass(part := getattr(root, f.name)):
            out += [(f.name, name, kind) for name, kind in _numeric(type(part))]
    return out


def _with(part: str, name: str, value: float) -> TrainConfig:
    root = TrainConfig()
    if not part:
        return replace(root, **{name: value})
    return replace(root, **{part: replace(getattr(root, part), **{name: value})})


def test_every_numeric_option_is_range_checked_and_the_error_names_it() -> None:
    keys = _numeric_keys()
    assert len(keys) > 50 and ("env", "format_penalty", float) in keys
    assert ("demos", "max_questions", int) in keys and ("", "seed", int) in keys
    for part, name, kind in keys:
        key = f"{part}.{name}" if part else name
        for bad in ([math.nan, -math.inf] if kind is float else [-1]):
            if (part, name) in {("entropy", "clip_cov_lb")} and bad == -1:
                continue  # a covariance bound may be negative
            with pytest.raises(ValueError, match=rf"^{re.escape(key)} must .*got {bad}"):
                _with(part, name, bad)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # A wrong answer after one invalid action would earn 0 - (-1) = 1.0, a correct one's.
        ("env.format_penalty=-1", r"env.format_penalty must be in \[0, 1\] \(a negative "
                                  r"penalty rewards invalid actions.*got -1.0"),
        ("env.format_penalty=nan", "env.format_penalty must be a finite number, got nan"),
        ("env.format_penalty=1.5", r"env.format_penalty must be in \[0, 1\].*got 1.5"),
        ("sft.learning_rate=2", r"sft.learning_rate must be in \(0, 1\) \(Adam"),
        ("schedule.refresh_learning_rate=0", r"schedule.refresh_learning_rate must be in \(0, 1\)"),
        ("schedule.patience=0", "schedule.patience must be > 0"),
        ("rl.max_grad_norm=0", "rl.max_grad_norm must be > 0, got 0.0"),
        ("sft.weight_decay=-0.1", r"sft.weight_decay must be in \[0, 1\]"),
        ("entropy.planning_boost=1.0", r"entropy.planning_boost must be in \[0, 1\).*alpha"),
        ("entropy.top_entropy_quantile=0", r"top_entropy_quantile must be in \(0, 1\]"),
        ("entropy.entropy_target=-1", "entropy.entropy_target must be >= 0"),
        ("entropy.clip_cov_ratio=2", r"entropy.clip_cov_ratio must be in \(0, 1\]"),
        ("test.samples=0", "^test.samples must be > 0"),  # not "eval.samples"
        ("test.temperature=-1", "^test.temperature must be >= 0"),
        ("model.max_new_tokens=600", r"model.max_new_tokens must be in \[1, 512\]"),
        ("seed=-1", r"^seed must be in \[0, 2147483648\)"),
        ("save_steps=0", "^save_steps must be >= 1"),
    ],
)
def test_out_of_range_values_stop_composition_with_key_value_and_reason(
        override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compose_config("train", TrainConfig, ["experiment=smoke", override])


def test_an_infinite_ratio_clip_is_allowed_and_means_no_clip() -> None:
    assert EntropyRegulation(epsilon_low=math.inf, epsilon_high=math.inf).epsilon_low == math.inf
    with pytest.raises(ValueError, match="entropy.epsilon_high must be a finite number or inf"):
        EntropyRegulation(epsilon_high=math.nan)
