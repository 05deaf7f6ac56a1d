import numpy as np
import pytest

import corpora
from envs.batch import SearchEnvBatch
from envs.search_env import SearchEnv


class CountingRetriever:
    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def search(self, queries, k):
        self.calls.append(list(queries))
        return self.inner.search(queries, k)


@pytest.fixture(scope="module")
def tiny():
    return corpora.load("synthetic", size="tiny")


@pytest.fixture()
def batch(tiny):
    retriever = corpora.make_retriever("bm25", tiny)
    batch = SearchEnvBatch([SearchEnv(tiny, retriever=retriever) for _ in range(3)])
    batch.reset([q.qid for q in tiny.split("test")[:3]])
    return batch


def test_batch_retrieves_once_per_step_and_matches_single_envs(tiny):
    retriever = CountingRetriever(corpora.make_retriever("bm25", tiny))
    batch = SearchEnvBatch([SearchEnv(tiny, retriever=retriever) for _ in range(3)])
    qids = [q.qid for q in tiny.split("test")[:3]]
    batch.reset(qids)
    questions = [env.question for env in batch.envs]
    actions = {
        0: f"<search>{questions[0].question}</search>",
        1: "oops",
        2: f"<search>{questions[2].entities[0]}</search>",
    }
    results = batch.step(actions)
    assert retriever.calls == [[questions[0].question, questions[2].entities[0]]]
    single = SearchEnv(tiny, retriever=retriever.inner)
    for slot in (0, 2):
        single.reset(options={"qid": qids[slot]})
        assert single.step(actions[slot])[0] == results[slot][0]
    assert results[1][4]["invalid_action"]


@pytest.mark.parametrize("slot", [-1, -3, 3, 10])
def test_slots_outside_the_batch_are_refused(batch, slot):
    with pytest.raises(KeyError, match=rf"no slot {slot} in a batch of 3; slots are 0 to 2"):
        batch.step({0: "<search>x</search>", slot: "<search>x</search>"})
    assert [env.turn for env in batch.envs] == [0, 0, 0]  # nothing was stepped


@pytest.mark.parametrize("slot", ["0", 0.0, True, None])
def test_slots_that_are_not_ints_are_refused(batch, slot):
    with pytest.raises(TypeError, match=rf"expected an int slot, got {slot!r}.*slots are 0 to 2"):
        batch.step({slot: "<search>x</search>"})
    assert [env.turn for env in batch.envs] == [0, 0, 0]


def test_numpy_int_slots_and_bad_actions_are_accepted(batch):
    results = batch.step({np.int64(1): None, 2: "<answer>x</answer>"})  # type: ignore[dict-item]
    assert sorted(results) == [1, 2] and all(type(slot) is int for slot in results)
    assert results[1][4]["invalid_action"] and results[2][2]  # terminated
    assert [env.turn for env in batch.envs] == [0, 1, 1]


def test_long_turns_are_read_up_to_the_action_limit_in_batches(batch):
    limit = batch.envs[0].action_space.max_length
    results = batch.step({0: "<search>Velora</search>" + " " * limit, 1: " " * limit + "<search>"})
    assert results[0][4]["queries"] == ["Velora"] and results[0][4]["action_truncated"]
    assert results[1][4]["invalid_action"] and results[1][4]["action_truncated"]


def test_stepping_a_finished_slot_warns_and_does_not_search(tiny):
    retriever = CountingRetriever(corpora.make_retriever("bm25", tiny))
    batch = SearchEnvBatch([SearchEnv(tiny, retriever=retriever) for _ in range(2)])
    batch.reset()
    batch.step({0: "<answer>x</answer>"})
    with pytest.warns(UserWarning, match="after the episode ended"):
        results = batch.step({0: "<search>Velora</search>", 1: "<search>Velora</search>"})
    assert retriever.calls == [["Velora"]]  # slot 1 only
    assert results[0][1:4] == (0.0, True, False)


def test_batch_arguments_are_checked(batch):
    with pytest.raises(ValueError, match="at least one"):
        SearchEnvBatch([])
    with pytest.raises(TypeError, match="expected SearchEnv environments, got str"):
        SearchEnvBatch(["env"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="expected a dict of slot -> action, got list"):
        batch.step(["<search>x</search>"])  # type: ignore[arg-type]
