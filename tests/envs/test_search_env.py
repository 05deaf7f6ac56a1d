import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the environment)
from corpora import Corpus, Document, Question
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
        "action_truncated": False,
        "invalid_actions": 0,
        "queries": [],
        "retrieved_ids": [],
        "retrieved_documents": [],
    }
    obs, reward, terminated, truncated, info = env.step(
        "<think>look</think><search>Toraven Mekali</search>"
    )
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["retrieved_documents"] == [[env.corpus.by_id[d] for d in info["retrieved_ids"][0]]]
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


def test_stepping_an_answered_episode_warns_and_repeats_the_end(env):
    env.reset(options={"qid": "q1"})
    final = env.step("<answer>Velora</answer>")
    with pytest.warns(UserWarning, match="after the episode ended"):
        obs, reward, terminated, truncated, info = env.step("<search>Velora</search>")
    assert (obs, reward, terminated, truncated) == (final[0], 0.0, True, False)
    assert info["action_type"] == "ignored" and not info["invalid_action"]
    assert info["turn"] == 1 and info["queries"] == [] and info["score"] == 1.0
    # Control: a new episode counts again.
    env.reset(options={"qid": "q1"})
    assert env.step("<search>Velora</search>")[4]["turn"] == 1


def test_stepping_a_truncated_episode_counts_nothing():
    env = SearchEnv(tiny_corpus(), retriever="bm25", max_turns=2, format_penalty=0.25)
    env.reset(options={"qid": "q1"})
    env.step("nonsense")
    final = env.step("more nonsense")
    assert final[3] and final[1] == pytest.approx(-0.5)
    for _ in range(3):
        with pytest.warns(UserWarning, match=r"Call reset\(\)"):
            obs, reward, terminated, truncated, info = env.step("still nonsense")
        assert (obs, reward, terminated, truncated) == (final[0], 0.0, False, True)
        assert info["turn"] == 2 and info["invalid_actions"] == 2
    assert env.turn == 2


def test_step_after_end_leaves_the_transcript_alone():
    env = SearchEnv(tiny_corpus(), retriever="bm25", render_mode="ansi")
    env.reset(options={"qid": "q2"})
    env.step("<answer>Toraven Mekali</answer>")
    transcript = env.render()
    with pytest.warns(UserWarning):
        env.step("<answer>someone else</answer>")
    assert env.render() == transcript


def test_turns_longer_than_the_action_space_are_read_up_to_its_limit(env):
    limit = env.action_space.max_length
    env.reset(options={"qid": "q1"})
    padded = "<search>Velora</search>" + "x" * (2 * limit)
    _, _, _, _, info = env.step(padded)
    assert info["action_type"] == "search" and info["action_truncated"]
    assert info["queries"] == ["Velora"]
    # A tag that only closes past the limit does not count, and the feedback says why.
    late = "<think>" + "y" * limit + "</think><search>Velora</search>"
    obs, _, _, _, info = env.step(late)
    assert info["invalid_action"] and info["action_truncated"]
    assert f"in the first {limit:,} characters of a {len(late):,}-character turn" in obs
    # Control: the same turn within the limit is a search, not truncated.
    _, _, _, _, info = env.step("<think>y</think><search>Velora</search>")
    assert info["action_type"] == "search" and not info["action_truncated"]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"top_k": "3"}, TypeError, "expected top_k to be an int >= 1, got '3'"),
        ({"top_k": True}, TypeError, "expected top_k to be an int"),
        ({"max_turns": 2.5}, TypeError, "expected max_turns to be an int >= 1, got 2.5"),
        ({"max_turns": 0}, ValueError, "expected max_turns >= 1, got 0"),
        ({"format_penalty": "0.1"}, TypeError, "expected format_penalty to be a number"),
        ({"format_penalty": float("nan")}, ValueError, "finite format_penalty >= 0, got nan"),
        ({"format_penalty": -1}, ValueError, "format_penalty >= 0, got -1"),
        ({"reward": None}, ValueError, "unknown reward None"),
        ({"split": 0}, TypeError, "expected split to be a split name, got 0"),
        ({"corpus": 3}, TypeError, "expected corpus to be a corpus name or a Corpus, got 3"),
        ({"retriever": object()}, TypeError, "expected retriever to be a retriever name"),
        ({"corpus_options": [("size", "tiny")]}, TypeError, "expected corpus_options to be a dict"),
    ],
)
def test_constructor_arguments_are_checked_at_construction(arguments, error, message):
    kwargs = {"corpus": tiny_corpus(), "retriever": "bm25", **arguments}
    with pytest.raises(error, match=message):
        SearchEnv(**kwargs)


def test_reward_range_covers_the_worst_penalty():
    env = SearchEnv(tiny_corpus(), retriever="bm25", max_turns=3, format_penalty=0.5)
    assert env.reward_range == (-1.5, 1.0)
    env.reset(options={"qid": "q1"})
    rewards = [env.step("bad")[1] for _ in range(3)]
    assert rewards[-1] == env.reward_range[0]
