"""Plots written into run directories (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import StrMethodFormatter  # noqa: E402

from agents.strategies import STRATEGY_LABELS  # noqa: E402

_TAB10 = plt.get_cmap("tab10")
STRATEGY_COLORS = {label: _TAB10(i) for i, label in enumerate(STRATEGY_LABELS)}


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
    ax.legend(
        ncol=len(STRATEGY_LABELS),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.25 if len(names) < 4 else -0.08),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_metric_bars(rows: list[dict], metric: str, path: str | Path) -> Path:
    """One bar per configuration with its std over seeds as error bars."""
    labels = [r["config"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows) + 2), 3.6))
    ax.bar(
        range(len(rows)),
        [r[metric] for r in rows],
        yerr=[r[f"{metric}_std"] for r in rows],
        capsize=4,
        color="#4c72b0",
    )
    ax.set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} (mean ± std over seeds)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_pass_at_k_curves(rows: list[dict], path: str | Path) -> Path:
    """pass@k against k, one line per configuration (mean over seeds; k on a log2 axis)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for row in rows:
        curve = row.get("pass_at_k_curve") or {}
        ks = sorted(curve, key=int)
        ax.plot([int(k) for k in ks], [curve[k] for k in ks], marker="o", ms=3,
                label=row["config"])
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:.0f}"))  # 1, 2, 4... not powers of 2
    ax.set_xlabel("k (samples per question)")
    ax.set_ylabel("pass@k")
    ax.set_title("pass@k (mean over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_pareto(points: list[dict], axes: tuple[str, str], path: str | Path) -> Path:
    """One dot per run on two maximised figures; the runs on the Pareto front joined in red.

    Runs are coloured by configuration when there are at most ten (a study's arms); a search
    over continuous knobs (Optuna trials, one configuration each) is drawn in one colour.
    """
    x_key, y_key = axes
    configs = list(dict.fromkeys(p["config"] for p in points))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, config in enumerate(configs if len(configs) <= 10 else [None]):
        mine = [p for p in points if config is None or p["config"] == config]
        ax.scatter([p[x_key] for p in mine], [p[y_key] for p in mine], s=28, alpha=0.8,
                   color=_TAB10(i) if config is not None else "#4c72b0",
                   label=config if config is not None else f"{len(points)} runs")
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p[x_key])
    ax.plot([p[x_key] for p in front], [p[y_key] for p in front], color="#c44e52",
            marker="o", mfc="none", ms=11, linewidth=1, label="Pareto front")
    ax.set_xlabel(x_key)
    ax.set_ylabel(y_key)
    ax.set_title("Accuracy vs diversity among successes (one dot per run)")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


PHASE_COLORS = {"sft": "#dbe9f6", "rl": "#fde7d4"}


def _series(rows: list[dict], key: str, phase: str | None = None) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in rows
              if isinstance(r.get(key), int | float) and phase in (None, r.get("phase"))]
    return [p[0] for p in points], [p[1] for p in points]


def phase_spans(rows: list[dict]) -> list[tuple[str, int, int]]:
    """``(phase, first step, last step)`` of each phase of a run, in order."""
    spans: list[tuple[str, int, int]] = []
    index = None
    for r in rows:
        if spans and r.get("phase_index") == index:
            spans[-1] = (spans[-1][0], spans[-1][1], r["step"])
        else:
            spans.append((r["phase"], r["step"], r["step"]))
            index = r.get("phase_index")
    return spans


def _shade_phases(ax: plt.Axes, rows: list[dict]) -> None:
    """Shade each SFT / RL phase, each kind labelled once in the legend."""
    seen: set[str] = set()
    for phase, first, last in phase_spans(rows):
        label = None if phase in seen else f"{phase.upper()} phase"
        seen.add(phase)
        ax.axvspan(
            first - 0.5,
            last + 0.5,
            color=PHASE_COLORS.get(phase, "#eeeeee"),
            lw=0,
            label=label,
            zorder=0,
        )


def plot_training(rows: list[dict], out_dir: str | Path) -> list[Path]:
    """Write the run plots: reward & dev EM, token entropies, strategy entropy and shares."""
    out_dir = Path(out_dir)
    if not rows:
        return []
    paths = []
    panels: list[tuple[str, str, str, list[tuple[str, ...]]]] = [
        (
            "reward_dev_em.png",
            "Reward and held-out EM",
            "value",
            # SFT batches are successful demonstrations (reward 1): only RL rewards are drawn.
            [("reward", "RL batch reward", "rl"), ("dev_em", "dev EM")],
        ),
        (
            "token_entropy.png",
            "Token entropy (nats)",
            "entropy",
            [
                ("entropy_all", "all agent tokens"),
                ("entropy_query", "query tokens"),
                ("entropy_answer", "answer tokens"),
                ("dev_entropy_all", "dev, all tokens"),
            ],
        ),
        (
            "strategy_entropy.png",
            "Query-strategy entropy (bits)",
            "bits",
            [("strategy_entropy", "batch (SFT: demonstrations, RL: rollouts)"),
             ("dev_strategy_entropy", "dev")],
        ),
    ]
    for name, title, ylabel, keys in panels:
        fig, ax = plt.subplots(figsize=(8, 4))
        _shade_phases(ax, rows)
        for key, label, *phase in keys:
            xs, ys = _series(rows, key, *phase)
            if xs:
                ax.plot(xs, ys, marker="o" if key.startswith("dev_") else None, ms=4, label=label)
        ax.set_xlabel("optimizer step (whole run)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=120)
        plt.close(fig)
        paths.append(out_dir / name)
    paths.append(_plot_strategy_shares(rows, out_dir / "strategy_distribution.png"))
    return paths


def _plot_strategy_shares(rows: list[dict], path: Path) -> Path:
    """Stacked area of the dev episodes' query-strategy shares over the run."""
    dev = [r for r in rows if isinstance(r.get(f"dev_share_{STRATEGY_LABELS[0]}"), int | float)]
    fig, ax = plt.subplots(figsize=(8, 4))
    _shade_phases(ax, rows)
    if dev:
        steps = [r["step"] for r in dev]
        shares = [[r.get(f"dev_share_{label}") or 0.0 for r in dev] for label in STRATEGY_LABELS]
        ax.stackplot(
            steps,
            shares,
            labels=STRATEGY_LABELS,
            colors=[STRATEGY_COLORS[label] for label in STRATEGY_LABELS],
            alpha=0.9,
        )
        ax.set_ylim(0, 1)
    ax.set_xlabel("optimizer step (whole run)")
    ax.set_ylabel("share of dev queries")
    ax.set_title("Query-strategy distribution over the run (dev episodes)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
