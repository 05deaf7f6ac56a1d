import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import corpora
from agents.build import make_envs
from agents.cli.schema import ServeConfig, compose_config, unknown_key
from agents.registry import make_agent_policy
from agents.rollout import rollout
from agents.training.config import EnvConfig
from agents.trajectory import Trajectory
from corpora.records import join_contents
from corpora.retrieval import BM25Retriever

#: Seconds a server gets to answer /health (the CLI imports torch before it loads anything).
START_S = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(tmp_path: Path, *overrides: str) -> Iterator[tuple[str, Path]]:
    """``forksearch-serve`` on a free loopback port: its URL and its stdout file; killed after."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FORKSEARCH_CACHE_DIR": str(tmp_path / "cache")}
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            ["forksearch-serve", "corpus=synthetic_tiny", "host=127.0.0.1", f"port={port}",
             f"hydra.run.dir={tmp_path / 'run'}", *overrides],
            stdout=stdout, stderr=stderr, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert proc.poll() is None, f"forksearch-serve exited: {err.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no /health in {START_S} s: {err.read_text()}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.25)
        yield url, out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def questions_file(corpus: corpora.Corpus, folder: Path) -> Path:
    """The corpus's test questions as a JSONL file of questions only (no documents)."""
    path = folder / "questions.jsonl"
    path.write_text("".join(json.dumps({"qid": q.qid, "question": q.question,
                                        "answers": list(q.answers), "split": "test"}) + "\n"
                            for q in corpus.split("test")))
    return path


def play(corpus: corpora.Corpus, retriever: corpora.Retriever) -> list[Trajectory]:
    """A scripted agent's episodes of the first 12 test questions, 4 environments at a time."""
    batch = make_envs(corpus, retriever, EnvConfig(), "test", 4)
    qids = [q.qid for q in corpus.split("test")[:12]]
    return rollout(make_agent_policy("base_verbatim", corpus), batch, qids)


def test_the_served_retriever_answers_as_the_in_process_bm25(tmp_path):
    corpus = corpora.load("synthetic", size="tiny")
    queries = [q.question for q in corpus.questions[:8]]
    want = BM25Retriever(corpus, cache=False).search(queries, 3)
    with serving(tmp_path) as (url, stdout):
        reply = httpx.post(f"{url}/retrieve", json={"queries": queries, "topk": 3,
                                                    "return_scores": True}, timeout=30)
        info = httpx.get(f"{url}/info", timeout=30).json()
        remote = corpora.make_retriever("remote", url=url).search(queries, 3)
        oversized = httpx.post(f"{url}/retrieve", json={"queries": ["q"] * 2000}, timeout=30)
        questions_only = corpora.load("jsonl", questions_path=questions_file(corpus, tmp_path))
        episodes = play(questions_only, corpora.make_retriever("remote", url=url))
    local = play(corpus, BM25Retriever(corpus, cache=False))
    assert reply.status_code == 200
    result = reply.json()["result"]
    assert [[(r["document"]["id"], r["score"]) for r in row] for row in result] == [
        [(h.doc_id, h.score) for h in hits] for hits in want]
    assert all(r["document"]["contents"] == join_contents(corpus.by_id[r["document"]["id"]].title,
                                                          corpus.by_id[r["document"]["id"]].text)
               for row in result for r in row)
    # The project's own Search-R1 client reads the service as it reads Search-R1's server.
    assert [[(h.doc_id, h.score) for h in hits] for hits in remote] == [
        [(h.doc_id, h.score) for h in hits] for hits in want]
    assert info["corpus"] == corpus.name and info["documents"] == len(corpus.documents)
    assert stdout.read_text().splitlines()[0] == (
        f"forksearch-serve: {url} corpus {corpus.name} ({len(corpus.documents)} documents), "
        "retriever bm25, 1 worker")
    assert oversized.status_code == 413 and oversized.json()["limit"] == "max_queries"
    # Episodes against the service over a questions file alone: no document is loaded here.
    assert not questions_only.documents
    assert [t.em for t in episodes] == [t.em for t in local] and any(t.em for t in episodes)
    assert [t.retrieved_ids for t in episodes] == [t.retrieved_ids for t in local]
    assert all(t.strategy_labels == u.strategy_labels for t, u in zip(episodes, local))


@pytest.mark.slow
def test_workers_share_the_cached_index_and_answer_alike(tmp_path):
    corpus = corpora.load("synthetic", size="tiny")
    queries = [q.question for q in corpus.questions[:4]]
    want = BM25Retriever(corpus, cache=False).search(queries, 2)
    with serving(tmp_path, "workers=2", "limits.max_topk=2") as (url, stdout):
        replies = [httpx.post(f"{url}/retrieve", json={"queries": queries, "topk": 2,
                                                       "return_scores": True}, timeout=30)
                   for _ in range(8)]
        refused = httpx.post(f"{url}/retrieve", json={"queries": queries, "topk": 3}, timeout=30)
    for reply in replies:
        assert [[(r["document"]["id"], r["score"]) for r in row]
                for row in reply.json()["result"]] == [
            [(h.doc_id, h.score) for h in hits] for hits in want]
    assert refused.status_code == 422 and refused.json()["limit"] == "max_topk"
    assert "2 workers" in stdout.read_text()


def test_serve_config_composes_with_the_corpus_and_retriever_groups():
    cfg = compose_config("serve", ServeConfig, ["corpus=synthetic_tiny", "retriever=hybrid",
                                                "limits.max_queries=8", "workers=2"])
    assert cfg.corpus == {"name": "synthetic", "size": "tiny"} and cfg.retriever["name"] == "hybrid"
    assert cfg.limits.max_queries == 8 and cfg.limits.max_topk == 100 and cfg.workers == 2
    assert (cfg.host, cfg.port, cfg.log_level, cfg.access_log) == ("127.0.0.1", 8000, "info", False)


@pytest.mark.parametrize(
    ("key", "expected"),
    [("max_queries", "did you mean limits.max_queries=8?"),
     ("limits.max_query", "did you mean limits.max_queries=8?")],
)
def test_a_limit_set_without_its_section_says_where_it_lives(key, expected):
    assert expected in unknown_key(key, "8", ServeConfig)


@pytest.mark.parametrize(
    ("override", "expected"),
    [("workers=0", "workers: expected at least 1, got 0"),
     ("log_level=loud", "log_level: expected one of"),
     ("limits.max_topk=0", "limits.max_topk: expected a positive integer, got 0")],
)
def test_bad_values_are_refused_naming_the_key(override, expected):
    with pytest.raises(Exception, match=expected):
        compose_config("serve", ServeConfig, [override])


def test_training_against_a_server_that_is_not_there_stops_in_one_line(tmp_path, train_cli):
    port = free_port()  # nothing listens there
    run = train_cli("experiment=smoke", "retriever=remote", f"retriever.url=http://127.0.0.1:{port}",
                    "retriever.deadline=5", f"hydra.run.dir={tmp_path / 'run'}", "progress=false")
    lines = run.stderr.strip().splitlines()  # before it: the initial model's save bar
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert lines[-1].startswith("forksearch-train: error: could not reach")
    assert "is the retrieval server running there?" in lines[-1] and "retries=2 spent" in lines[-1]
