"""``forksearch-report RUN_OR_SWEEP_DIR``: tables and plots over runs, mean and std over seeds.

Beside the table (Markdown, CSV, JSON) it fits the entropy-performance law per configuration and
marks the runs on the Pareto front of test EM against the success-strategy entropy (the two
objectives of ``experiment=diversity_pareto``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.analysis.law import LawFit, fit_entropy_law, rl_batch_points
from agents.analysis.plots import plot_entropy_law
from agents.plots import plot_metric_bars, plot_pareto, plot_pass_at_k_curves
from agents.training.metrics import METRICS_NAME, MetricsLog

METRICS = (
    "test_em",
    "test_f1",
    "pass_at_1",
    "pass_at_k",
    "strategy_entropy",
    "success_strategy_entropy",
    "strategies_per_solved_question",
    "wrong_entity_rate",
    "unique_query_ratio",
    "searches_per_episode",
    "wall_time_s",
)
SEED_KEYS = ("seed",)
PARETO = ("test_em", "success_strategy_entropy")
"""The two figures of the Pareto front, both maximised."""
PLOT_LABEL_MAX = 40
"""Longest configuration label a plot legend or axis shows as it is (see :func:`plot_label`)."""
LAW_WINDOW = 10
"""RL generation batches averaged into one point of a configuration's law fit: one batch's
reward (a few GRPO groups) is too noisy to show the trend by itself."""


def find_runs(root: Path) -> list[Path]:
    """Every run directory under ``root`` (a directory holding ``summary.json``), sorted."""
    if (root / "summary.json").exists():
        return [root]
    return sorted(p.parent for p in root.rglob("summary.json"))


def run_overrides(run: Path) -> set[str] | None:
    """The run's Hydra overrides without the seed and ``hydra.*`` (``None``: not a Hydra run)."""
    overrides_file = run / ".hydra" / "overrides.yaml"
    if not overrides_file.exists():
        return None
    overrides = yaml.safe_load(overrides_file.read_text()) or []
    return {o for o in overrides
            if o.split("=", 1)[0].lstrip("+~") not in SEED_KEYS and not o.startswith("hydra.")}


def run_labels(runs: list[Path]) -> list[str]:
    """Each run's configuration: the overrides that set it apart (``algorithm=clip_cov``).

    Overrides shared by every run of a sweep (``experiment=smoke``) are left out of the labels;
    a single run keeps all of its own.
    """
    overrides = [run_overrides(run) for run in runs]
    known = [o for o in overrides if o is not None]
    shared = set.intersection(*known) if len(known) > 1 else set()
    return [run.name if o is None else " ".join(sorted(o - shared)) or "default"
            for run, o in zip(runs, overrides)]


def law_points(run: Path) -> list[list[float]]:
    """A run's ``[token entropy, reward]`` points: its RL batches, :data:`LAW_WINDOW` at a time."""
    batches = [p for pts in rl_batch_points(MetricsLog(run / METRICS_NAME).rows()).values()
               for p in pts]
    return [np.mean(batches[i:i + LAW_WINDOW], axis=0).tolist()
            for i in range(0, len(batches) - LAW_WINDOW + 1, LAW_WINDOW)]


@dataclass(frozen=True)
class RunResult:
    """A finished run: its directory, configuration label and ``summary.json``."""

    run: Path
    config: str
    summary: dict[str, Any]


def read_results(runs: list[Path]) -> list[RunResult]:
    """Read each run's summary once and label it with :func:`run_labels`."""
    return [RunResult(run, label, json.loads((run / "summary.json").read_text()))
            for run, label in zip(runs, run_labels(runs))]


