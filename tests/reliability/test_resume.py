"""Kill and resume: a run stopped at any point, then resumed, ends as an uninterrupted run does.

A kill is simulated in-process: :class:`Kill` (a ``BaseException``, so no ``except Exception``
in the code under test can swallow it) is raised from a trainer callback or from a patched
function at the chosen point, and the run is then resumed with a new ``Run``, as
``forksearch-train ... resume=true`` would. The reference is an uninterrupted run of the same
config and seed; the comparison covers every ``metrics.jsonl`` field and every figure of the
summary except timings.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from transformers import TrainerCallback

from agents.analysis.run import Settings, analyze_run, read_run
from agents.cli.schema import compose_config
from agents.cli.train import write_summary
from agents.training import resume, runner
from agents.training.checkpoint import discard_uncommitted, load_state
from agents.training.config import TrainConfig
from agents.training.demonstrations import ReplayBuffer
from agents.training.metrics import MetricsLog
from agents.training.runner import Run
from agents.training.schedule import Schedule

#: Fields of a metrics row or of the summary that measure time, not the run's results.
TIMING = {"step_time", "seconds", "steps_per_s", "tokens_per_s", "wall_time_s"}


class Kill(BaseException):
    """Stands for SIGKILL: nothing after the raise point runs in the killed process."""


#: SFT 20 -> RL 3 (the trigger fires) -> SFT 2 (refresh, replay) -> RL 3; a checkpoint a step.
#: ``rl.num_iterations=2`` makes every RL generation batch serve two optimizer steps, so a
#: checkpoint after an odd RL step is taken mid generation batch. Clip-Cov with a band that every
#: token falls in draws from its random generator at every step; the format penalty gives the
#: barely trained policy's episodes different rewards, so that some advantages are not 0 and the
#: tokens it draws matter. The entropy bonus makes every RL step train.
OVERRIDES = [
    "experiment=smoke", "env.batch_size=8", "model.max_length=384",
    "sft.steps=20", "sft.batch_size=6", "rl.num_generations=2", "rl.num_iterations=2",
    "env.format_penalty=0.1",
    "schedule=diversity_triggered", "schedule.rl_steps=6", "schedule.period=3",
    "schedule.entropy_threshold=99.0", "schedule.refresh_steps=2",
    "algorithm=clip_cov", "entropy.clip_cov_lb=-100", "entropy.clip_cov_ub=100",
    "entropy.clip_cov_ratio=0.05", "entropy.entropy_coef=0.01", "eval.max_questions=4",
    "test.max_questions=4", "test.samples=2", "save_steps=1", "report_to=[]", "progress=false"]


def _cfg(*overrides: str) -> TrainConfig:
    return compose_config("train", TrainConfig, [*OVERRIDES, *overrides])


def _job(cfg: TrainConfig, run_dir: Path,
         callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """What ``forksearch-train`` does: train, test, write ``summary.json``."""
    run = Run(cfg, run_dir, callbacks)
    result = run.execute()
    return write_summary(run_dir, result, run.test(), run.wall_time_s())


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    return MetricsLog(run_dir / "metrics.jsonl").rows()


def _results(value: Any, run_dir: Path) -> Any:
    """``value`` without its timing figures, run paths made relative, NaN made comparable."""
    if isinstance(value, dict):
        return {k: _results(v, run_dir) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_results(v, run_dir) for v in value]
    if isinstance(value, str) and value.startswith(str(run_dir)):
        return "<run>" + value[len(str(run_dir)):]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """An uninterrupted run of :func:`_cfg`."""
    run_dir = tmp_path_factory.mktemp("reference")
    return run_dir, _job(_cfg(), run_dir)


def test_the_reference_run_has_the_planned_phases(reference: tuple[Path, dict[str, Any]]
                                                  ) -> None:
    run_dir, summary = reference
    assert [(p["kind"], p["steps"]) for p in summary["phases"]] == [
        ("sft", 20), ("rl", 3), ("sft", 2), ("rl", 3)]
    rows = _rows(run_dir)
    assert [r["step"] for r in rows] == list(range(1, 29))
    rl = [r for r in rows if r["phase"] == "rl"]
    assert all(r["clip_cov_fraction"] > 0 and r["grad_norm"] > 0 for r in rl)
    assert any((r.get("reward_std") or 0) > 0 for r in rl)  # some advantages are not 0


class KillAtStep(TrainerCallback):
    """Kill when phase ``phase`` (its folder name, e.g. ``01-rl``) ends optimizer step ``step``.

    The step is neither logged nor checkpointed: the run resumes from the step before.
    """

    def __init__(self, phase: str, step: int) -> None:
        self.phase, self.step = phase, step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if Path(args.output_dir).name == self.phase and state.global_step == self.step:
            raise Kill(f"{self.phase} step {self.step}")


def trap(m: pytest.MonkeyPatch, owner: Any, name: str,
         when: Callable[..., bool] = lambda *a, **k: True) -> None:
    """Kill when ``owner.name`` is called (with arguments that satisfy ``when``)."""
    original = getattr(owner, name)

    def killed(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            raise Kill(name)
        return original(*args, **kwargs)

    m.setattr(owner, name, killed)


@dataclass(frozen=True)
class Point:
    """Where a run is killed: ``arm`` patches what it needs and returns trainer callbacks."""

    name: str
    arm: Callable[[pytest.MonkeyPatch], list[TrainerCallback]]


def _trapped(owner: Any, name: str, when: Callable[..., bool] = lambda *a, **k: True
             ) -> Callable[[pytest.MonkeyPatch], list[TrainerCallback]]:
    def arm(m: pytest.MonkeyPatch) -> list[TrainerCallback]:
        trap(m, owner, name, when)
        return []
    return arm


def _at_step(phase: str, step: int) -> Callable[[pytest.MonkeyPatch], list[TrainerCallback]]:
    return lambda m: [KillAtStep(phase, step)]


#: The kill points, in the order one run meets them (each resumed process is killed at the next).
POINTS = [
    Point("initialisation: models/init written, no state yet", _trapped(runner, "build_pool")),
    Point("SFT step 7 of 20 (resumes from checkpoint-6)", _at_step("00-sft", 7)),
    Point("SFT -> RL: last SFT checkpoint committed, its model not saved",
          _trapped(Run, "_finish")),
    Point("SFT -> RL: SFT model saved, not committed", _trapped(Schedule, "finish")),
    Point("SFT -> RL: SFT finished, RL phase not started",
          _trapped(Run, "_start", lambda self, kind, *a: kind == "rl")),
    Point("RL step 1, before any RL checkpoint", _at_step("01-rl", 1)),
    Point("RL checkpoint-1 written, not committed", _trapped(resume, "save_resume_state")),
    Point("RL step 2 (resumes mid generation batch, from checkpoint-1)", _at_step("01-rl", 2)),
    Point("RL step 3 (resumes from checkpoint-2 and generates a new batch)",
          _at_step("01-rl", 3)),
    Point("RL -> SFT refresh: replayed pool written, not committed",
          _trapped(ReplayBuffer, "clear")),
    Point("refresh SFT step 2 of 2", _at_step("02-sft", 2)),
    Point("second RL phase step 2 (resumes mid generation batch)", _at_step("03-rl", 2)),
    Point("last phase finished, run not marked complete",
          _trapped(Schedule, "next_phase", lambda self: self.rl_steps_done >= self.cfg.rl_steps)),
    Point("final test evaluation",
          _trapped(runner, "rollout", lambda policy, *a, **k: policy.name == "final")),
]


def test_killed_at_every_point_then_resumed_ends_as_the_uninterrupted_run(
        reference: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    ref_dir, ref_summary = reference
    expected = _results(_rows(ref_dir), ref_dir)
    cfg, committed = _cfg(), 0.0
    for point in POINTS:
        with pytest.MonkeyPatch.context() as m, pytest.raises(Kill):
            _job(cfg, tmp_path, point.arm(m))
        # Whatever the killed process logged agrees with the reference, committed or not.
        logged = _results(_rows(tmp_path), tmp_path)
        assert logged == expected[:len(logged)], point.name
        state = load_state(tmp_path)
        if state is not None:
            assert state.elapsed_s >= committed, point.name  # wall time adds up over processes
            committed = state.elapsed_s
        cfg = replace(cfg, resume=True)
    summary = _job(cfg, tmp_path)
    rows = _rows(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 29))  # each step logged once
    assert _results(rows, tmp_path) == expected
    assert _results(summary, tmp_path) == _results(ref_summary, ref_dir)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["wall_time_s"] > committed > 0
    # Every phase's model was kept, and forksearch-analyze finds what it finds on the reference.
    analysed = [analyze_run(read_run(d), d / "analysis", Settings(trajectories=4, shown=1))[0]
                for d in (tmp_path, ref_dir)]
    assert analysed[0]["models"] == ["init", "00-sft", "01-rl", "02-sft", "03-rl"]
    for key in ("models", "per_model", "law", "planning", "sparsity"):
        assert analysed[0][key] == analysed[1][key], key


def test_a_run_killed_while_it_initialises_starts_again(tmp_path: Path) -> None:
    cfg = _cfg()
    with pytest.MonkeyPatch.context() as m, pytest.raises(Kill):
        trap(m, runner, "build_pool")
        Run(cfg, tmp_path)
    assert (tmp_path / "models/init").is_dir() and not (tmp_path / "state.json").exists()
    with pytest.MonkeyPatch.context() as m, pytest.raises(Kill):  # killed again, pool written
        trap(m, runner, "save_state")
        Run(cfg, tmp_path)
    assert (tmp_path / "pool/pool-00.jsonl").exists() and not (tmp_path / "state.json").exists()
    Run(replace(cfg, resume=True), tmp_path)  # as `resume=true` after a kill would
    state = load_state(tmp_path)
    assert state is not None and state.model == "models/init" and state.global_step == 0
    assert sorted(p.name for p in (tmp_path / "pool").iterdir()) == ["pool-00.jsonl"]


def test_a_folder_that_holds_no_run_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models/mine.txt").write_text("not a run")
    with pytest.raises(FileExistsError, match="not a forksearch run"):
        discard_uncommitted(tmp_path)
    assert (tmp_path / "models/mine.txt").exists()


def test_sigkill_of_the_cli_then_resume_ends_as_the_uninterrupted_run(
        reference: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """``forksearch-train`` killed with SIGKILL twice (as soon as ``models/init`` exists, before
    its first commit, then in its first RL phase), then resumed: the same ``metrics.jsonl`` and
    ``summary.json``."""
    ref_dir, ref_summary = reference
    cmd = [sys.executable, "-m", "agents.cli.train", *OVERRIDES, f"hydra.run.dir={tmp_path}",
           "resume=true"]  # a run directory without a run starts one
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for ready, committed in ((lambda: (tmp_path / "models/init").exists(), False),
                             (lambda: any(r["phase"] == "rl" for r in _rows(tmp_path)), True)):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while proc.poll() is None and not ready() and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert (tmp_path / "state.json").exists() == committed  # first: while initialising
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=600)
    rows = _rows(tmp_path)
    assert _results(rows, tmp_path) == _results(_rows(ref_dir), ref_dir)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert _results(summary, tmp_path) == _results(ref_summary, ref_dir)
