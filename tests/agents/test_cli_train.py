import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest
import yaml

from agents.cli.analyze import analyze
from agents.cli.report import (
    LAW_WINDOW,
    METRICS,
    PARETO,
    aggregate,
    find_runs,
    pareto_front,
    plot_label,
    read_results,
    report,
)
from agents.cli.report import main as report_main
from agents.cli.schema import AnalyzeConfig, compose_config

SUMMARY_FIELDS = set(METRICS)
PLOTS = (
    "reward_dev_em.png",
    "token_entropy.png",
    "strategy_entropy.png",
    "strategy_distribution.png",
)




def test_smoke_run_writes_the_run_directory(smoke_run):
    run_dir, stdout = smoke_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_FIELDS <= set(summary)
    assert 0.0 <= summary["test_em"] <= 1.0 and summary["k"] == 2
    # The whole pass@k curve, k = 1..samples, and the diversity among successes.
    assert list(summary["pass_at_k_curve"]) == ["1", "2"]
    assert summary["pass_at_k_curve"]["2"] == summary["pass_at_k"]
    assert "success_strategy_entropy" in summary and "wrong_entity_rate" in summary
    assert [p["kind"] for p in summary["phases"]] == ["sft", "rl", "sft", "rl"]
    for name in PLOTS:
        assert (run_dir / name).read_bytes()[:4] == b"\x89PNG", name
    assert (run_dir / ".hydra" / "config.yaml").exists()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert "forksearch-train result" in stdout and str(run_dir) in stdout


def test_report_on_a_single_run(smoke_run, capsys):
    run_dir, _ = smoke_run
    report_main([str(run_dir)])
    assert "| config | runs |" in capsys.readouterr().out
    assert (run_dir / "report.md").exists() and (run_dir / "compare_test_em.png").exists()


def fake_run(root: Path, name: str, overrides: list[str], em: float,
             curve: dict[str, float] | None = None) -> None:
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    summary = {"test_em": em, "strategy_entropy": 1.0,
               **({"pass_at_k_curve": curve} if curve else {})}
    (run / "summary.json").write_text(json.dumps(summary))


