import json
import subprocess

import pytest

from agents.cli.bench import run_bench
from agents.cli.schema import BenchConfig, compose_config
from agents.diversity import strategy_entropy
from agents.registry import available_agents
from agents.trajectory import load_jsonl
from corpora.paths import data_dir

SINGLE_STRATEGY = ["demo_verbatim", "demo_entity", "demo_keyword", "demo_reformulation"]


DEMONSTRATOR_NAMES = [name for name in available_agents() if name.startswith("demo_")]


def bench_cfg(*overrides):
    return compose_config("bench", BenchConfig, overrides)


@pytest.fixture(scope="module")
def synthetic_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    rows = run_bench(bench_cfg("samples=2", "embed_queries=false"), out)
    return {r["agent"]: r for r in rows}, out


def test_demonstrators_cover_distinct_strategies(synthetic_bench):
    rows, out = synthetic_bench
    dominant = {rows[n]["diversity"]["dominant_strategy"] for n in DEMONSTRATOR_NAMES}
    assert len(dominant) >= 4
    for name in SINGLE_STRATEGY:
        assert rows[name]["diversity"]["strategy_entropy"] < 1.0, name
    trajectories = load_jsonl(out / "trajectories.jsonl")
    pooled = [
        label for t in trajectories if t.agent.startswith("demo_") for label in t.strategy_labels
    ]
    assert strategy_entropy(pooled) >= 2.0


def test_entity_bridge_baseline_beats_verbatim_on_two_hop(synthetic_bench):
    rows, _ = synthetic_bench
    bridge = rows["base_entity_bridge"]["em_by_type"]["bridge"]
    verbatim = rows["base_verbatim"]["em_by_type"]["bridge"]
    assert bridge >= verbatim + 0.3
    assert rows["base_random"]["em"] < rows["base_verbatim"]["em"]


def test_bench_writes_report_trajectories_and_plot(synthetic_bench):
    rows, out = synthetic_bench
    report = json.loads((out / "bench.json").read_text())
    assert [r["agent"] for r in report["rows"]] == list(rows)
    for row in report["rows"]:
        assert {
            "agent",
            "em",
            "f1",
            "searches_per_episode",
            "invalid_action_rate",
            "pass_at_k",
            "diversity",
        } <= set(row)
        assert {
            "strategy_entropy",
            "sequence_entropy",
            "distinct_1",
            "distinct_2",
            "unique_query_ratio",
            "vendi_score",
            "searches_entropy",
        } <= set(row["diversity"])
    png = (out / "strategy_distribution.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert len(load_jsonl(out / "trajectories.jsonl")) == sum(r["episodes"] for r in rows.values())


@pytest.mark.parametrize(("corpus", "min_em"), [("hotpotqa", 0.3), ("musique", 0.1)])
def test_bench_runs_on_real_samples(tmp_path, corpus, min_em):
    if not (data_dir() / corpus).is_dir():
        pytest.skip(f"sample data not found: {data_dir() / corpus} (see ../shared/data)")
    rows = run_bench(
        bench_cfg(
            f"corpus={corpus}",
            "samples=1",
            "embed_queries=false",
            "agents=[demo_decomposition,base_verbatim,base_entity_bridge]",
        ),
        tmp_path,
    )
    assert rows[0]["questions"] > 50
    # The planner reaches the supporting paragraphs of part of these 2-4 hop questions.
    assert rows[0]["em"] > min_em
    assert (tmp_path / "bench.json").exists()


def test_cli_entry_point_with_query_embeddings(tmp_path):
    run = subprocess.run(
        [
            "forksearch-bench",
            f"hydra.run.dir={tmp_path}",
            "max_questions=12",
            "agents=[base_verbatim,base_random]",
            "samples=2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    vendi = report["rows"][1]["diversity"]["vendi_score"]
    assert vendi is not None and 1.0 <= vendi <= 24
    assert "forksearch-bench" in run.stdout


def test_cli_rejects_unknown_agent(tmp_path):
    run = subprocess.run(
        ["forksearch-bench", f"hydra.run.dir={tmp_path}", "agents=[nope]"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "forksearch-bench: error: unknown agent 'nope'; known agents: base_entity_bridge, "
        "base_keyword, base_random, base_verbatim, demo_bridge, demo_decomposition, demo_entity, "
        "demo_keyword, demo_reformulation, demo_verbatim (or spell an entry point "
        "'package.module:function')."]


def test_cli_rejects_misplaced_keys_in_one_line(tmp_path):
    run = subprocess.run(["forksearch-bench", f"hydra.run.dir={tmp_path}", "top_k=5"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert run.stderr.strip() == "forksearch-bench: error: unknown key 'top_k'; did you mean " \
                                 "env.top_k=5?"


def test_a_question_budget_is_drawn_across_the_split_not_its_first_questions():
    import corpora
    from agents.cli.bench import subset

    questions = corpora.load("synthetic", size="tiny").split("test")
    assert {q.qtype for q in questions[:13]} == {"attribute"}  # the split is ordered by type
    picked = subset(questions, 13, seed=0)
    assert len(picked) == 13 and {q.qtype for q in picked} == {"attribute", "bridge", "comparison"}
    assert picked == [q for q in questions if q in picked]  # in the split's order
    assert subset(questions, 13, seed=0) == picked != subset(questions, 13, seed=1)
    assert subset(questions, None, seed=0) == questions == subset(questions, 999, seed=0)
