"""Plots written into run directories (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from agents.strategies import STRATEGY_LABELS  # noqa: E402

STRATEGY_COLORS = dict(zip(STRATEGY_LABELS, plt.get_cmap("tab10").colors))


def plot_strategy_distributions(
    distributions: Mapping[str, Mapping[str, float]], path: str | Path, title: str = ""
) -> Path:
    """One horizontal stacked bar per agent: the share of its queries under each strategy label."""
    names = list(distributions)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.6))
    left = [0.0] * len(names)
    for label in STRATEGY_LABELS:
        shares = [distributions[n].get(label, 0.0) for n in names]
        ax.barh(names, shares, left=left, color=STRATEGY_COLORS[label], label=label)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of queries")
    ax.set_title(title or "Query strategy distribution per agent")
    ax.legend(ncol=len(STRATEGY_LABELS), loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(names) < 4 else -0.08), fontsize=8, frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_metric_bars(rows: list[dict], metric: str, path: str | Path) -> Path:
    """One bar per configuration with its std over seeds as error bars."""
    labels = [r["config"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows) + 2), 3.6))
    ax.bar(range(len(rows)), [r[metric] for r in rows], yerr=[r[f"{metric}_std"] for r in rows],
           capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} (mean ± std over seeds)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