def test_report_averages_the_pass_at_k_curves_over_seeds_and_plots_them(tmp_path):
    fake_run(tmp_path, "0", ["+arm=grpo", "seed=0"], 0.5, {"1": 0.5, "2": 0.6, "4": 0.7})
    fake_run(tmp_path, "1", ["+arm=grpo", "seed=1"], 0.5, {"1": 0.3, "2": 0.4, "4": 0.5})
    fake_run(tmp_path, "2", ["+arm=recipe", "seed=0"], 0.5, {"1": 0.4, "2": 0.6})
    rows = {r["config"]: r for r in report(tmp_path)}
    assert rows["+arm=grpo"]["pass_at_k_curve"] == pytest.approx({"1": 0.4, "2": 0.5, "4": 0.6})
    assert list(rows["+arm=recipe"]["pass_at_k_curve"]) == ["1", "2"]
    assert (tmp_path / "compare_pass_at_k_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_report_groups_seeds_and_computes_mean_and_std(tmp_path):
    fake_run(tmp_path, "0", ["experiment=smoke", "algorithm=grpo", "seed=0"], 0.2)
    fake_run(tmp_path, "1", ["experiment=smoke", "algorithm=grpo", "seed=1"], 0.4)
    fake_run(tmp_path, "2", ["experiment=smoke", "algorithm=clip_cov", "seed=0"], 0.5)
    # Overrides every run shares (experiment=smoke) do not label the rows.
    rows = {r["config"]: r for r in aggregate(read_results(find_runs(tmp_path)))}
    assert rows["algorithm=grpo"]["runs"] == 2
    assert rows["algorithm=grpo"]["test_em"] == pytest.approx(0.3)
    assert rows["algorithm=grpo"]["test_em_std"] == pytest.approx(0.1)
    assert rows["algorithm=clip_cov"]["test_em"] == pytest.approx(0.5)


def test_long_configuration_labels_get_short_plot_names():
    trial = ("entropy.epsilon_high=0.22365488517378665 entropy.kl_cov_beta=1.4739464239772113 "
             "schedule.refresh_steps=10")
    assert plot_label(trial, ["trial_3"]) == "trial_3"  # one run: its folder
    lever = "rl.num_generations=8 rl.questions_per_step=2"  # its folder's name is longer
    assert plot_label(lever, [f"grpo_seed0_{lever}"]) == "num_generations=8 questions_per_step=2"
    assert plot_label(trial, ["a", "b"]) == "epsilon_high=0.224 kl_cov_beta=1.47 refresh_steps=10"
    assert plot_label("+arm=grpo", ["grpo_seed0", "grpo_seed1"]) == "+arm=grpo"  # short: as is


def test_pareto_front_keeps_the_runs_no_other_beats_on_both():
    points = [(0.5, 1.0), (0.6, 0.8), (0.4, 0.9), (0.6, 0.7), (0.3, 1.2), (0.5, 1.0)]
    # (0.4, 0.9) loses to (0.5, 1.0); (0.6, 0.7) to (0.6, 0.8); equal points both stay.
    assert pareto_front(points) == [0, 1, 4, 5]
    assert pareto_front([]) == []


def law_rows(a: float, b: float, entropies: list[float], wobble: float) -> list[dict]:
    """RL rows whose windows of LAW_WINDOW batches average to R = -a·exp(H) + b exactly."""
    rows = []
    for h in entropies:
        for i in range(LAW_WINDOW):  # rewards alternate around the law, so no two repeat
            reward = -a * math.exp(h) + b + (wobble if i % 2 else -wobble)
            rows.append({"phase": "rl", "phase_index": 1, "entropy_all": h, "reward": reward})
    return rows


def test_report_fits_the_entropy_law_per_configuration_and_writes_csv(tmp_path):
    for name, arm, seed, hs in (("0", "grpo", 0, [0.2, 0.4]), ("1", "grpo", 1, [0.6, 0.9]),
                                ("2", "recipe", 0, [0.3])):
        fake_run(tmp_path, name, [f"+arm={arm}", f"seed={seed}"], 0.5, {"1": 0.5, "2": 0.7})
        (tmp_path / name / "metrics.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in law_rows(0.3, 1.1, hs, wobble=0.05)))
    rows = {r["config"]: r for r in report(tmp_path)}
    fit = rows["+arm=grpo"]["entropy_law"]  # four windows pooled over both seeds
    assert fit["n"] == 4 and fit["a"] == pytest.approx(0.3) and fit["b"] == pytest.approx(1.1)
    assert fit["r2"] == pytest.approx(1.0)
    assert rows["+arm=recipe"]["entropy_law"] is None  # one window: nothing to fit
    with (tmp_path / "report.csv").open() as f:
        table = {r["config"]: r for r in csv.DictReader(f)}
    assert float(table["+arm=grpo"]["law_a"]) == pytest.approx(0.3)
    assert table["+arm=recipe"]["law_a"] == "" and table["+arm=grpo"]["runs"] == "2"
    assert float(table["+arm=grpo"]["pass_at_2_curve"]) == pytest.approx(0.7)
    assert "| +arm=grpo | 0.3 | 1.1 | 1.00 | 4 | 0.800 |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "compare_entropy_law.png").read_bytes()[:4] == b"\x89PNG"


def test_report_on_an_empty_directory_explains(tmp_path):
    with pytest.raises(SystemExit, match="no run found"):
        report_main([str(tmp_path)])


#: The smoke experiment cut to a few steps per phase, so that a four-job sweep stays short.
SHORTER = ["sft.steps=3", "schedule.rl_steps=2", "schedule.period=1", "schedule.refresh_steps=1",
           "eval.max_questions=4", "test.max_questions=4"]


@pytest.mark.parametrize("overrides", [SHORTER, pytest.param([], marks=pytest.mark.slow)],
                         ids=["shortened", "as_documented"])
def test_sweep_of_four_jobs_its_report_and_analysis(tmp_path, overrides, capsys, train_cli):
    result = train_cli("-m", "experiment=smoke", "algorithm=grpo,clip_cov", "seed=0,1", *overrides,
                   f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(find_runs(tmp_path)) == 4
    report_main([str(tmp_path)])
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| algo")]
    assert len(table) == 2 and all("| 2 |" in line for line in table)
    rows = aggregate(read_results(find_runs(tmp_path)))
    assert sorted(r["config"] for r in rows) == ["algorithm=clip_cov", "algorithm=grpo"]
    assert all(r["runs"] == 2 and r["test_em_std"] is not None for r in rows)
    assert (tmp_path / "report.md").exists()
    # forksearch-analyze on the sweep directory: one section per run.
    out = tmp_path / "analysis"
    analyze(compose_config("analyze", AnalyzeConfig, [f"run_dir={tmp_path}", "progress=false",
                                                       "trajectories=8", "shown=2"]), out)
    analysis = json.loads((out / "analysis.json").read_text())
    assert sorted(run["run"] for run in analysis["runs"]) == sorted(
        str(p.relative_to(tmp_path)) for p in find_runs(tmp_path))
    assert all(len(run["sparsity"]) == 4 for run in analysis["runs"])  # SFT, RL, SFT, RL
    assert analysis["runs"][0]["run"].replace("/", "_") in {p.name for p in out.iterdir()}
    assert (out / "analysis.html").read_text().count('class="run"') >= 4


@pytest.mark.parametrize(("launcher", "plugin", "extra"), [
    ("ray", "hydra_ray_launcher", "ray"),
    # Slurm's launcher with submitit's local executor: the same plugin path short of a cluster.
    pytest.param("submitit_local", "hydra_submitit_launcher", "slurm", marks=pytest.mark.slow),
])
def test_a_two_job_sweep_under_a_cluster_launcher(tmp_path, train_cli, launcher, plugin, extra):
    if importlib.util.find_spec(f"hydra_plugins.{plugin}") is None:
        pytest.skip(f"{plugin} is not installed (pip install 'forksearch[{extra}]')")
    result = train_cli("-m", f"hydra/launcher={launcher}", "experiment=smoke", "seed=0,1",
                       *SHORTER,
                       f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = find_runs(tmp_path)
    assert len(runs) == 2
    seeds = sorted(json.loads((run / "config.json").read_text())["seed"] for run in runs)
    assert seeds == [0, 1] and all((run / "summary.json").exists() for run in runs)


def test_a_multi_objective_optuna_sweep_and_its_pareto_front(tmp_path, train_cli):
    result = train_cli("-m", "experiment=smoke", "hydra/sweeper=optuna",
                       "hydra.sweeper.direction=[maximize,maximize]", "hydra.sweeper.n_trials=2",
                       "hydra.sweeper.sampler.seed=0",
                       "entropy.epsilon_high=interval(0.2,0.4)",
                       "objectives=[test_em,success_strategy_entropy]", *SHORTER,
                       f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = find_runs(tmp_path)
    eps = {json.loads((run / "config.json").read_text())["entropy"]["epsilon_high"]
           for run in runs}
    assert len(runs) == 2 and len(eps) == 2 and all(0.2 <= e <= 0.4 for e in eps)
    # Optuna saw each run's (test EM, success-strategy entropy): its Pareto set is the report's.
    optuna_front = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    optuna_values = sorted(tuple(t["values"]) for t in optuna_front["solutions"])
    report(tmp_path)
    points = json.loads((tmp_path / "report.json").read_text())["runs"]
    ours = sorted((p[PARETO[0]], p[PARETO[1]]) for p in points if p["pareto"])
    assert optuna_values == ours  # floats passed through unchanged; ties are all kept
    assert (tmp_path / "pareto_em_vs_success_entropy.png").read_bytes()[:4] == b"\x89PNG"
