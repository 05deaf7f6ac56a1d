"""``forksearch-report RUN_OR_SWEEP_DIR``: tables and plots over runs, mean and std over seeds."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.plots import plot_metric_bars, plot_pass_at_k_curves

METRICS = (
    "test_em",
    "test_f1",
    "pass_at_k",
    "strategy_entropy",
    "success_strategy_entropy",
    "unique_query_ratio",
    "searches_per_episode",
    "wall_time_s",
)
SEED_KEYS = ("seed",)


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


def aggregate(runs: list[Path]) -> list[dict[str, Any]]:
    """One row per configuration: mean and std of every metric over its runs (seeds)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run, label in zip(runs, run_labels(runs)):
        groups[label].append(json.loads((run / "summary.json").read_text()))
    rows = []
    for label, summaries in groups.items():
        row: dict[str, Any] = {"config": label, "runs": len(summaries)}
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
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table, ``mean ± std`` per metric."""
    head = "| config | runs | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for r in rows:
        cells = [f"{r[m]:.3f} ± {r[m + '_std']:.3f}" for m in METRICS]
        lines.append(f"| {r['config']} | {r['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report(root: Path, out: Path | None = None) -> list[dict[str, Any]]:
    """Write ``report.md``, ``report.json`` and comparison plots into ``out`` (default: root)."""
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(
            f"no run found under {root}: expected directories with a summary.json written by "
            "forksearch-train (is the sweep finished?)"
        )
    out = out or root
    out.mkdir(parents=True, exist_ok=True)
    rows = aggregate(runs)
    table = markdown_table(rows)
    (out / "report.md").write_text(f"# forksearch report: {root}\n\n{table}")
    (out / "report.json").write_text(json.dumps(rows, indent=2))
    for metric in ("test_em", "strategy_entropy", "success_strategy_entropy", "pass_at_k"):
        plot_metric_bars(rows, metric, out / f"compare_{metric}.png")
    if any(r.get("pass_at_k_curve") for r in rows):
        plot_pass_at_k_curves(rows, out / "compare_pass_at_k_curve.png")
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
