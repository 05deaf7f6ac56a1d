"""``forksearch-analyze`` on a real run directory (the session's smoke run)."""

import json
import math
import subprocess

import pytest

PLOTS = ("token_entropy_histogram.png", "forking_kinds.png", "entropy_law.png",
         "planning_execution.png", "sparsity.png")


@pytest.fixture(scope="module")
def analysis(smoke_run):
    run_dir, _ = smoke_run
    run = subprocess.run(["forksearch-analyze", f"run_dir={run_dir}"], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run_dir / "analysis", run


def test_analysis_covers_every_saved_model_and_phase(analysis):
    out, run = analysis
    [section] = json.loads((out / "analysis.json").read_text())["runs"]
    assert section["models"] == ["init", "00-sft", "01-rl", "02-sft", "03-rl"]
    for model in section["per_model"]:
        gradient = model["gradient"]
        # Smoke rewards are often all equal (advantages 0): then there is no gradient to share.
        # (analysis.json writes an undefined share, NaN, as null.)
        assert (math.isfinite(gradient["top_share"]) if gradient["total_norm"] > 0
                else gradient["top_share"] is None), model
        assert model["entropy_all"] > 0 and model["nll_query"] > 0
    if all(m["gradient"]["total_norm"] == 0 for m in section["per_model"]):
        assert any("policy gradient is 0" in note for note in section["notes"])
    kinds = section["forking"]["kinds"]
    assert sum(k["all"] for k in kinds.values()) == pytest.approx(1.0)
    assert sum(k["forking"] for k in kinds.values()) == pytest.approx(1.0)
    assert section["forking"]["top_strings"] and section["forking"]["forking_tokens"] > 0
    assert set(section["law"]["points"]) == {"01-rl", "03-rl"}
    assert [(t["phase"], t["kind"]) for t in section["sparsity"]] == [
        ("00-sft", "sft"), ("01-rl", "rl"), ("02-sft", "sft"), ("03-rl", "rl")]
    first = section["sparsity"][0]["overall"]
    assert 0.0 <= first["unchanged"] <= first["small"] <= 1.0
    assert set(section["planning"]) == {"00-sft", "01-rl", "02-sft", "03-rl"}


def test_analysis_writes_plots_a_report_and_a_progress_bar(analysis):
    out, run = analysis
    for name in PLOTS:
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    html = (out / "analysis.html").read_text()
    assert html.count("data:image/png;base64,") == len(PLOTS) and 'id="trajectories' in html
    assert "analyze:" in run.stderr and "100%" in run.stderr  # tqdm's bar
    assert "entropy law: " in run.stdout and "analysis.html" in run.stdout


def test_a_directory_without_runs_is_one_line(tmp_path):
    run = subprocess.run(["forksearch-analyze", f"run_dir={tmp_path}"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2
    assert run.stderr.startswith(f"forksearch-analyze: error: {tmp_path}: no forksearch run")


def test_a_spread_sample_keeps_whole_groups_of_questions_from_every_part():
    from agents.trajectory import Trajectory, spread_sample

    episodes = [Trajectory(qid=f"q{i:02d}", question="?", agent="a", sample=s,
                           qtype="attribute" if i < 10 else "bridge")
                for i in range(20) for s in range(4)]
    picked = spread_sample(episodes, 16)
    assert [t.qid for t in picked[::4]] == ["q00", "q05", "q10", "q15"]  # evenly spaced
    assert all([t.sample for t in picked[i:i + 4]] == [0, 1, 2, 3] for i in range(0, 16, 4))
    assert {t.qtype for t in picked} == {"attribute", "bridge"}
    assert spread_sample(episodes, 1000) == episodes and spread_sample([], 5) == []
