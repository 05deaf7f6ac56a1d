"""``forksearch-analyze run_dir=DIR``: where a run's learning signal concentrated.

For a run directory (or each run of a sweep directory) it writes ``analysis.json``, PNG plots
and one self-contained ``analysis.html`` to ``DIR/analysis/``: forking tokens, the
entropy-performance law, planning vs execution tokens and parameter-update sparsity.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from tqdm import tqdm
from transformers.utils import logging as hf_logging

from agents.analysis.html import write_report
from agents.analysis.run import Settings, analyze_run, find_runs, read_run, work_units
from agents.cli.schema import AnalyzeConfig, entry_point
from agents.evaluation import json_safe

PROGRAM = "forksearch-analyze"


def analyze(cfg: AnalyzeConfig, out_dir: Path) -> None:
    """Analyse every run under ``cfg.run_dir``; write the JSON, the plots and the report."""
    root = Path(cfg.run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"run_dir={cfg.run_dir}: no such directory")
    settings = Settings(trajectories=cfg.trajectories, top_fraction=cfg.top_fraction,
                        shown=cfg.shown, top_strings=cfg.top_strings)
    runs = [read_run(run) for run in find_runs(root)]
    hf_logging.disable_progress_bar()  # one bar for the whole analysis, not one per model load
    sections, reports = [], []
    with tqdm(total=sum(work_units(r) for r in runs), desc="analyze", unit="step",
              disable=not cfg.progress) as bar:
        for files in runs:
            name = (str(files.run_dir.relative_to(root)) if files.run_dir != root
                    else root.resolve().name)
            plots_dir = out_dir if len(runs) == 1 else out_dir / name.replace("/", "_")

            def tick(what: str, run: str = name) -> None:
                bar.set_postfix_str(f"{run}: {what}", refresh=False)
                bar.update()

            section, report = analyze_run(files, plots_dir, settings, tick)
            sections.append({"run": name, **section})
            reports.append(dataclasses.replace(report, name=name))
    (out_dir / "analysis.json").write_text(json.dumps(json_safe({"runs": sections}), indent=1))
    html = write_report(out_dir / "analysis.html", reports,
                        title=f"forksearch-analyze: {root.resolve().name}")
    console = Console()
    for section in sections:
        _print_headline(console, section)
    console.print(f"wrote {out_dir / 'analysis.json'} and {html}")


def _print_headline(console: Console, section: dict[str, Any]) -> None:
    """A few lines per run: forking share of the gradient, the law fit, sparsity."""
    lines = [f"[bold]{section['run']}[/bold]"]
    for model in section["per_model"]:
        share = model["gradient"].get("top_share")
        if share is not None and math.isfinite(share):
            lines.append(f"  {model['model']}: forking tokens carry {share:.2f} of the policy "
                         "gradient")
    fit = section["law"]["run"]
    if fit:
        lines.append(f"  entropy law: R = -{fit['a']:.3g}·exp(H) + {fit['b']:.3g} "
                     f"(R² {fit['r2']:.2f}, ceiling {fit['ceiling']:.3f})")
    else:
        batches = sum(len(p) for p in section["law"]["points"].values())
        lines.append(f"  entropy law: {batches} RL generation batches, too few to fit (3 needed)")
    for phase in section["sparsity"]:
        lines.append(f"  {phase['phase']}: {phase['overall']['unchanged']:.3f} of parameters "
                     "unchanged")
    lines += [f"  note: {note}" for note in section["notes"]]
    console.print("\n".join(lines))


main = entry_point("analyze", AnalyzeConfig, PROGRAM, analyze)

if __name__ == "__main__":
    main()
