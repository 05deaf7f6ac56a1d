"""One run directory's analysis: forking tokens, the entropy law, planning vs execution, sparsity.

Reads what ``forksearch-train`` writes (``state.json``, ``metrics.jsonl``, ``summary.json``,
``test_trajectories_sample.jsonl`` and the saved models) and nothing else, so it works on any
finished run, also one that was killed and resumed.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.analysis import plots
from agents.analysis.html import RunReport, TokenView, TrajectoryView
from agents.analysis.law import LawFit, fit_entropy_law, rl_batch_points
from agents.analysis.sparsity import load_state_dict, update_sparsity
from agents.analysis.tokens import (
    TokenScores,
    gradient_share,
    group_advantages,
    score_tokens,
    token_kinds,
)
from agents.build import load_model
from agents.training.checkpoint import PhaseRecord, load_state
from agents.training.config import ModelConfig
from agents.trajectory import Trajectory, load_jsonl, spread_sample

#: Token kinds of agent tokens, in the order tables list them.
AGENT_KINDS = ("query", "answer", "tag", "think", "other")
TRAJECTORIES_FILE = "test_trajectories_sample.jsonl"


@dataclass
class RunFiles:
    """What a run directory holds that the analysis reads.

    Attributes:
        run_dir: The run directory.
        models: ``(name, folder)`` of each saved model in training order: the initial model
            and each finished phase's (all kept with ``keep_phase_models``), the final one last.
        phases: The finished phases, in order (phase ``i`` turned ``models[i]`` into
            ``models[i + 1]`` when every model was kept).
        rows: ``metrics.jsonl``, one row per optimizer step.
        summary: ``summary.json`` (``None`` before the final test).
        trajectories: Test episodes with token records (the fixed batch of the analysis).
        model_config: The run's model settings (prompt rendering, device).
    """

    run_dir: Path
    models: list[tuple[str, Path]]
    phases: list[PhaseRecord]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None
    trajectories: list[Trajectory]
    model_config: ModelConfig


def find_runs(root: Path) -> list[Path]:
    """``root`` if it is a run directory (it holds ``state.json``), else every run below it."""
    if (root / "state.json").exists():
        return [root]
    runs = sorted(p.parent for p in root.rglob("state.json"))
    if not runs:
        raise FileNotFoundError(f"{root}: no forksearch run here (a run directory holds "
                                "state.json); pass run_dir=<a run or sweep directory>")
    return runs


def read_run(run_dir: Path) -> RunFiles:
    """Read a run directory.

    Raises:
        FileNotFoundError: No committed state, or no saved model.
    """
    state = load_state(run_dir)
    if state is None:
        raise FileNotFoundError(f"{run_dir}: no state.json; the run has not committed yet")
    names = [*state.kept_models, state.model]
    models = [(Path(rel).name, run_dir / rel) for rel in dict.fromkeys(names)
              if (run_dir / rel).is_dir()]
    if not models:
        raise FileNotFoundError(f"{run_dir}: none of its saved models ({', '.join(names)}) exist")
    metrics = run_dir / "metrics.jsonl"
    rows = ([json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            if metrics.exists() else [])
    summary_file = run_dir / "summary.json"
    trajectories_file = run_dir / TRAJECTORIES_FILE
    trajectories = ([t for t in load_jsonl(trajectories_file) if t.tokens.completion_ids]
                    if trajectories_file.exists() else [])
    config = json.loads((run_dir / "config.json").read_text())
    return RunFiles(run_dir=run_dir, models=models, phases=list(state.finished), rows=rows,
                    summary=json.loads(summary_file.read_text()) if summary_file.exists()
                    else None, trajectories=trajectories,
                    model_config=ModelConfig(**config["model"]))


@dataclass
class Settings:
    """How much the analysis looks at.

    Attributes:
        trajectories: Test episodes in the fixed batch (entropies, gradient shares).
        top_fraction: Share of agent tokens, by entropy, that count as forking tokens.
        shown: Episodes rendered token by token in the HTML report.
        top_strings: Most frequent forking-token strings listed.
    """

    trajectories: int = 64
    top_fraction: float = 0.2
    shown: int = 6
    top_strings: int = 30


def analyze_run(files: RunFiles, out_dir: Path, settings: Settings,
                tick: Callable[[str], None] = lambda _: None) -> tuple[dict[str, Any], RunReport]:
    """Analyse one run; write its PNGs to ``out_dir``.

    Args:
        files: The run, read by :func:`read_run`.
        out_dir: Folder for the plots.
        settings: How much to look at.
        tick: Called after each unit of work with what was done (a progress bar's update).

    Returns:
        The run's section of ``analysis.json`` and its part of the HTML report.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    images: list[tuple[str, Path]] = []
    batch = spread_sample(files.trajectories, settings.trajectories)
    section: dict[str, Any] = {"run_dir": str(files.run_dir),
                               "models": [name for name, _ in files.models],
                               "trajectories": len(batch)}
    if not batch:
        notes.append(f"no {TRAJECTORIES_FILE} with token records: no token-level analysis")
    per_model, final = _per_model(files, batch, settings, tick) if batch else ([], None)
    section["per_model"] = per_model
    if per_model and all(m["gradient"]["total_norm"] == 0 for m in per_model):
        notes.append("every episode of the fixed batch has its question's mean reward (all "
                     "advantages 0): the policy gradient is 0 and its shares are undefined")
    report_views: list[TrajectoryView] = []
    if final is not None:
        tokenizer, scores, kinds = final
        section["forking"] = _forking(batch, scores, kinds, tokenizer, settings)
        images.append(("Entropy of the final model's agent tokens on the fixed test batch.",
                       plots.plot_entropy_histogram(
                           _agent_values(scores, kinds), section["forking"]["threshold"],
                           settings.top_fraction, out_dir / "token_entropy_histogram.png")))
        images.append(("Token kinds among all agent tokens and among the forking tokens.",
                       plots.plot_forking_kinds(section["forking"]["kinds"],
                                                out_dir / "forking_kinds.png")))
        report_views = _views(batch, scores, kinds, tokenizer, section["forking"]["threshold"],
                              settings.shown)
    section["law"] = _law(files.rows)
    if section["law"]["points"]:
        images.append(("Batch reward against token entropy along the RL phases; lines: fits of "
                       "R = -a·exp(H) + b.", _law_plot(section["law"], out_dir)))
    else:
        notes.append("no RL steps in metrics.jsonl: no entropy-performance fit")
    steps = [r for r in files.rows if r.get("entropy_query") is not None]
    if steps:
        images.append(("Entropy of query (planning) and answer (execution) tokens in the "
                       "training batches; blue: SFT, orange: RL.",
                       plots.plot_planning_execution(steps, out_dir / "planning_execution.png")))
    section["planning"] = _planning(steps)
    section["sparsity"] = _sparsity(files, tick)
    if section["sparsity"]:
        images.append(("Share of parameters each phase changed (at all, and by more than 1e-5 "
                       "relative).",
                       plots.plot_sparsity(section["sparsity"], out_dir / "sparsity.png")))
    else:
        notes.append("fewer than two saved models of consecutive phases (keep_phase_models="
                     "false, or a run from before it existed): no update sparsity")
    section["notes"] = notes
    return section, RunReport(name=files.run_dir.name, summary=_headline(files.summary),
                              tables=_tables(section), images=images,
                              trajectories=report_views, notes=notes)


def work_units(files: RunFiles) -> int:
    """How many ``tick`` calls :func:`analyze_run` makes (for a progress bar's total)."""
    return 2 * len(files.models) + max(0, len(files.models) - 1)


def _per_model(files: RunFiles, batch: Sequence[Trajectory], settings: Settings,
               tick: Callable[[str], None]) -> tuple[list[dict[str, Any]], Any]:
    """Token entropies, log-probs and gradient shares of every saved model on the batch."""
    advantages = group_advantages(batch)
    records = [t.tokens for t in batch]
    rows, final = [], None
    kinds: list[list[str]] | None = None
    for name, folder in files.models:
        model, tokenizer = load_model(str(folder), files.model_config)
        model.eval()
        if kinds is None:  # the saved models of a run share one tokenizer
            kinds = [token_kinds(tokenizer, r) for r in records]
        scores = score_tokens(model, records)
        tick(f"{name}: token entropies")
        grad = gradient_share(model, records, advantages, settings.top_fraction, scores=scores)
        tick(f"{name}: gradient share")
        rows.append({"model": name, **_kind_means(scores, kinds), "gradient": grad})
        final = (tokenizer, scores, kinds)
        del model
    return rows, final


def _agent_values(scores: Sequence[TokenScores], kinds: Sequence[Sequence[str]],
                  field: str = "entropy", only: str | None = None) -> np.ndarray:
    values = [getattr(s, field)[i] for s, k in zip(scores, kinds, strict=True)
              for i, kind in enumerate(k) if kind != "env" and (only is None or kind == only)]
    return np.asarray(values, dtype=float)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _kind_means(scores: Sequence[TokenScores], kinds: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Mean entropy of all agent tokens, and entropy and NLL of query and answer tokens."""
    out: dict[str, Any] = {"entropy_all": _mean(_agent_values(scores, kinds))}
    for kind in ("query", "answer"):
        out[f"entropy_{kind}"] = _mean(_agent_values(scores, kinds, only=kind))
        logprob = _mean(_agent_values(scores, kinds, "logprob", kind))
        out[f"nll_{kind}"] = None if logprob is None else -logprob
    return out


def _forking(batch: Sequence[Trajectory], scores: Sequence[TokenScores],
             kinds: Sequence[Sequence[str]], tokenizer: Any, settings: Settings) -> dict[str, Any]:
    """Where the final model's top-entropy agent tokens are, and which strings they are."""
    entropies = _agent_values(scores, kinds)
    threshold = float(np.quantile(entropies, 1 - settings.top_fraction))
    counts_all: Counter[str] = Counter()
    counts_fork: Counter[str] = Counter()
    strings: Counter[str] = Counter()
    for trajectory, score, kind in zip(batch, scores, kinds, strict=True):
        ids = trajectory.tokens.completion_ids
        for i, k in enumerate(kind):
            if k == "env":
                continue
            counts_all[k] += 1
            if score.entropy[i] > threshold:
                counts_fork[k] += 1
                strings[tokenizer.decode([ids[i]]).strip() or repr(tokenizer.decode([ids[i]]))] += 1
    n_all, n_fork = sum(counts_all.values()), max(1, sum(counts_fork.values()))
    return {
        "threshold": threshold,
        "top_fraction": settings.top_fraction,
        "agent_tokens": n_all,
        "forking_tokens": sum(counts_fork.values()),
        "kinds": {k: {"all": counts_all[k] / n_all, "forking": counts_fork[k] / n_fork}
                  for k in AGENT_KINDS},
        "top_strings": strings.most_common(settings.top_strings),
    }


def _law(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Fits of R = -a exp(H) + b to (token entropy, batch reward) per RL phase and overall."""
    points = rl_batch_points(rows)
    fits = {}
    for phase, pts in points.items():
        fit = fit_entropy_law([p[0] for p in pts], [p[1] for p in pts])
        fits[phase] = None if fit is None else fit.as_dict()
    every = [p for pts in points.values() for p in pts]
    overall = fit_entropy_law([p[0] for p in every], [p[1] for p in every])
    return {"points": points, "phases": fits,
            "run": None if overall is None else overall.as_dict()}


def _phase_name(row: dict[str, Any]) -> str:
    return f"{row['phase_index']:02d}-{row['phase']}"


def _law_plot(law: dict[str, Any], out_dir: Path) -> Path:
    """Plot the points and the fits that :func:`_law` computed (not fitted again)."""
    points = {p: ([x for x, _ in pts], [y for _, y in pts]) for p, pts in law["points"].items()}
    fits = {p: LawFit.from_dict(f) for p, f in law["phases"].items()}
    return plots.plot_entropy_law(points, fits, LawFit.from_dict(law["run"]),
                                  out_dir / "entropy_law.png")


def _planning(steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Query and answer token entropy of each phase's first and last quarter of batches.

    Does execution (answer) entropy settle first while planning (query) entropy stays?
    """
    phases: dict[str, list[dict[str, Any]]] = {}
    for row in steps:
        phases.setdefault(_phase_name(row), []).append(row)
    out = {}
    for name, rows in phases.items():
        quarter = max(1, len(rows) // 4)
        out[name] = {f"{key}_{part}": _nanmean([r.get(key) for r in part_rows])
                     for key in ("entropy_query", "entropy_answer")
                     for part, part_rows in (("first", rows[:quarter]), ("last", rows[-quarter:]))}
    return out


def _nanmean(values: Sequence[Any]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else None


def _sparsity(files: RunFiles, tick: Callable[[str], None]) -> list[dict[str, Any]]:
    """Update sparsity of each phase whose start and end models were both kept."""
    if len(files.models) != len(files.phases) + 1:
        return []  # models were not all kept: consecutive pairs are not single phases
    out = []
    previous = load_state_dict(files.models[0][1])
    for phase, (name, folder) in zip(files.phases, files.models[1:], strict=True):
        current = load_state_dict(folder)
        stats = update_sparsity(previous, current)
        ranks = [m["rank_ratio"] for m in stats["matrices"].values()]
        out.append({"phase": name, "kind": phase.kind, "steps": phase.steps,
                    "mean_rank_ratio": sum(ranks) / len(ranks) if ranks else None, **stats})
        previous = current
        tick(f"{name}: update sparsity")
    return out


def _headline(summary: dict[str, Any] | None) -> dict[str, Any]:
    if summary is None:
        return {}
    keys = ("test_em", "pass_at_k", "strategy_entropy", "unique_query_ratio",
            "dev_em_after_sft", "dev_em_final", "steps", "wall_time_s")
    return {k: summary[k] for k in keys if k in summary}


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.1e}" if 0 < abs(value) < 5e-4 else f"{value:.3f}"
    return "n/a" if value is None else value


def _tables(section: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    tables = []
    if section["per_model"]:
        tables.append((
            "Each saved model on the fixed test batch: token entropy (nats), NLL of query and "
            "answer tokens, and the share of the policy gradient carried by the top-entropy "
            "(forking) tokens (projection on the whole gradient; the rest carry 1 - share).",
            ["model", "entropy", "entropy query", "entropy answer", "NLL query", "NLL answer",
             "forking share of gradient", "forking tokens"],
            [[m["model"], *(_fmt(m[k]) for k in ("entropy_all", "entropy_query",
                                                  "entropy_answer", "nll_query", "nll_answer")),
              _fmt(m["gradient"].get("top_share")), _fmt(m["gradient"].get("top_tokens"))]
             for m in section["per_model"]]))
    forking = section.get("forking")
    if forking:
        pairs = forking["top_strings"]
        rows = (len(pairs) + 2) // 3  # three columns of (token, count), read down
        tables.append((f"The {len(pairs)} most frequent forking-token strings (entropy above "
                       f"{forking['threshold']:.2f} nats), most frequent first, read down.",
                       ["token", "count"] * 3,
                       [[x for j in range(i, len(pairs), rows) for x in pairs[j]]
                        for i in range(rows)]))
    law = section["law"]
    fits = [(p, f) for p, f in law["phases"].items()] + [("whole run", law["run"])]
    tables.append(("Fits of R = -a·exp(H) + b (H: mean token entropy of an RL batch, R: its "
                   "reward); the ceiling b - a is the reward predicted at zero entropy.",
                   ["RL phase", "a", "b", "R²", "ceiling b - a", "points"],
                   [[p, *(_fmt(f[k]) for k in ("a", "b", "r2", "ceiling", "n"))] if f else
                    [p, "n/a", "n/a", "n/a", "n/a", "too few"] for p, f in fits]))
    if section["planning"]:
        tables.append(("Mean token entropy of query (planning) and answer (execution) tokens "
                       "in the first and last quarter of each phase's batches.",
                       ["phase", "query first", "query last", "answer first", "answer last"],
                       [[p, *(_fmt(v[k]) for k in ("entropy_query_first", "entropy_query_last",
                                                   "entropy_answer_first",
                                                   "entropy_answer_last"))]
                        for p, v in section["planning"].items()]))
    if section["sparsity"]:
        tables.append(("Parameter-update sparsity of each phase: share of parameters exactly "
                       "unchanged, share changed by at most 1e-5 relative, and the mean "
                       "rank(Δ)/min(shape) of its weight matrices.",
                       ["phase", "kind", "steps", "unchanged", "|Δ| ≤ 1e-5 rel.",
                        "mean rank ratio"],
                       [[t["phase"], t["kind"], t["steps"], _fmt(t["overall"]["unchanged"]),
                         _fmt(t["overall"]["small"]), _fmt(t["mean_rank_ratio"])]
                        for t in section["sparsity"]]))
    return tables


def _views(batch: Sequence[Trajectory], scores: Sequence[TokenScores],
           kinds: Sequence[Sequence[str]], tokenizer: Any, threshold: float,
           shown: int) -> list[TrajectoryView]:
    """``shown`` episodes of distinct questions, taking question types in turn, token by token."""
    firsts: dict[str, list[int]] = {}  # question type -> first episode of each of its questions
    seen: set[str] = set()
    for i, trajectory in enumerate(batch):
        if trajectory.qid not in seen:
            seen.add(trajectory.qid)
            firsts.setdefault(trajectory.qtype, []).append(i)
    order = [i for column in itertools.zip_longest(*firsts.values()) for i in column
             if i is not None][:shown]
    views: list[TrajectoryView] = []
    for i in sorted(order):
        trajectory, score, kind = batch[i], scores[i], kinds[i]
        texts = _token_texts(tokenizer, trajectory.tokens.completion_ids)
        segments: list[list[TokenView]] = []
        for i, (text, k) in enumerate(zip(texts, kind, strict=True)):
            entropy = None if k == "env" else float(score.entropy[i])
            token = TokenView(text=text, entropy=entropy, kind=k,
                              forking=entropy is not None and entropy > threshold)
            if not segments or (segments[-1][-1].kind == "env") != (k == "env"):
                segments.append([])
            segments[-1].append(token)
        views.append(TrajectoryView(question=trajectory.question, agent=trajectory.agent,
                                    reward=trajectory.reward, em=trajectory.em,
                                    strategy_labels=list(trajectory.strategy_labels),
                                    segments=segments))
    return views


def _token_texts(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each token's text as it reads in context (decoding tokens one by one loses spaces)."""
    texts, previous = [], ""
    for end in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:end])
        texts.append(text[len(previous):] if text.startswith(previous) else
                     tokenizer.decode(ids[end - 1:end]))
        previous = text
    return texts
