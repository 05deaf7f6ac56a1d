import time

import pytest

from corpora import Document
from envs.protocol import parse_action, parse_information, render_information
from envs.rewards import exact_match, normalize_answer, token_f1


@pytest.mark.parametrize(
    ("text", "kind", "content"),
    [
        ("<search>Quandex Systems</search>", "search", "Quandex Systems"),
        ("<think>find it</think>\n<search>  a   b </search>", "search", "a b"),
        ("<answer>Velora</answer> trailing", "answer", "Velora"),
        ("<search>x</search><answer>y</answer>", "search", "x"),  # first complete tag wins
        ("<answer>y</answer><search>x</search>", "answer", "y"),
        ("<search>open but never closed", "invalid", ""),
        ("<search></search>", "invalid", ""),
        ("<answer>  </answer>", "invalid", ""),
        ("", "invalid", ""),
        ("<search>a</answer>", "invalid", ""),
        ("<answer>a<search>b</search>c</answer>", "answer", "a<search>b</search>c"),
        ("<search><search>x</search>", "search", "<search>x"),
        ("<search>a<answer>b</search></answer>", "search", "a<answer>b"),
        ("<search>unclosed <answer>y</answer>", "answer", "y"),
        ("<SEARCH>x</SEARCH>", "invalid", ""),
    ],
)
def test_parse_action(text, kind, content):
    action = parse_action(text)
    assert (action.kind, action.content) == (kind, content)
    if kind == "invalid":
        assert action.reason


@pytest.mark.parametrize(
    "text", ["<search>" * 12_500, "<answer><search>" * 6_250, "<search></answer>" * 6_000]
)
def test_parse_action_takes_linear_time_on_unclosed_tags(text):
    # A guard against quadratic parsing (10-15 s on the first input before), with a wide
    # margin; benchmarks/fuzz_env.py measures the speed.
    start = time.perf_counter()
    assert parse_action(text).kind == "invalid"
    assert time.perf_counter() - start < 1.0


def test_parse_action_never_raises_on_non_text():
    assert parse_action(None).kind == "invalid"  # type: ignore[arg-type]
    assert "expected text" in parse_action(42).reason  # type: ignore[arg-type]


def test_information_round_trip():
    docs = [Document("a", "Velora", "Velora is a city in Marundia."), Document("b", "X Y", "Z.")]
    block = render_information(docs)
    assert block == (
        "\n<information>Doc 1 (Title: Velora) Velora is a city in Marundia.\n"
        "Doc 2 (Title: X Y) Z.</information>\n"
    )
    assert parse_information(block) == [("Velora", "Velora is a city in Marundia."), ("X Y", "Z.")]


def test_squad_normalisation_and_scores():
    assert normalize_answer("The  Quandex-Systems, Inc.") == "quandexsystems inc"
    assert exact_match("the Velora", ["Velora"]) == 1.0
    assert exact_match("Velora City", ["Velora"]) == 0.0
    # pred tokens {velora, city}, gold {velora}: P = 1/2, R = 1 -> F1 = 2/3
    assert token_f1("Velora City", ["Velora"]) == pytest.approx(2 / 3)
    assert token_f1("nothing", ["Velora", "nothing here"]) == pytest.approx(2 / 3)
    assert token_f1("", ["Velora"]) == 0.0
