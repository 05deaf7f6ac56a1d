"""SearchEnv over a remote retriever: the server's documents, no local copy of them needed."""

import json
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import corpora
import envs  # noqa: F401  (registers the environment)
from corpora import Corpus, Document, Hit, Question
from corpora.retrieval import RemoteRetriever
from envs.invariants import step_violations
from envs.protocol import parse_information, render_answer, render_search
from envs.search_env import MISSING_DOCUMENT_TEXT, SearchEnv

QUESTIONS = (
    Question("q1", "In which city was Toraven Mekali born?", ("Zürich",), ("w1",), 1, "test"),
    Question("q2", "Who founded Quandex Systems?", ("Toraven Mekali",), ("w2",), 1, "test"),
)
#: What the server holds; no local corpus below holds any of it. Characters beyond the
#: questions' (and ASCII) check that the observation space takes them.
SERVER_DOCS = [
    Document("w1", "Toraven Mekali",
             "Toraven Mekali is a poet born in Zürich (チューリッヒ) in 1950."),
    Document("w2", "Quandex Systems", "Quandex Systems was founded by Toraven Mekali."),
]


def serve(handler, request):
    """Both documents for every query, best first: the one that shares more words."""
    result = []
    for query in request["queries"]:
        words = set(query.lower().split())
        ranked = sorted(SERVER_DOCS, key=lambda d: -len(words & set(d.text.lower().split())))
        result.append([
            {"document": {"id": d.doc_id, "contents": f'"{d.title}"\n{d.text}'}, "score": 2.0 - i}
            for i, d in enumerate(ranked[: request["topk"]])
        ])
    return 200, {"result": result}


@pytest.fixture()
def remote(retrieval_server):
    return RemoteRetriever(retrieval_server(serve), deadline=2.0)


def questions_only() -> Corpus:
    return Corpus("questions", (), QUESTIONS)


@pytest.mark.parametrize(
    "documents",
    [(), (Document("p1", "Velora", "Velora is a city in Marundia."),)],
    ids=["questions only", "other documents"],
)
def test_search_shows_the_servers_documents(remote, documents):
    env = SearchEnv(Corpus("local", documents, QUESTIONS), "test", remote, top_k=2, max_turns=3)
    env.reset(options={"qid": "q1"})
    action = render_search("Toraven Mekali born")
    result = env.step(action)
    obs, reward, terminated, truncated, info = result
    assert parse_information(obs) == [(d.title, d.text) for d in SERVER_DOCS]
    assert info["retrieved_ids"] == [["w1", "w2"]]
    assert info["retrieved_documents"] == [SERVER_DOCS]
    assert step_violations(env, action, result) == []  # Zürich, チューリッヒ: in the space
    *_, terminated, _, info = env.step(render_answer("Zürich"))
    assert terminated and info["em"] == 1.0
    assert info["retrieved_documents"] == [SERVER_DOCS]


def test_an_id_nobody_holds_shows_a_placeholder_and_never_raises():
    class Ids:
        corpus = None

        def search(self, queries, k):
            return [[Hit("lost", 1.0), Hit("p1", 0.5)] for _ in queries]

    corpus = Corpus("local", (Document("p1", "Velora", "Velora is a city."),), QUESTIONS)
    env = SearchEnv(corpus, "test", Ids(), top_k=2)
    env.reset(options={"qid": "q1"})
    with pytest.warns(UserWarning, match="does not hold"):
        obs, *_, info = env.step(render_search("x"))
    assert parse_information(obs) == [
        ("lost", MISSING_DOCUMENT_TEXT), ("Velora", "Velora is a city.")]
    assert info["retrieved_ids"] == [["lost", "p1"]]


def test_questions_file_alone_with_retriever_remote(tmp_path, retrieval_server):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(
        json.dumps({"qid": q.qid, "question": q.question, "answers": list(q.answers),
                    "supporting_ids": list(q.supporting_ids)}) + "\n"
        for q in QUESTIONS
    ))
    corpus = corpora.load("jsonl", questions_path=path)
    assert corpus.documents == () and corpus.questions == QUESTIONS
    env = SearchEnv("jsonl", corpus_options={"questions_path": str(path)}, retriever="remote",
                    retriever_options={"url": retrieval_server(serve), "deadline": 2.0})
    env.reset(options={"qid": "q2"})
    obs, *_ = env.step(render_search("who founded Quandex Systems"))
    assert parse_information(obs)[0] == ("Quandex Systems", SERVER_DOCS[1].text)
    with pytest.raises(ValueError, match="has no documents.*retriever=remote"):
        SearchEnv(corpus, retriever="bm25")


def test_gymnasium_checks_pass_over_a_remote_retriever(remote):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make("forksearch/Search-v0", corpus=questions_only(), retriever=remote)
        env.reset(seed=0)
        obs, *_ = env.step(render_search("Zürich poet"))  # the first step: the checker looks
        assert "チューリッヒ" in obs
        check_env(env.unwrapped)