def aggregate(results: list[RunResult]) -> list[dict[str, Any]]:
    """One row per configuration: mean and std of every metric over its runs (seeds).

    A row also holds the pass@k curve averaged over seeds and the fit of the entropy law
    ``R = -a·exp(H) + b`` to the RL points of all its runs (``entropy_law``, ``None`` when they
    are too few) with the points themselves (``law_points``).
    """
    groups: dict[str, list[RunResult]] = defaultdict(list)
    for result in results:
        groups[result.config].append(result)
    rows = []
    for label, group in groups.items():
        summaries = [r.summary for r in group]
        names = [r.run.name for r in group]
        row: dict[str, Any] = {"config": label, "runs": len(summaries), "run_names": names,
                               "plot_label": plot_label(label, names)}
        for metric in METRICS:
            values = [s[metric] for s in summaries if isinstance(s.get(metric), int | float)]
            finite = [v for v in values if math.isfinite(v)]
            row[metric] = float(np.mean(finite)) if finite else math.nan
            row[f"{metric}_std"] = float(np.std(finite)) if finite else math.nan
        # pass@k for every k all the runs measured, averaged over seeds.
        curves = [c for c in (s.get("pass_at_k_curve") for s in summaries) if isinstance(c, dict)]
        if curves:
            ks = sorted(set.intersection(*(set(c) for c in curves)), key=int)
            row["pass_at_k_curve"] = {k: float(np.mean([c[k] for c in curves])) for k in ks}
        points = [p for r in group for p in law_points(r.run)]
        fit = fit_entropy_law([h for h, _ in points], [r for _, r in points])
        row["entropy_law"] = None if fit is None else fit.as_dict()
        row["law_points"] = points
        rows.append(row)
    return rows


def plot_label(config: str, run_names: list[str]) -> str:
    """A configuration's name in plots: its label while short, else a shorter one.

    An Optuna trial's label names every sampled float in full (150 characters and more), which
    no legend can show. The shorter name is its overrides with each key's last part and numbers
    to 3 significant digits or, for a configuration of one run, its folder (``trial_3``, listed
    with its overrides in ``report.md``) if that is shorter still.
    """
    if len(config) <= PLOT_LABEL_MAX:
        return config
    short = " ".join(_short_override(o) for o in config.split())
    return min([short, *run_names] if len(run_names) == 1 else [short], key=len)


