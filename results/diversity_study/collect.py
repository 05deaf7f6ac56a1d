"""Copy runs of a sweep (or single runs) here without their models: what the report needs.

    python results/diversity_study/collect.py SWEEP_DIR [SWEEP_DIR ...] [--out RUNS_DIR]
    forksearch-report results/diversity_study/runs --out results/diversity_study

Each run keeps its resolved Hydra config (``.hydra/``), ``config.json``, ``summary.json``,
``metrics.jsonl`` (the entropy-law points) and ``train.log`` (every trigger with its figure),
under ``RUNS_DIR/<arm>_seed<seed>``, with any other override appended
(``recipe_seed0_schedule.patience=2``); a run without an arm keeps its folder's name
(``trial_3``). ``RUNS_DIR`` defaults to ``runs/`` beside this file.
"""

import argparse
import shutil
from pathlib import Path

import yaml

KEEP = (".hydra", "config.json", "summary.json", "metrics.jsonl", "train.log")


def run_name(run: Path) -> str:
    """``<arm>_seed<seed>[_<other overrides>]`` from the run's overrides, else its folder name."""
    pairs = [o.lstrip("+").split("=", 1)
             for o in yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())]
    overrides = dict(pairs)
    if "arm" not in overrides:
        return run.name
    rest = [f"{k}={v}" for k, v in pairs if k not in ("arm", "seed", "experiment")]
    return "_".join([overrides["arm"], f"seed{overrides.get('seed', 0)}", *rest])


def main() -> None:
    """Copy every finished run under the given folders into ``--out``."""
    parser = argparse.ArgumentParser(description="Copy runs here without their models.")
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "runs")
    args = parser.parse_args()
    for sweep in args.sweeps:
        for summary in sorted(sweep.rglob("summary.json")):
            run = summary.parent
            dest = args.out / run_name(run)
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for name in KEEP:
                src = run / name
                if src.is_dir():
                    shutil.copytree(src, dest / name)
                elif src.exists():
                    shutil.copy2(src, dest / name)
            print(f"{run} -> {dest}")


if __name__ == "__main__":
    main()
