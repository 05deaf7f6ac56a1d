"""``forksearch-bench``: benchmark agents on a corpus split, with diversity metrics."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agents.build import build_retriever, load_corpus, make_envs
from agents.cli.schema import BenchConfig, entry_point
from agents.evaluation import Embedder, json_safe, summarize
from agents.plots import plot_strategy_distributions
from agents.registry import AGENT_GROUPS, AGENTS, LM_PREFIX, agent_group, make_agent_policy
from agents.rollout import rollout
from agents.trajectory import Trajectory, save_jsonl
from corpora import Question

log = logging.getLogger(__name__)
PROGRAM = "forksearch-bench"


def run_bench(cfg: BenchConfig, out_dir: Path) -> list[dict[str, Any]]:
    """Run every agent of ``cfg.agents``; write bench.json, trajectories and the plot."""
    corpus = load_corpus(cfg.corpus)
    retriever = build_retriever(cfg.retriever, corpus)
    questions = subset(corpus.require_split(cfg.split), cfg.max_questions, cfg.seed)
    for name in cfg.agents:  # unknown names fail now, not after the first agents ran
        if not name.startswith(LM_PREFIX):
            AGENTS.resolve(name)
    qids = [q.qid for q in questions]
    batch = make_envs(corpus, retriever, cfg.env, cfg.split,
                      min(cfg.env.batch_size, len(qids) * cfg.samples))
    embed = _query_embedder() if cfg.embed_queries else None
    rows: list[dict[str, Any]] = []
    all_trajectories: list[Trajectory] = []
    for name in cfg.agents:
        policy = make_agent_policy(name, corpus, seed=cfg.seed, model=cfg.model,
                                   temperature=cfg.temperature, top_p=cfg.top_p)
        start = time.perf_counter()
        trajectories = rollout(policy, batch, qids, samples=cfg.samples, progress=True)
        seconds = time.perf_counter() - start
        row = {"agent": name, "group": agent_group(name),
               **summarize(trajectories, k=cfg.samples, embed=embed, seed=cfg.seed)}
        row["episodes_per_second"] = len(trajectories) / seconds
        rows.append(row)
        all_trajectories += trajectories
        log.info("%s: EM %.3f in %.1fs", name, row["em"], seconds)
    report = {
        "corpus": corpus.name,
        "split": cfg.split,
        "questions": len(qids),
        "samples": cfg.samples,
        "retriever": cfg.retriever["name"],
        "rows": rows,
    }
    (out_dir / "bench.json").write_text(json.dumps(json_safe(report), indent=2))
    save_jsonl(all_trajectories, out_dir / "trajectories.jsonl")
    plot_strategy_distributions(
        {r["agent"]: r["diversity"]["strategy_distribution"] for r in rows},
        out_dir / "strategy_distribution.png",
        title=f"Query strategies on {corpus.name} ({cfg.split})",
    )
    return rows


def subset(questions: list[Question], size: int | None, seed: int) -> list[Question]:
    """``size`` of ``questions`` drawn with ``seed``, in their order (all when ``size`` is None).

    Drawn, not the first ones: splits are often ordered by type (the synthetic world lists its
    1-hop questions first), so a prefix would bench one kind of question only.
    """
    if size is None or size >= len(questions):
        return questions
    return [questions[i] for i in sorted(random.Random(seed).sample(range(len(questions)), size))]


def _query_embedder() -> Embedder:
    """MiniLM query embeddings shared by all agents of the run: each distinct query once."""
    from agents.query_embeddings import CachedQueryEmbedder

    return CachedQueryEmbedder()


#: Why demonstrators are set apart in the table.
DEMONSTRATOR_NOTE = ("demonstrators plan from the gold supporting documents and answer with the "
                     "gold answer once they retrieved them all: their EM measures evidence "
                     "coverage, not question answering")


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    """The benchmark table: accuracy, search behaviour, diversity; one section per agent group."""
    qtypes = sorted({t for r in rows for t in r["em_by_type"]})
    table = Table(title="forksearch-bench", caption=DEMONSTRATOR_NOTE
                  if any(r["group"] == "demonstrators" for r in rows) else None)
    for col in ("agent", "EM", "F1", f"pass@{rows[0]['k']}", f"EM {'/'.join(qtypes)}",
                "searches", "invalid", "strategy H", "dominant", "uniq q", "vendi"):
        table.add_column(col, justify="left" if col in ("agent", "dominant") else "right")
    for group in AGENT_GROUPS:
        members = [r for r in rows if r["group"] == group]
        if not members:
            continue
        if table.row_count:
            table.add_section()
        table.add_row(f"[bold]{group}[/bold]")
        for r in members:
            d = r["diversity"]
            table.add_row(
                f"  {r['agent']}",
                f"{r['em']:.3f}",
                f"{r['f1']:.3f}",
                f"{r['pass_at_k']:.3f}",
                "/".join(f"{r['em_by_type'].get(t, float('nan')):.2f}" for t in qtypes),
                f"{r['searches_per_episode']:.2f}",
                f"{r['invalid_action_rate']:.3f}",
                f"{d['strategy_entropy']:.2f}",
                str(d["dominant_strategy"]),
                f"{d['unique_query_ratio']:.2f}",
                f"{d['vendi_score']:.2f}",
            )
    console.print(table)


def bench(cfg: BenchConfig, out_dir: Path) -> None:
    """Benchmark ``cfg.agents``; print the table (``forksearch-bench``'s job)."""
    rows = run_bench(cfg, out_dir)
    console = Console(width=max(Console().width, 150))
    print_table(rows, console)
    console.print(f"wrote {out_dir / 'bench.json'}")


main = entry_point("bench", BenchConfig, PROGRAM, bench)

if __name__ == "__main__":
    main()
