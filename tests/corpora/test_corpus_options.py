"""Options every corpus takes (resplit, label), plugin loaders, and errors that say what to do."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

import corpora
from corpora import Corpus, Document, Question
from corpora.formats.splits import resplit
from corpora.registry import CORPORA


def one_split_corpus(n: int = 50) -> Corpus:
    docs = (Document("d0", "Doc", "text"),)
    questions = tuple(Question(f"q{i}", f"question {i}?", ("a",), ("d0",), 1, "dev")
                      for i in range(n))
    return Corpus("mine", docs, questions)


def test_resplit_deals_every_question_once_in_the_given_ratios() -> None:
    corpus = one_split_corpus(50)
    dealt = resplit(corpus, {"train": 0.6, "dev": 0.2, "test": 0.2}, seed=0)
    assert Counter(q.split for q in dealt.questions) == {"train": 30, "dev": 10, "test": 10}
    assert [q.qid for q in dealt.questions] == [q.qid for q in corpus.questions]  # order kept
    assert dealt.documents == corpus.documents


def test_resplit_is_seeded_and_shuffles() -> None:
    corpus = one_split_corpus(50)
    ratios = {"train": 0.5, "dev": 0.5}

    def train_ids(seed: int) -> list[str]:
        return [q.qid for q in resplit(corpus, ratios, seed).split("train")]

    assert train_ids(0) == train_ids(0)
    assert train_ids(0) != train_ids(1)
    assert train_ids(0) != [f"q{i}" for i in range(25)]  # not simply the first half
    assert not resplit(corpus, ratios, 0).split("test")  # a split left out gets nothing


@pytest.mark.parametrize(("ratios", "message"), [
    ({"train": 0.5, "dev": 0.4}, "must add up to 1, got 0.9"),
    ({"train": 0.5, "validation": 0.5}, "resplit: expected one of train, dev, test"),
    ({"train": 1.5, "dev": -0.5}, "resplit.train: expected a fraction between 0 and 1"),
    ([0.6, 0.2, 0.2], "expected a mapping of split -> fraction"),
])
def test_resplit_refuses_bad_ratios(ratios: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resplit(one_split_corpus(), ratios, 0)  # type: ignore[arg-type]


def test_every_loader_takes_resplit_and_label() -> None:
    corpus = corpora.load("synthetic", size="tiny", resplit={"train": 0.8, "test": 0.2},
                          resplit_seed=3, label="my_world")
    assert corpus.name == "my_world"
    assert {s: len(corpus.split(s)) for s in ("train", "dev", "test")} == {
        "train": 144, "dev": 0, "test": 36}


def test_an_option_no_loader_takes_lists_the_loaders_and_the_shared_options() -> None:
    with pytest.raises(TypeError, match=r"allowed options: size, seed, twin_fraction, holdout "
                                        r"\(and for every corpus: label, resplit, resplit_seed\)\."
                                        r" Did you mean 'size'\?"):
        corpora.load("synthetic", sise="tiny")
    with pytest.raises(TypeError, match=r"Did you mean 'resplit'\?"):
        corpora.load("synthetic", resplitt={"train": 1.0})


def test_a_loader_that_returns_no_corpus_is_named() -> None:
    with pytest.raises(TypeError, match="corpus loader .os:getcwd. returned str"):
        corpora.load("os:getcwd")


def test_a_missing_split_names_the_splits_there_are_and_what_to_set() -> None:
    corpus = one_split_corpus(4)
    assert len(corpus.require_split("dev")) == 4
    with pytest.raises(ValueError, match=r"corpus 'mine' has no 'test' questions; its splits are "
                                         r"train \(0\), dev \(4\), test \(0\): set split=dev$"):
        corpus.require_split("test")
    with pytest.raises(ValueError, match=r"has no 'train' questions.*: deal the questions anew "
                                         r"with corpus.resplit="):
        corpus.require_split("train", None)


def test_a_missing_sample_names_the_official_files_and_the_option(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORKSEARCH_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"hotpot_dev_distractor_v1\.json.*path=.*"
                                                r"corpus\.path=\.\.\..*FORKSEARCH_DATA_DIR"):
        corpora.load("hotpotqa")
    with pytest.raises(FileNotFoundError, match=r"musique_ans_v1\.0_dev\.jsonl"):
        corpora.load("musique")
    with pytest.raises(FileNotFoundError, match=r"nq-open-oracle\.jsonl\.gz"):
        corpora.load("nq_open")


LOADER = '''
from corpora import Corpus, Document, Question

def load(greeting: str = "hello") -> Corpus:
    docs = (Document("d1", "Greeting", greeting),)
    question = Question("q1", "What is said?", (greeting,), ("d1",), 1, "test")
    return Corpus("plugin", docs, (question,))
'''


@pytest.fixture()
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package installed in ``tmp_path`` that declares loaders in ``forksearch.corpora``."""
    (tmp_path / "greeting_corpus.py").write_text(LOADER)
    dist = tmp_path / "greeting_corpus-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: greeting-corpus\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[forksearch.corpora]\ngreeting = greeting_corpus:load\n"
        "synthetic = greeting_corpus:load\n")  # a plugin may not take a built-in name
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("greeting_corpus", None)


def test_an_installed_plugin_loader_is_found_by_name(installed_plugin: Path) -> None:
    assert "greeting" in corpora.available()
    corpus = corpora.load("greeting", greeting="hi")
    assert corpus.documents[0].text == "hi"
    assert corpora.load("synthetic", size="tiny").name == "synthetic-tiny-0"  # built-in wins
    with pytest.raises(TypeError, match="unknown option 'greting'.*Did you mean 'greeting'"):
        corpora.load("greeting", greting="hi")


def test_without_the_plugin_the_name_is_unknown() -> None:
    assert "greeting" not in CORPORA.names()
    with pytest.raises(ValueError, match="unknown corpus 'greeting'"):
        corpora.load("greeting")
