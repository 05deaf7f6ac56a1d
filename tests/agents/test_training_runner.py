"""End to end: a smoke-sized schedule, metrics.jsonl, checkpoints and resume after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from transformers import TrainerCallback
from transformers.integrations import is_wandb_available

from agents.cli.schema import compose_config
from agents.training import runner
from agents.training.checkpoint import load_state
from agents.training.config import TrainConfig
from agents.training.demonstrations import DemoPool
from agents.training.metrics import ROW_FIELDS, MetricsLog
from agents.training.runner import Run, train

REPO = Path(__file__).resolve().parents[2]


def _tiny(*overrides: str) -> TrainConfig:
    """The smoke experiment, cut to a few steps per phase."""
    return compose_config("train", TrainConfig, [
        "experiment=smoke", "env.batch_size=8", "model.max_new_tokens=16",
        "model.max_length=384", "sft.steps=4", "sft.batch_size=6", "rl.num_generations=2",
        "schedule.refresh_steps=2", "eval.max_questions=4", "progress=false", *overrides])


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    return MetricsLog(run_dir / "metrics.jsonl").rows()


def test_smoke_schedule_logs_every_step_of_both_phases(tmp_path: Path) -> None:
    summary = train(_tiny("schedule.refresh_learning_rate=1e-5"), tmp_path)
    rows = _rows(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 11))  # SFT 4, RL 2, SFT 2, RL 2
    lrs = {i: max(r["learning_rate"] for r in rows if r["phase_index"] == i) for i in (0, 2)}
    assert lrs[2] <= 1e-5 < lrs[0]  # the refresh trains at its own learning rate
    assert [p["kind"] for p in summary["phases"]] == ["sft", "rl", "sft", "rl"]
    kinds = [(r["phase_index"], r["phase"]) for r in rows]
    assert sorted(set(kinds)) == [(0, "sft"), (1, "rl"), (2, "sft"), (3, "rl")]
    for r in rows:
        assert set(ROW_FIELDS) <= set(r)
    for phase in range(4):
        last = [r for r in rows if r["phase_index"] == phase][-1]
        assert last["dev_em"] is not None and last["dev_strategy_entropy"] is not None
    for r in rows:
        for name in ("reward", "entropy_all", "strategy_entropy", "unique_query_ratio",
                     "searches_per_episode"):
            assert r[name] is not None, (r["step"], name)
    rl = [r for r in rows if r["phase"] == "rl"]
    assert all(r["kl_cov_fraction"] > 0 for r in rl)
    assert {r["episodes"] for r in rl} == {2 * 2}  # questions_per_step x num_generations
    sft = [r for r in rows if r["phase"] == "sft"]
    assert all(r["reward"] == 1.0 and r["mean_token_accuracy"] is not None for r in sft)
    state = load_state(tmp_path)
    assert state is not None and state.complete and state.global_step == rows[-1]["step"]
    assert summary["steps"] == rows[-1]["step"]
    assert (Path(summary["model"]) / "model.safetensors").exists()
    assert list((tmp_path / "phases/01-rl/runs").rglob("events.out.tfevents*"))
    assert not list(tmp_path.glob("phases/*/checkpoint-*"))  # folded into models/ when done
    assert not list(tmp_path.glob("phases/*/README.md"))  # no TRL Hub model cards
    with pytest.raises(FileExistsError, match="resume=true"):
        train(_tiny(), tmp_path)


class Crash(TrainerCallback):
    """Raise after ``after`` optimizer steps of the whole run (a stand-in for a killed process)."""

    def __init__(self, after: int) -> None:
        self.after, self.steps = after, 0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.steps += 1
        if self.steps == self.after:
            raise KeyboardInterrupt(f"crash after step {self.after}")


def test_resume_after_a_crash_logs_each_step_once(tmp_path: Path) -> None:
    # Triggered schedule with an unreachable entropy floor: each RL phase stops after its first
    # window, so the run also exercises the trigger, the refresh and replay.
    cfg = _tiny("schedule=diversity_triggered", "schedule.rl_steps=3", "schedule.period=1",
                "schedule.entropy_threshold=99.0")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, callbacks=[Crash(after=8)])  # step 8: inside the 2nd RL phase
    crashed = load_state(tmp_path)
    assert crashed is not None and crashed.phase is not None and not crashed.complete
    assert [r["step"] for r in _rows(tmp_path)] == list(range(1, 8))  # step 8 died unlogged
    summary = train(replace(cfg, resume=True), tmp_path)
    # SFT 4, RL 1 of 3 (trigger), SFT 2, RL 1 of 2 (trigger), SFT 2, RL 1 of 1.
    assert [r["step"] for r in _rows(tmp_path)] == list(range(1, 12)) and summary["steps"] == 11
    phases = [(p["kind"], p["steps"], p["stopped_early"]) for p in summary["phases"]]
    assert phases == [("sft", 4, False), ("rl", 1, True), ("sft", 2, False), ("rl", 1, True),
                      ("sft", 2, False), ("rl", 1, False)]


@pytest.mark.slow
def test_kill_9_during_rl_then_resume(tmp_path: Path) -> None:
    """The acceptance check: SIGKILL the smoke experiment in its RL phase, resume, finish."""
    cmd = ["forksearch-train", "experiment=smoke", f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if any(r["phase"] == "rl" for r in _rows(tmp_path)):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before its RL phase could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run([*cmd, "resume=true"], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    rows = _rows(tmp_path)
    state = load_state(tmp_path)
    assert state is not None and state.complete
    assert [r["step"] for r in rows] == list(range(1, state.global_step + 1))
    assert {r["phase"] for r in rows} == {"sft", "rl"}
    assert json.loads((tmp_path / "state.json").read_text())["complete"]


def test_lora_trains_adapters_only_merges_them_and_resumes(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    import corpora
    from agents.lm import load_model_and_tokenizer

    lora = _tiny("schedule=sft_then_rl", "schedule.rl_steps=2", "model.lora=true",
                 "model.lora_r=4", "model.lora_alpha=8",
                 "model.lora_target_modules=[q_proj,v_proj]")
    with pytest.raises(KeyboardInterrupt):
        train(lora, tmp_path, callbacks=[Crash(after=3)])  # inside SFT, after a checkpoint
    summary = train(replace(lora, resume=True), tmp_path)
    assert [r["step"] for r in _rows(tmp_path)] == list(range(1, 7))
    final = load_file(Path(summary["model"]) / "model.safetensors")
    start, _ = load_model_and_tokenizer("tiny", corpora.load("synthetic", size="tiny", seed=0),
                                        seed=lora.seed)  # the run's models/init, rebuilt
    init = {k: v for k, v in start.state_dict().items() if k in final}
    assert init.keys() == final.keys()  # merged: a plain checkpoint, no adapter weights
    changed = {k for k in init if not torch.equal(init[k], final[k])}
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed)
    assert any("q_proj" in k for k in changed) and any("v_proj" in k for k in changed)


def _jsonl_corpus(path: Path, splits: dict[str, int]) -> Path:
    """A tiny JSONL corpus with ``splits[name]`` questions in each split."""
    lines = [{"doc_id": "d1", "title": "Ada Lovelace", "text": "Ada Lovelace was born in London."}]
    lines += [{"qid": f"{split}{i}", "question": f"Where was Ada Lovelace born ({split} {i})?",
               "answers": ["London"], "supporting_ids": ["d1"], "split": split}
              for split, n in splits.items() for i in range(n)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["test.split=validation"], ValueError,
         r"corpus 'synthetic-tiny-0' has no 'validation' questions; its splits are train \(120\), "
         r"dev \(30\), test \(30\): set test.split=test"),
        (["eval.split=validation"], ValueError, "no 'validation' questions.*set eval.split=dev"),
        (["demos.max_questions=1"], ValueError,
         "demos.max_questions=1 leaves 1 distinct train questions, fewer than one RL generation "
         "batch needs"),
        pytest.param(["report_to=[wandb]"], ValueError,
                     "report_to has 'wandb', which is not installed",
                     marks=pytest.mark.skipif(is_wandb_available(), reason="wandb is installed")),
        (["report_to=[tensorbored]"], ValueError, "report_to has unknown 'tensorbored'"),
        (["model.name=/no/such/model"], FileNotFoundError, "no checkpoint directory"),
    ],
)
def test_what_the_config_alone_cannot_show_is_checked_before_anything_runs(
        tmp_path: Path, overrides: list[str], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Run(_tiny(*overrides), tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written, nothing trained


def test_a_corpus_without_dev_questions_says_which_split_to_evaluate_on(tmp_path: Path) -> None:
    corpus = _jsonl_corpus(tmp_path / "corpus.jsonl", {"train": 8, "test": 2})
    cfg = replace(_tiny(), corpus={"name": "jsonl", "path": str(corpus)})
    with pytest.raises(ValueError, match=r"has no 'dev' questions; its splits are train \(8\), "
                                         r"dev \(0\), test \(2\): set eval.split=test"):
        Run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_trl_argument_errors_and_an_empty_demonstration_pool_stop_the_run_early(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="the sft settings make invalid TRL arguments: .*bogus"):
        Run(_tiny("sft.lr_scheduler=bogus"), tmp_path)
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(runner, "build_pool", lambda *a, **k: DemoPool([]))
    with pytest.raises(ValueError, match="no demonstrator .* solved any of the 120 train"):
        Run(_tiny(), tmp_path)
    assert load_state(tmp_path) is None  # nothing committed: the next start begins afresh


def test_runs_that_agree_up_to_sft_share_their_first_sft_phase(tmp_path: Path) -> None:
    import filecmp

    cache = f"++sft_cache_dir={tmp_path / 'sft'}"
    first = train(_tiny(cache, "schedule=sft_then_rl", "schedule.rl_steps=2"), tmp_path / "a")
    assert "shared_from" not in first["phases"][0]
    [folder] = (tmp_path / "sft").iterdir()  # published once
    # Another RL algorithm and schedule after the same SFT: the phase is taken, not trained.
    second = train(_tiny(cache, "algorithm=grpo", "schedule=sft_then_rl", "schedule.rl_steps=2"),
                   tmp_path / "b")
    assert second["phases"][0]["shared_from"] == str(folder)
    assert [p["kind"] for p in second["phases"]] == ["sft", "rl"]
    sft_rows = [[r for r in _rows(tmp_path / run) if r["phase_index"] == 0] for run in "ab"]
    assert sft_rows[0] == sft_rows[1] and len(sft_rows[0]) == 4
    assert [r["step"] for r in _rows(tmp_path / "b")] == list(range(1, 7))
    same = filecmp.dircmp(tmp_path / "a/models/00-sft", tmp_path / "b/models/00-sft")
    assert not same.diff_files and not same.left_only and not same.right_only
    # The SFT-only baseline takes it too and stops there; another seed trains its own.
    only = train(_tiny(cache, "schedule=sft_only"), tmp_path / "c")
    assert [p["kind"] for p in only["phases"]] == ["sft"] and "shared_from" in only["phases"][0]
    other = train(_tiny(cache, "schedule=sft_only", "seed=1"), tmp_path / "d")
    assert "shared_from" not in other["phases"][0] and len(list((tmp_path / "sft").iterdir())) == 2
