"""``forksearch-train``: demonstrations, SFT and entropy-regulated RL, then a test evaluation.

Under ``accelerate launch`` (see ``conf/accelerate/``) every process runs this program; the main
process alone writes the run directory, Hydra's files and the log included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import transformers
from rich.console import Console
from rich.table import Table

from agents.cli.schema import entry_point
from agents.evaluation import json_safe
from agents.plots import plot_training
from agents.training import distributed
from agents.training.config import TrainConfig
from agents.training.metrics import METRICS_NAME, MetricsLog
from agents.training.runner import Run

log = logging.getLogger(__name__)
PROGRAM = "forksearch-train"


def write_summary(
    run_dir: Path, result: dict[str, Any], test: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """``summary.json``: final test figures, diversity before/after RL, wall time."""
    rows = MetricsLog(run_dir / METRICS_NAME).rows()
    dev = [r for r in rows if r.get("dev_strategy_entropy") is not None]
    first_sft = min((r["phase_index"] for r in dev if r["phase"] == "sft"), default=None)
    # The first SFT phase's last evaluation (earlier ones are mid-phase with eval.every > 0).
    after_sft = [r for r in dev if r["phase_index"] == first_sft][-1:]
    summary = {
        "test_em": test["em"],
        "test_f1": test["f1"],
        "pass_at_1": test["pass_at_1"],
        "pass_at_k": test["pass_at_k"],
        "k": test["k"],
        "pass_at_k_curve": test["pass_at_k_curve"],
        "strategy_entropy": test["diversity"]["strategy_entropy"],
        "success_strategy_entropy": test["diversity"]["success_strategy_entropy"],
        "strategies_per_solved_question": test["diversity"]["strategies_per_solved_question"],
        "wrong_entity_rate": test["diversity"]["wrong_entity_rate"],
        "unique_query_ratio": test["diversity"]["unique_query_ratio"],
        "searches_per_episode": test["searches_per_episode"],
        "invalid_action_rate": test["invalid_action_rate"],
        "test_em_by_type": test["em_by_type"],
        "strategy_distribution": test["diversity"]["strategy_distribution"],
        "strategy_by_type": test["strategy_by_type"],
        "dev_em_after_sft": after_sft[0]["dev_em"] if after_sft else None,
        "dev_em_final": dev[-1]["dev_em"] if dev else None,
        "strategy_entropy_after_sft": after_sft[0]["dev_strategy_entropy"] if after_sft else None,
        "strategy_entropy_final": dev[-1]["dev_strategy_entropy"] if dev else None,
        "steps": result["steps"],
        "model": result["model"],
        "phases": result["phases"],
        "wall_time_s": seconds,
    }
    summary = json_safe(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def print_result(summary: dict[str, Any], run_dir: Path) -> None:
    """The short result table printed at the end of a run."""

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}"

    table = Table(title="forksearch-train result")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, key in (
        ("dev EM after first SFT", "dev_em_after_sft"),
        ("dev EM at the end", "dev_em_final"),
        ("test EM", "test_em"),
        ("test F1", "test_f1"),
        (f"test pass@{summary['k']}", "pass_at_k"),
        ("strategy entropy after SFT (bits)", "strategy_entropy_after_sft"),
        ("strategy entropy at the end (bits)", "strategy_entropy_final"),
        ("test strategy entropy (bits)", "strategy_entropy"),
        ("  among correct episodes (bits)", "success_strategy_entropy"),
        ("test wrong_entity queries", "wrong_entity_rate"),
        ("test unique-query ratio", "unique_query_ratio"),
        ("invalid-action rate", "invalid_action_rate"),
    ):
        table.add_row(label, fmt(summary.get(key)))
    console = Console()
    console.print(table)
    console.print(f"run directory: {run_dir}  (wall time {summary['wall_time_s']:.0f} s)")


def train(cfg: TrainConfig, out_dir: Path) -> float | tuple[float, ...] | None:
    """Train, test and report ``cfg`` in ``out_dir`` (``forksearch-train``'s job).

    Returns:
        The run's ``cfg.objectives`` (a float for one, a tuple for several) for a sweeper such
        as Optuna's; ``None`` on processes other than the main one.
    """
    job = Run(cfg, out_dir)  # checks splits, model source... before anything runs
    result = job.execute()
    test = job.test()
    if not distributed.is_main():
        if job.run_dir != out_dir:  # this process's Hydra read the clock a second apart
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # left empty (see main)
        return None
    run_dir = job.run_dir
    summary = write_summary(run_dir, result, test, job.wall_time_s())  # over every process
    plot_training(MetricsLog(run_dir / METRICS_NAME).rows(), run_dir)
    print_result(summary, run_dir)
    values = tuple(float(summary[name]) for name in cfg.objectives)
    return values[0] if len(values) == 1 else values


_run_job = entry_point("train", TrainConfig, PROGRAM, train)


def main() -> None:
    """Entry point of ``forksearch-train``.

    A process other than the main one of a multi-process launch writes no Hydra files and logs
    only warnings (to the console): the main process's log and ``.hydra/`` describe the run.
    """
    if distributed.launched_rank() > 0:
        sys.argv += ["hydra.output_subdir=null", "hydra/hydra_logging=none",
                     "hydra/job_logging=none"]
        transformers.utils.logging.disable_progress_bar()  # model loads and saves
    _run_job()
    distributed.finish()  # the others wait for the main process's summary


if __name__ == "__main__":
    main()
