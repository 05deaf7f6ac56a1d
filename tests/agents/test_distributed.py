"""Two training processes under ``accelerate launch``: one writer, each episode counted once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from accelerate.commands.config.config_args import load_config_from_file

from agents.cli.schema import compose_config
from agents.training.config import TrainConfig
from agents.training.distributed import (
    broadcast,
    finish,
    gather,
    is_main,
    rank,
    share,
    size,
)
from agents.training.runner import Run

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 2
#: The smoke experiment cut to a few steps per phase (SFT 4, RL 2, SFT 2, RL 2).
OVERRIDES = ["experiment=smoke", "env.batch_size=8", "model.max_new_tokens=16",
             "model.max_length=384", "model.device=cpu", "sft.steps=4", "sft.batch_size=6",
             "rl.num_generations=2", "schedule.refresh_steps=2", "eval.max_questions=4",
             "test.max_questions=4", "progress=false"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A run of ``forksearch-train`` in two CPU processes: its directory and its process."""
    tmp = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FORKSEARCH_CACHE_DIR": str(tmp / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch",
         "--config_file", str(REPO / "conf/accelerate/cpu_2proc.yaml"),
         "--num_processes", str(PROCESSES), "--main_process_port", str(_free_port()),
         "-m", "agents.cli.train", *OVERRIDES, f"hydra.run.dir={tmp / 'run'}"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "run", result


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_each_step_is_logged_once_with_the_episodes_of_every_process(
        two_processes: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    run_dir, _ = two_processes
    cfg = compose_config("train", TrainConfig, OVERRIDES)
    rows = _rows(run_dir)
    assert [r["step"] for r in rows] == list(range(1, 11))
    rl = [r for r in rows if r["phase"] == "rl"]
    sft = [r for r in rows if r["phase"] == "sft"]
    # A single process logs questions_per_step x num_generations (test_training_runner).
    assert {r["episodes"] for r in rl} == {
        cfg.rl.questions_per_step * cfg.rl.num_generations * PROCESSES}
    assert {r["episodes"] for r in sft} == {cfg.sft.batch_size * PROCESSES}
    # Held-out questions are split between the processes, each played once.
    evaluated = [r for r in rows if r["dev_em"] is not None]
    assert len(evaluated) == 4  # the end of each phase
    assert {r["dev_episodes"] for r in evaluated} == {cfg.eval.max_questions * cfg.eval.samples}


def test_the_main_process_alone_writes_the_run_directory(
        two_processes: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    run_dir, result = two_processes
    cfg = compose_config("train", TrainConfig, OVERRIDES)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 10 and [p["kind"] for p in summary["phases"]] == [
        "sft", "rl", "sft", "rl"]
    test = [json.loads(line) for line in
            (run_dir / "test_trajectories_sample.jsonl").read_text().splitlines()]
    episodes = Counter((t["qid"], t["sample"]) for t in test)
    assert len(episodes) == cfg.test.max_questions * cfg.test.samples
    assert set(episodes.values()) == {1}
    assert result.stdout.count("forksearch-train result") == 1
    log = (run_dir / "train.log").read_text()
    assert log.count("phase 00-sft done") == 1
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["cache", "run"]  # no stray dir
    assert not list(run_dir.glob("phases/*/checkpoint-*"))


def test_a_single_process_shares_nothing() -> None:
    assert (rank(), size(), is_main()) == (0, 1, True)
    assert gather([1, 2]) == [1, 2] and broadcast("x") == "x"
    assert share(["a", "b", "c"]) == ["a", "b", "c"]
    finish()  # no process group to leave


@pytest.mark.parametrize("name", ["cpu_2proc", "ddp", "deepspeed_zero2", "deepspeed_zero3"])
def test_the_shipped_accelerate_configs_load(name: str) -> None:
    config = load_config_from_file(str(REPO / "conf/accelerate" / f"{name}.yaml"))
    assert config.num_processes >= 2
    if config.deepspeed_config:
        # Pinned here, they would clash with the phases' own trainer arguments.
        assert not {"gradient_accumulation_steps", "gradient_clipping"} & set(
            config.deepspeed_config)


def test_deepspeed_zero3_is_refused_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = compose_config("train", TrainConfig, OVERRIDES)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")  # as accelerate launch sets them
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    with pytest.raises(ValueError, match="ZeRO stage 3 .*deepspeed_zero2.yaml"):
        Run(cfg, tmp_path)
    assert not list(tmp_path.iterdir())