def _short_override(override: str) -> str:
    key, _, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None and not value.isdigit():
        value = f"{number:.3g}"
    return f"{key.rsplit('.', 1)[-1]}={value}"


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (both coordinates maximised)."""
    return [i for i, (x, y) in enumerate(points)
            if not any(a >= x and b >= y and (a, b) != (x, y) for a, b in points)]


def run_points(results: list[RunResult]) -> list[dict[str, Any]]:
    """Each run's :data:`PARETO` figures, its configuration and whether it is on the front."""
    out: list[dict[str, Any]] = []
    for r in results:
        values = [r.summary.get(key) for key in PARETO]
        if all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            out.append({"run": str(r.run), "config": r.config, **dict(zip(PARETO, values))})
    front = set(pareto_front([(p[PARETO[0]], p[PARETO[1]]) for p in out]))
    for i, point in enumerate(out):
        point["pareto"] = i in front
    return out


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table, ``mean ± std`` per metric."""
    head = "| config | runs | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for r in rows:
        cells = [f"{r[m]:.3f} ± {r[m + '_std']:.3f}" for m in METRICS]
        plotted = r["plot_label"]
        config = r["config"] if plotted == r["config"] else f"{r['config']} (plots: {plotted})"
        lines.append(f"| {config} | {r['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def law_table(rows: list[dict[str, Any]]) -> str:
    """The per-configuration law fits as a Markdown table."""
    lines = ["| config | a | b | R² | points | ceiling b - a |", "|---|---|---|---|---|---|"]
    for r in rows:
        fit = r.get("entropy_law")
        cells = ["-"] * 5 if fit is None else [
            f"{fit['a']:.3g}", f"{fit['b']:.3g}", f"{fit['r2']:.2f}", str(fit["n"]),
            f"{fit['ceiling']:.3f}"]
        lines.append(f"| {r['config']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows flattened for ``report.csv``: metrics, their std, the law fit, pass@k per k."""
    out = []
    for r in rows:
        flat = {key: r[key] for key in ("config", "runs")}
        for metric in METRICS:
            flat[metric], flat[f"{metric}_std"] = r[metric], r[f"{metric}_std"]
        fit = r.get("entropy_law") or {}
        for key in ("a", "b", "r2", "n"):
            flat[f"law_{key}"] = fit.get(key)
        for k, value in (r.get("pass_at_k_curve") or {}).items():
            flat[f"pass_at_{k}_curve"] = value
        out.append(flat)
    return out


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """``report.csv``: one line per configuration (columns: the union over rows)."""
    flat = csv_rows(rows)
    columns = list(dict.fromkeys(key for row in flat for key in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(flat)


def report(root: Path, out: Path | None = None) -> list[dict[str, Any]]:
    """Write ``report.md``, ``report.csv``, ``report.json`` and plots into ``out`` (default: root).

    The plots compare the configurations (bars with the seed spread, pass@k curves), fit the
    entropy law per configuration and show test EM against success-strategy entropy with the
    runs on the Pareto front marked.
    """
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(
            f"no run found under {root}: expected directories with a summary.json written by "
            "forksearch-train (is the sweep finished?)"
        )
    out = out or root
    out.mkdir(parents=True, exist_ok=True)
    results = read_results(runs)
    rows = aggregate(results)
    points = run_points(results)
    front = [p for p in points if p["pareto"]]
    front_lines = "".join(f"| {p['config']} | {p['test_em']:.3f} | "
                          f"{p['success_strategy_entropy']:.3f} | {p['run']} |\n" for p in front)
    (out / "report.md").write_text(
        f"# forksearch report: {root}\n\n{markdown_table(rows)}\n"
        "## Entropy-performance law R = -a·exp(H) + b per configuration\n\n"
        f"Points: RL batches' mean token entropy H (nats) and reward R, {LAW_WINDOW} batches "
        f"averaged per point, pooled over the seeds.\n\n{law_table(rows)}\n"
        "## Pareto front: test EM vs success-strategy entropy (runs no other run beats on both)"
        "\n\n| config | test_em | success_strategy_entropy | run |\n|---|---|---|---|\n"
        f"{front_lines}")
    write_csv(rows, out / "report.csv")
    (out / "report.json").write_text(json.dumps({"configs": rows, "runs": points}, indent=2))
    names = {r["config"]: r["plot_label"] for r in rows}
    plot_rows = [{**r, "config": names[r["config"]]} for r in rows]
    for metric in ("test_em", "strategy_entropy", "success_strategy_entropy", "pass_at_k"):
        plot_metric_bars(plot_rows, metric, out / f"compare_{metric}.png")
    if any(r.get("pass_at_k_curve") for r in rows):
        plot_pass_at_k_curves(plot_rows, out / "compare_pass_at_k_curve.png")
    fits = {r["config"]: r["entropy_law"] for r in plot_rows if r["law_points"]}
    if fits:
        plot_entropy_law(
            {c: ([h for h, _ in r["law_points"]], [v for _, v in r["law_points"]])
             for r in plot_rows if (c := r["config"]) in fits},
            {c: LawFit.from_dict(f) for c, f in fits.items()},
            None, out / "compare_entropy_law.png")
    if points:
        plot_pareto([{**p, "config": names[p["config"]]} for p in points], PARETO,
                    out / "pareto_em_vs_success_entropy.png")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``forksearch-report``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory or a multirun sweep directory")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: run_dir)")
    args = parser.parse_args(argv)
    try:
        rows = report(args.run_dir, args.out)
    except FileNotFoundError as err:
        sys.exit(f"forksearch-report: {err}")
    print(markdown_table(rows), end="")
    print(f"wrote {(args.out or args.run_dir) / 'report.md'}")


if __name__ == "__main__":
    main()
