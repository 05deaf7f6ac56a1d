import json
import os

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers the environment)
from envs import cache


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def write_jsonl(path, city: str, padding: str = "") -> None:
    records = [
        {"doc_id": "d1", "title": "Toraven Mekali", "text": f"Toraven Mekali was born in {city}."},
        {"doc_id": "d2", "title": city, "text": f"{city} is a city.{padding}"},
        {"qid": "q1", "question": "Where was Toraven Mekali born?", "answers": [city]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def make(**options):
    return gym.make("forksearch/Search-v0", corpus="jsonl", corpus_options=options).unwrapped


def test_a_rewritten_corpus_file_is_read_again(tmp_path):
    path = tmp_path / "corpus.jsonl"
    write_jsonl(path, "Velora")
    first = make(path=str(path))
    assert make(path=str(path)).corpus is first.corpus  # unchanged: shared
    write_jsonl(path, "Marundia City")
    second = make(path=str(path))
    assert second.question.answers == ("Marundia City",)
    second.reset(options={"qid": "q1"})
    obs = second.step("<search>Toraven Mekali</search>")[0]
    assert "born in Marundia City" in obs and "Velora" not in obs
    assert second.retriever is not first.retriever
    # Control: the first environment keeps the corpus it was built with.
    assert first.question.answers == ("Velora",)


def test_a_rewrite_of_the_same_size_is_read_again(tmp_path):
    path = tmp_path / "corpus.jsonl"
    write_jsonl(path, "Velora")
    before = make(path=path).corpus
    write_jsonl(path, "Marind")  # same length as "Velora"
    assert make(path=path).corpus.questions[0].answers == ("Marind",)
    assert before.questions[0].answers == ("Velora",)


def test_options_holding_dicts_are_keyed_and_watched(tmp_path):
    corpus_path, qa_path = tmp_path / "corpus.jsonl", tmp_path / "test.jsonl"
    corpus_path.write_text(json.dumps({"id": "1", "contents": '"Velora"\nVelora is a city.'}))
    qa_path.write_text(json.dumps({"question": "Which city?", "golden_answers": ["Velora"]}))
    options = {"corpus_path": str(corpus_path), "qa_paths": {"test": str(qa_path)}}
    env = gym.make("forksearch/Search-v0", corpus="flashrag", corpus_options=options).unwrapped
    assert env.question.question == "Which city?"
    qa_path.write_text(json.dumps({"question": "Which city, again?", "golden_answers": ["V"]}))
    env = gym.make("forksearch/Search-v0", corpus="flashrag", corpus_options=options).unwrapped
    assert env.question.question == "Which city, again?"


def test_retrievers_are_shared_by_equal_corpora(tmp_path):
    path = tmp_path / "corpus.jsonl"
    write_jsonl(path, "Velora")
    first = make(path=path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same contents, newer
    second = make(path=path)
    assert second.corpus is not first.corpus and second.retriever is first.retriever
