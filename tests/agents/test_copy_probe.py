"""The copy probe benchmark: its name-token mask and its teacher-forced accuracies."""

import importlib.util
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from agents.lm import LMPolicy
from agents.lm.model import load_model_and_tokenizer
from agents.training.demonstrations import EntityRenamer
from corpora import load

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "copy_probe.py"
_spec = importlib.util.spec_from_file_location("copy_probe", _PATH)
assert _spec is not None and _spec.loader is not None
copy_probe = importlib.util.module_from_spec(_spec)
sys.modules["copy_probe"] = copy_probe
_spec.loader.exec_module(copy_probe)


@pytest.fixture(scope="module")
def probe():
    corpus = load("synthetic", size="tiny", seed=0)
    model, tokenizer = load_model_and_tokenizer("tiny", corpus)
    policy = LMPolicy(model, tokenizer, max_length=1024)
    rows = copy_probe.demo_rows(corpus, policy, "dev", 8, 1024)
    return SimpleNamespace(corpus=corpus, tokenizer=tokenizer, rows=rows)


def _agent_text(tokenizer, row, key):
    return tokenizer.decode([i for i, m in zip(row["input_ids"], row[key]) if m])


def test_name_mask_spells_the_entity_words_of_queries_and_answers(probe):
    names = EntityRenamer(probe.corpus).name_words
    assert probe.rows
    for row in probe.rows:
        actions = _agent_text(probe.tokenizer, row, "assistant_masks")
        spans = re.findall(r"<(?:search|answer)>(.*?)</", actions)
        expected = "".join(w for s in spans for w in re.findall(r"[A-Za-z]+", s) if w in names)
        assert _agent_text(probe.tokenizer, row, "name_mask").replace(" ", "") == expected
        assert all(a or not n for a, n in zip(row["assistant_masks"], row["name_mask"]))


class _Oracle(torch.nn.Module):
    """Predicts every next token, except (when ``miss_names``) on name-token targets."""

    def __init__(self, rows, vocab, miss_names):
        super().__init__()
        self.names = {tuple(r["input_ids"]): r["name_mask"] for r in rows}
        self.vocab, self.miss_names = vocab, miss_names

    def forward(self, input_ids):
        logits = torch.zeros((*input_ids.shape, self.vocab))
        for b, ids in enumerate(input_ids.tolist()):
            key = next(k for k in self.names if tuple(ids[: len(k)]) == k)
            for t in range(len(key) - 1):
                wrong = self.miss_names and self.names[key][t + 1]
                logits[b, t, (key[t + 1] + 1) % self.vocab if wrong else key[t + 1]] = 1.0
        return SimpleNamespace(logits=logits)


def test_accuracies_separate_name_tokens_from_the_rest(probe):
    vocab, pad = len(probe.tokenizer), probe.tokenizer.pad_token_id
    perfect = copy_probe.evaluate(_Oracle(probe.rows, vocab, False), probe.rows, pad)
    assert perfect == {"name_acc": 1.0, "name_first_acc": 1.0, "other_acc": 1.0,
                       "query_exact": 1.0}
    no_names = copy_probe.evaluate(_Oracle(probe.rows, vocab, True), probe.rows, pad)
    assert no_names["name_acc"] == no_names["name_first_acc"] == 0.0
    assert no_names["other_acc"] == 1.0
    runs = [(r, s, e) for r in probe.rows for s, e in copy_probe._runs(r["query_mask"])]
    nameless = sum(not any(r["name_mask"][s:e]) for r, s, e in runs)
    assert no_names["query_exact"] == round(nameless / len(runs), 3) < 1.0


def test_runs_finds_each_block_of_ones():
    assert copy_probe._runs([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert copy_probe._runs([0, 0]) == []
