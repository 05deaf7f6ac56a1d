import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import corpora
import envs  # noqa: F401  (registers the environment)
from corpora import Corpus, Document, Question
from envs.batch import SearchEnvBatch
from envs.protocol import parse_information
from envs.search_env import SearchEnv


def tiny_corpus() -> Corpus:
    docs = (
        Document("p1", "Toraven Mekali", "Toraven Mekali is a poet born in Velora in 1950."),
        Document("c1", "Velora", "Velora is a city in Marundia."),
        Document("c2", "Quandex Systems", "Quandex Systems was founded by Toraven Mekali."),
    )
    questions = (
        Question("q1", "In which city was Toraven Mekali born?", ("Velora",), ("p1",), 1, "test"),
        Question("q2", "Who founded Quandex Systems?", ("Toraven Mekali",), ("c2",), 1, "test"),
    )
    return Corpus("tiny", docs, questions)


@pytest.fixture()
def env():
    return SearchEnv(tiny_corpus(), split="test", retriever="bm25", top_k=2, max_turns=3)


def test_check_env_passes_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("forksearch/Search-v0", corpus="synthetic", split="test").unwrapped)


def test_make_with_documented_arguments():
    env = gym.make(
        "forksearch/Search-v0",
        corpus="synthetic",
        split="test",
        retriever="bm25",
        top_k=3,
        max_turns=4,
    )
    obs, info = env.reset(seed=0)
    assert "Question:" in obs and info["qid"].startswith("syn-test-")
    assert env.unwrapped.top_k == 3 and env.unwrapped.max_turns == 4


def test_episode_step_by_step(env):
    obs, info = env.reset(options={"qid": "q1"})
    assert obs.endswith("Question: In which city was Toraven Mekali born?\n")
    assert info == {
        "qid": "q1",
        "question": "In which city was Toraven Mekali born?",
        "turn": 0,
        "action_type": "reset",
        "invalid_action": False,
        "invalid_actions": 0,
        "queries": [],
        "retrieved_ids": [],
    }
    obs, reward, terminated, truncated, info = env.step(
        "<think>look</think><search>Toraven Mekali</search>"
    )
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert parse_information(obs)[0] == (
        "Toraven Mekali",
        "Toraven Mekali is a poet born in Velora in 1950.",
    )
    assert info["queries"] == ["Toraven Mekali"] and info["retrieved_ids"][0][0] == "p1"
    assert len(info["retrieved_ids"][0]) == 2
    obs, reward, terminated, truncated, info = env.step("<answer>the velora</answer>")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["answer"] == "the velora" and info["em"] == 1.0 and info["score"] == 1.0
    assert info["gold_answers"] == ["Velora"]


def test_invalid_actions_are_data_not_errors(env):
    env.reset(options={"qid": "q2"})
    for bad in ["", "just text", "<search></search>", "\x00\x01", "<answer>"]:
        obs, reward, terminated, truncated, info = env.step(bad)
        assert info["invalid_action"] and info["action_type"] == "invalid"
        assert "Invalid action" in obs and reward == 0.0 and not terminated
        if truncated:
            break
    assert truncated and info["invalid_actions"] == 3 and info["answer"] is None


def test_random_actions_from_the_action_space_never_raise(env):
    env.reset(seed=1)
    env.action_space.seed(1)
    for _ in range(20):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert info["invalid_action"]
        if terminated or truncated:
            env.reset()


def test_truncation_at_turn_budget_and_format_penalty():
    env = SearchEnv(tiny_corpus(), retriever="bm25", max_turns=2, format_penalty=0.1)
    env.reset(options={"qid": "q1"})
    env.step("nonsense")
    _, reward, terminated, truncated, info = env.step("<search>Velora</search>")
    assert truncated and not terminated and reward == pytest.approx(-0.1)
    env.reset(options={"qid": "q1"})
    env.step("nonsense")
    _, reward, terminated, _, _ = env.step("<answer>Velora</answer>")
    assert terminated and reward == pytest.approx(0.9)


def test_f1_reward_and_seeded_question_draws():
    env = SearchEnv(tiny_corpus(), retriever="bm25", reward="f1")
    env.reset(options={"qid": "q2"})
    _, reward, *_ = env.step("<answer>Toraven</answer>")
    assert reward == pytest.approx(2 / 3)
    draws = [env.reset(seed=s)[1]["qid"] for s in range(10)]
    assert draws == [env.reset(seed=s)[1]["qid"] for s in range(10)]


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="unknown reward"):
        SearchEnv(tiny_corpus(), retriever="bm25", reward="bleu")
    with pytest.raises(ValueError, match="no questions in split 'dev'"):
        SearchEnv(tiny_corpus(), split="dev", retriever="bm25")
    with pytest.raises(ValueError, match="known retrievers"):
        SearchEnv(tiny_corpus(), retriever="bm52")
    with pytest.raises(KeyError, match="no question 'nope'"):
        SearchEnv(tiny_corpus(), retriever="bm25").reset(options={"qid": "nope"})


class CountingRetriever:
    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def search(self, queries, k):
        self.calls.append(list(queries))
        return self.inner.search(queries, k)


def test_batch_retrieves_once_per_step_and_matches_single_envs():
    corpus = corpora.load("synthetic", size="tiny")
    retriever = CountingRetriever(corpora.make_retriever("bm25", corpus))
    batch = SearchEnvBatch([SearchEnv(corpus, retriever=retriever) for _ in range(3)])
    qids = [q.qid for q in corpus.split("test")[:3]]
    batch.reset(qids)
    questions = [env.question for env in batch.envs]
    actions = {
        0: f"<search>{questions[0].question}</search>",
        1: "oops",
        2: f"<search>{questions[2].entities[0]}</search>",
    }
    results = batch.step(actions)
    assert retriever.calls == [[questions[0].question, questions[2].entities[0]]]
    single = SearchEnv(corpus, retriever=retriever.inner)
    for slot in (0, 2):
        single.reset(options={"qid": qids[slot]})
        assert single.step(actions[slot])[0] == results[slot][0]
    assert results[1][4]["invalid_action"]
