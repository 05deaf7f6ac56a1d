"""The plots of ``forksearch-analyze`` (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from agents.analysis.law import LawFit  # noqa: E402


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_entropy_histogram(entropies: npt.ArrayLike, threshold: float, top_fraction: float,
                           path: Path) -> Path:
    """Histogram of agent-token entropies (log count), the forking threshold marked."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    values = np.asarray(entropies, dtype=float)
    ax.hist(values, bins=60, color="#4c72b0", log=True)
    ax.axvline(threshold, color="#dd5a2b", linestyle="--",
               label=f"top {top_fraction:.0%} threshold ({threshold:.2f} nats)")
    ax.set_xlabel("token entropy (nats)")
    ax.set_ylabel("agent tokens (log scale)")
    ax.set_title(f"Entropy of {len(values):,} agent tokens (final model)")
    ax.legend(frameon=False)
    return _save(fig, path)


def plot_forking_kinds(kinds: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """Share of each token kind among all agent tokens and among the forking tokens."""
    names = list(kinds)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(x - 0.2, [kinds[k]["all"] for k in names], 0.4, label="all agent tokens",
           color="#9fb6d6")
    ax.bar(x + 0.2, [kinds[k]["forking"] for k in names], 0.4, label="forking tokens",
           color="#dd5a2b")
    ax.set_xticks(x, names)
    ax.set_ylabel("share")
    ax.set_title("What the forking tokens are")
    ax.legend(frameon=False)
    return _save(fig, path)


def plot_entropy_law(points: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                     fits: Mapping[str, LawFit | None], overall: LawFit | None,
                     path: Path) -> Path:
    """Batch reward against token entropy along each RL phase, with R = -a exp(H) + b fits."""
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = plt.get_cmap("tab10")
    every: list[float] = []
    for i, (phase, (entropy, reward)) in enumerate(points.items()):
        ax.scatter(entropy, reward, s=14, color=colors(i % 10), alpha=0.7, label=phase)
        every += list(entropy)
        fit = fits.get(phase)
        if fit is not None and len(entropy) > 1:
            grid = np.linspace(min(entropy), max(entropy), 50)
            ax.plot(grid, fit.predict(grid), color=colors(i % 10), linewidth=1)
    if overall is not None and every:
        grid = np.linspace(min(every), max(every), 50)
        ax.plot(grid, overall.predict(grid), color="black", linestyle="--",
                label=f"run: a={overall.a:.3g}, b={overall.b:.3g}, R²={overall.r2:.2f}")
    ax.set_xlabel("mean token entropy of the RL batch (nats)")
    ax.set_ylabel("batch reward")
    ax.set_title("Entropy-performance law R = -a·exp(H) + b")
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def plot_planning_execution(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Entropy of query (planning) and answer (execution) tokens over the run, phases shaded."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    steps = [r["step"] for r in rows]
    for key, label, color in (("entropy_query", "query tokens (planning)", "#4c72b0"),
                              ("entropy_answer", "answer tokens (execution)", "#dd8452")):
        ax.plot(steps, [r.get(key, np.nan) for r in rows], label=label, color=color,
                linewidth=1)
    _shade_phases(ax, rows)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("mean token entropy (nats)")
    ax.set_title("Planning vs execution entropy (training batches)")
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def _shade_phases(ax: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    start = 0
    for i, row in enumerate(rows):
        last = i + 1 == len(rows) or rows[i + 1]["phase_index"] != row["phase_index"]
        if last:
            color = "#dbe7f5" if row["phase"] == "sft" else "#fde3cf"
            ax.axvspan(rows[start]["step"] - 0.5, row["step"] + 0.5, color=color, zorder=0)
            start = i + 1


def plot_sparsity(transitions: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Per phase: the share of parameters it changed at all and by more than 1e-5 relative."""
    names = [f"{t['phase']} ({t['kind']})" for t in transitions]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(names) + 2), 3.6))
    ax.bar(x - 0.2, [1 - t["overall"]["unchanged"] for t in transitions], 0.4,
           label="changed at all", color="#4c72b0")
    ax.bar(x + 0.2, [1 - t["overall"]["small"] for t in transitions], 0.4,
           label="changed by more than 1e-5 relative", color="#dd8452")
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of parameters")
    ax.set_title("Parameters each phase updated")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return _save(fig, path)
