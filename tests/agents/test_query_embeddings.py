import subprocess
from typing import Any

import numpy as np
import pytest

from agents.evaluation import diversity_metrics
from agents.query_embeddings import CachedQueryEmbedder, sentence_encoder
from agents.trajectory import Trajectory

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


class CountingEncoder:
    """A fake encoder: one row per text (a one-hot of its word), and a log of every call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.eye(len(WORDS), dtype=np.float32)[[WORDS.index(t) for t in texts]]


def test_each_distinct_query_is_encoded_once_across_calls_and_rows_keep_input_order():
    encoder = CountingEncoder()
    embed = CachedQueryEmbedder(encoder)
    first = embed(["gamma", "alpha", "gamma", "beta"])
    second = embed(["beta", "delta", "alpha", "delta"])
    again = embed(["delta", "gamma"])
    assert encoder.calls == [["gamma", "alpha", "beta"], ["delta"]]  # nothing for `again`
    for asked, rows in ((["gamma", "alpha", "gamma", "beta"], first),
                        (["beta", "delta", "alpha", "delta"], second),
                        (["delta", "gamma"], again)):
        assert rows.argmax(axis=1).tolist() == [WORDS.index(q) for q in asked]
    assert (embed.encoded, embed.requested, embed.dim) == (4, 10, len(WORDS))
    assert embed([]).shape == (0, len(WORDS))


def test_cached_embedder_gives_the_metrics_of_the_plain_encoder():
    trajectories = [Trajectory(qid=f"q{i % 2}", question="?", agent="a", queries=list(pair))
                    for i, pair in enumerate([("alpha", "beta"), ("beta", "gamma"),
                                              ("alpha", "zeta"), ("beta", "beta")])]
    plain = diversity_metrics(trajectories, CountingEncoder())
    cached = diversity_metrics(trajectories, CachedQueryEmbedder(CountingEncoder()))
    assert cached["vendi_score"] == pytest.approx(plain["vendi_score"])
    assert cached["mean_pairwise_distance"] == pytest.approx(plain["mean_pairwise_distance"])


def test_sentence_encoder_loads_the_model_on_first_use(monkeypatch):
    loads: list[Any] = []

    class FakeModel:
        def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
            assert kwargs["normalize_embeddings"]
            return np.ones((len(texts), 3))

    def fake_load(model: str | None = None, device: str | None = None) -> FakeModel:
        loads.append((model, device))
        return FakeModel()

    monkeypatch.setattr("corpora.retrieval.dense.load_encoder", fake_load)
    embed = CachedQueryEmbedder(sentence_encoder())
    assert loads == []
    rows = embed(["a", "b", "a"])
    assert rows.shape == (3, 3) and rows.dtype == np.float32
    assert loads == [(None, None)]


def test_cli_output_and_log_have_no_library_debug_chatter(tmp_path):
    """bm25s sets its logger to DEBUG on import; a fresh index build used to print its lines."""
    run = subprocess.run(["forksearch-index", "corpus.size=tiny", "retrievers=[bm25]",
                          f"cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path}"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "built" in run.stdout  # the index really was built (the step that logged)
    for text in (run.stdout, run.stderr, (tmp_path / "index.log").read_text()):
        assert "[bm25s]" not in text and "[DEBUG]" not in text
