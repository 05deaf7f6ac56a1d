"""Property-based tests: whatever the agent writes, ``SearchEnv`` keeps its invariants."""

import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corpora
from envs.batch import SearchEnvBatch
from envs.invariants import ODD_CHARACTERS, TAGS, step_violations
from envs.protocol import parse_action
from envs.search_env import SearchEnv

MAX_TURNS = 4
CORPUS = corpora.load("synthetic", size="tiny")
RETRIEVER = corpora.make_retriever("bm25", CORPUS)
WORDS = sorted({w for d in CORPUS.documents[:20] for w in d.title.split()}) + ["born", "city"]
# No example database (nothing written to the checkout); a failure prints its reproduction blob.
SETTINGS = settings(
    deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def make_env() -> SearchEnv:
    return SearchEnv(CORPUS, "test", RETRIEVER, top_k=3, max_turns=MAX_TURNS, reward="f1",
                     format_penalty=0.1)


fragments = st.one_of(
    st.sampled_from(TAGS),
    st.sampled_from(ODD_CHARACTERS),
    st.sampled_from(WORDS),
    st.text(max_size=12),
    st.characters(codec=None, categories=["Cs", "Cc", "Cf", "Zl", "Zp", "Zs"]),
)
short_turns = st.lists(fragments, max_size=24).map("".join)
well_formed = st.builds(
    lambda before, kind, body, after: f"{before}<{kind}>{body}</{kind}>{after}",
    short_turns, st.sampled_from(["search", "answer", "think"]), short_turns, short_turns,
)
# Up to ~100 KB: a short turn repeated, optionally followed by a tag that closes late.
long_turns = st.builds(
    lambda piece, times, tail: (piece * times)[:100_000] + tail,
    st.one_of(short_turns, st.sampled_from(TAGS)).filter(bool),
    st.integers(1, 100_000), st.one_of(st.just(""), well_formed),
)
not_text = st.one_of(
    st.none(), st.integers(), st.binary(max_size=8), st.lists(st.text(), max_size=2)
)
turns = st.one_of(short_turns, well_formed, long_turns, not_text)


def run_episode(env: SearchEnv, actions: list, seed: int) -> tuple[int, tuple]:
    """Step ``actions`` until the episode ends, checking every step; (steps, last result)."""
    env.reset(seed=seed)
    for steps, action in enumerate(actions, 1):
        result = env.step(action)
        assert step_violations(env, action, result) == [], (action[:200], result[4])
        if result[2] or result[3]:
            return steps, result
    return len(actions), result


@settings(SETTINGS, max_examples=250)
@given(actions=st.lists(turns, min_size=1, max_size=MAX_TURNS + 2), seed=st.integers(0, 2**16))
def test_every_step_keeps_the_invariants(actions, seed):
    env = make_env()
    steps, result = run_episode(env, actions, seed)
    assert steps <= MAX_TURNS
    ended = result[2] or result[3]
    assert ended or steps < MAX_TURNS
    if ended:  # one more step: refused with a warning, the same end, nothing counted
        with pytest.warns(UserWarning, match="after the episode ended"):
            again = env.step(actions[0])
        assert again[0] == result[0] and again[1:4] == (0.0, result[2], result[3])
        assert again[4]["turn"] == result[4]["turn"] == env.turn


@settings(SETTINGS, max_examples=60)
@given(rounds=st.lists(st.lists(turns, min_size=3, max_size=3), min_size=1,
                       max_size=MAX_TURNS + 1))
def test_batch_steps_keep_the_invariants(rounds):
    batch = SearchEnvBatch([make_env() for _ in range(3)])
    batch.reset(seed=7)
    for actions in rounds:
        running = {i: a for i, a in enumerate(actions) if not batch.envs[i].done}
        if not running:
            break
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # only running slots are stepped: no warning
            results = batch.step(running)
        assert sorted(results) == sorted(running)
        for slot, result in results.items():
            assert step_violations(batch.envs[slot], running[slot], result) == []
    assert all(env.turn <= MAX_TURNS for env in batch.envs)


_LAZY_REGEX = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)


def reference_parse(text: str) -> tuple[str, str]:
    """Search-R1's rule as a lazy regex: quadratic, but the plain statement of the protocol."""
    match = _LAZY_REGEX.search(text)
    content = " ".join(match.group(2).split()) if match else ""
    return ("invalid" if not content else match.group(1), content)  # type: ignore[union-attr]


@settings(SETTINGS, max_examples=500)
@given(text=st.one_of(short_turns, well_formed))
def test_linear_parser_agrees_with_the_lazy_regex(text):
    action = parse_action(text)
    assert (action.kind, action.content) == reference_parse(text)
