"""Copy a diversity-study sweep's runs here without their models: what the report needs.

    python results/diversity_study/collect.py SWEEP_DIR [SWEEP_DIR ...]
    forksearch-report results/diversity_study/runs --out results/diversity_study

Each run keeps its resolved Hydra config (``.hydra/``), ``config.json``, ``summary.json``,
``metrics.jsonl`` (the entropy-law points) and ``train.log`` (every trigger with its figure),
under ``runs/<arm>_seed<seed>``.
"""

import shutil
import sys
from pathlib import Path

import yaml

KEEP = (".hydra", "config.json", "summary.json", "metrics.jsonl", "train.log")
OUT = Path(__file__).parent / "runs"

for sweep in map(Path, sys.argv[1:]):
    for summary in sorted(sweep.rglob("summary.json")):
        run = summary.parent
        overrides = dict(o.lstrip("+").split("=", 1)
                         for o in yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()))
        dest = OUT / f"{overrides['arm']}_seed{overrides['seed']}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for name in KEEP:
            src = run / name
            if src.is_dir():
                shutil.copytree(src, dest / name)
            elif src.exists():
                shutil.copy2(src, dest / name)
        print(f"{run} -> {dest}")
