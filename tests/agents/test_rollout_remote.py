"""Rollouts over a remote retriever whose documents the local corpus does not hold."""

from agents.build import make_envs
from agents.registry import make_agent_policy
from agents.rollout import rollout
from agents.training.config import EnvConfig
from corpora import Corpus, Question
from corpora.retrieval import RemoteRetriever

QUESTIONS = (
    Question("q1", "In which city was Toraven Mekali born?", ("Zürich",), ("w1",), 1, "test"),
    Question("q2", "Who founded Quandex Systems?", ("Toraven Mekali",), ("w2",), 1, "test"),
)
SERVER = {
    "w1": '"Toraven Mekali"\nToraven Mekali is a poet born in Zürich in 1950.',
    "w2": '"Quandex Systems"\nQuandex Systems was founded by Toraven Mekali in 1984.',
}


def serve(handler, request):
    """The document that names the query's last word first."""
    result = []
    for query in request["queries"]:
        order = sorted(SERVER, key=lambda i: query.split()[-1].rstrip("?") not in SERVER[i])
        result.append([{"document": {"id": i, "contents": SERVER[i]}, "score": 1.0 / (r + 1)}
                       for r, i in enumerate(order[: request["topk"]])])
    return 200, {"result": result}


def test_scripted_rollout_over_a_remote_retriever(retrieval_server):
    corpus = Corpus("questions", (), QUESTIONS)  # no documents: the server has them
    retriever = RemoteRetriever(retrieval_server(serve), deadline=2.0)
    batch = make_envs(corpus, retriever, EnvConfig(top_k=2, max_turns=3, batch_size=3), "test")
    policy = make_agent_policy("base_verbatim", corpus)
    trajectories = rollout(policy, batch, ["q1", "q2"], samples=2)
    assert [(t.qid, t.sample) for t in trajectories] == [("q1", 0), ("q1", 1), ("q2", 0), ("q2", 1)]
    for t in trajectories:
        assert t.queries == [t.question]
        assert t.retrieved_ids and set(t.retrieved_ids[0]) == {"w1", "w2"}
        assert "<information>Doc 1 (Title: " in t.observations[0]
        assert t.strategy_labels  # labelled from the server's texts
    assert {t.qid: t.answer for t in trajectories} == {"q1": "Zürich", "q2": "Toraven Mekali"}
