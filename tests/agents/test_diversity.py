from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from agents.diversity import (
    distinct_n,
    dominant_strategy,
    entropy_bits,
    mean_pairwise_distance,
    mean_pass_at_k,
    pass_at_k,
    searches_entropy,
    sequence_entropy,
    strategy_distribution,
    strategy_entropy,
    token_entropy_stats,
    unique_query_ratio,
    vendi_score,
)
from agents.strategies import STRATEGY_LABELS

# H(3/4, 1/4) = 0.75 * log2(4/3) + 0.25 * log2(4)
H_3_1 = 0.75 * math.log2(4 / 3) + 0.5


# --- entropies of labels -------------------------------------------------------------------


def test_entropy_bits_hand_worked() -> None:
    assert entropy_bits(["a", "a", "b", "b"]) == pytest.approx(1.0)
    assert entropy_bits(["a", "b", "c", "d"]) == pytest.approx(2.0)
    assert entropy_bits(["a", "a", "a", "b"]) == pytest.approx(0.8112781244591328)
    assert entropy_bits(["a", "a", "a", "b"]) == pytest.approx(H_3_1)


def test_entropy_bits_degenerate() -> None:
    assert entropy_bits([]) == 0.0
    assert entropy_bits(["a", "a", "a"]) == 0.0


def test_entropy_bits_accepts_generators_and_tuples() -> None:
    assert entropy_bits(x for x in [(1, 2), (1, 2), (2, 1), (2, 1)]) == pytest.approx(1.0)


def test_strategy_entropy() -> None:
    assert strategy_entropy(["entity", "bridge", "entity", "bridge"]) == pytest.approx(1.0)
    assert strategy_entropy(["entity", "bridge", "novel", "keyword"]) == pytest.approx(2.0)
    assert strategy_entropy([]) == 0.0


def test_sequence_entropy_counts_whole_ordered_sequences() -> None:
    seqs = [("entity", "bridge"), ("bridge", "entity"), ("entity", "bridge"), ["entity", "bridge"]]
    # Outcomes: (entity, bridge) x3, (bridge, entity) x1 -> H(3/4, 1/4); lists equal tuples.
    assert sequence_entropy(seqs) == pytest.approx(H_3_1)
    # Per-query labels of the same episodes are perfectly balanced (1 bit): not the same thing.
    assert strategy_entropy(label for seq in seqs for label in seq) == pytest.approx(1.0)


def test_sequence_entropy_degenerate() -> None:
    assert sequence_entropy([["entity", "bridge"], ("entity", "bridge")]) == 0.0
    assert sequence_entropy([]) == 0.0


def test_strategy_distribution() -> None:
    dist = strategy_distribution(["entity", "entity", "bridge", "novel"])
    assert list(dist) == list(STRATEGY_LABELS)
    assert dist == pytest.approx(
        {"verbatim": 0.0, "entity": 0.5, "keyword": 0.0, "bridge": 0.25, "novel": 0.25, "repeat": 0}
    )
    assert sum(dist.values()) == pytest.approx(1.0)


def test_strategy_distribution_empty() -> None:
    assert strategy_distribution([]) == {label: 0.0 for label in STRATEGY_LABELS}


def test_strategy_distribution_rejects_unknown_labels() -> None:
    with pytest.raises(ValueError, match="unknown strategy labels"):
        strategy_distribution(["entity", "decompose"])


def test_dominant_strategy() -> None:
    assert dominant_strategy(["bridge", "entity", "bridge"]) == "bridge"
    assert dominant_strategy(["repeat"]) == "repeat"
    assert dominant_strategy([]) is None


def test_dominant_strategy_ties_follow_label_order() -> None:
    assert dominant_strategy(["bridge", "entity"]) == "entity"
    assert dominant_strategy(["repeat", "novel", "novel", "repeat"]) == "novel"


# --- query-level metrics -------------------------------------------------------------------


QUERIES = ["Quandex Systems headquarters", "quandex  systems founder"]


def test_distinct_1() -> None:
    # Tokens: quandex systems headquarters | quandex systems founder -> 4 distinct / 6.
    assert distinct_n(QUERIES, 1) == pytest.approx(4 / 6)


def test_distinct_2_does_not_cross_query_boundaries() -> None:
    # Bigrams: (quandex systems) (systems headquarters) (quandex systems) (systems founder):
    # 3 distinct / 4. Joining the queries would add (headquarters quandex) and give 4 / 5.
    assert distinct_n(QUERIES, 2) == pytest.approx(3 / 4)


def test_distinct_3_and_no_ngrams() -> None:
    assert distinct_n(QUERIES, 3) == pytest.approx(1.0)
    assert distinct_n(QUERIES, 4) == 0.0
    assert distinct_n(["Velora", "Morland"], 2) == 0.0
    assert distinct_n([], 1) == 0.0


def test_distinct_n_rejects_bad_n() -> None:
    with pytest.raises(ValueError, match="n must be >= 1"):
        distinct_n(QUERIES, 0)


def test_unique_query_ratio() -> None:
    groups = [
        ["Quandex Systems", " quandex   systems ", "Velora"],  # 2 distinct / 3
        ["Velora", "Velora?"],  # punctuation is kept: 2 distinct / 2
        [],  # skipped
    ]
    assert unique_query_ratio(groups) == pytest.approx((2 / 3 + 1.0) / 2)


def test_unique_query_ratio_all_same() -> None:
    assert unique_query_ratio([["a b", "A B", "a  b"]]) == pytest.approx(1 / 3)


def test_unique_query_ratio_empty() -> None:
    assert unique_query_ratio([]) == 0.0
    assert unique_query_ratio([[], []]) == 0.0


def test_vendi_score_orthogonal_and_identical() -> None:
    assert vendi_score(np.eye(3)) == pytest.approx(3.0)
    assert vendi_score(np.ones((4, 2))) == pytest.approx(1.0)
    # Cosine similarity ignores the scale of a row.
    assert vendi_score(np.array([[1.0, 0.0], [2.0, 0.0]])) == pytest.approx(1.0)


def test_vendi_score_hand_worked() -> None:
    # Rows e1, e1, e2: eigenvalues of K/3 are 2/3, 1/3, 0 -> exp(H) = 3 * 2 ** (-2/3).
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert vendi_score(x) == pytest.approx(3 * 2 ** (-2 / 3))
    # Two rows at 60 degrees: K/2 = [[1/2, 1/4], [1/4, 1/2]], eigenvalues 3/4, 1/4
    # -> exp(H) = (4/3) ** (3/4) * 4 ** (1/4) = 4 / 3 ** (3/4).
    y = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    assert vendi_score(y) == pytest.approx(4 / 3**0.75)


def test_vendi_score_edge_cases() -> None:
    assert vendi_score(np.zeros((0, 4))) == 0.0
    assert vendi_score([[0.3, 0.4]]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="all-zero row"):
        vendi_score(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="2-D"):
        vendi_score(np.ones(3))


def test_mean_pairwise_distance() -> None:
    # Pairs: (e1, e2) 1, (e1, e1) 0, (e2, e1) 1 -> 2/3; scaling rows changes nothing.
    assert mean_pairwise_distance(np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]])) == (
        pytest.approx(2 / 3)
    )
    assert mean_pairwise_distance(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(2.0)
    assert mean_pairwise_distance(np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])) == (
        pytest.approx(0.5)
    )


def test_mean_pairwise_distance_edge_cases() -> None:
    assert mean_pairwise_distance(np.ones((1, 3))) == 0.0
    assert mean_pairwise_distance(np.zeros((0, 3))) == 0.0
    assert mean_pairwise_distance(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="all-zero row"):
        mean_pairwise_distance(np.zeros((2, 3)))


# --- episode-level metrics -----------------------------------------------------------------


def test_searches_entropy() -> None:
    assert searches_entropy([1, 1, 2, 2]) == pytest.approx(1.0)
    assert searches_entropy([1, 2, 3, 4]) == pytest.approx(2.0)
    assert searches_entropy([3, 3, 3]) == 0.0
    assert searches_entropy(np.array([2, 2, 2, 5])) == pytest.approx(H_3_1)
    assert searches_entropy([]) == 0.0


def test_pass_at_k_hand_worked() -> None:
    # 1 - C(3, 2) / C(5, 2) = 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # 1 - C(7, 5) / C(10, 5) = 1 - 21/252
    assert pass_at_k(10, 3, 5) == pytest.approx(11 / 12)


@pytest.mark.parametrize(("n", "c"), [(1, 0), (1, 1), (4, 1), (5, 2), (8, 3), (10, 10)])
def test_pass_at_1_is_c_over_n(n: int, c: int) -> None:
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)


def test_pass_at_k_edges() -> None:
    assert pass_at_k(4, 3, 2) == 1.0  # n - c = 1 < k: every draw of 2 holds a correct one
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 5, 5) == 1.0
    assert pass_at_k(5, 1, 5) == 1.0


@pytest.mark.parametrize(
    ("n", "c", "k"), [(n, c, k) for n in (1, 6, 9) for c in range(n + 1) for k in range(1, n + 1)]
)
def test_pass_at_k_matches_binomial_form(n: int, c: int, k: int) -> None:
    expected = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(expected), abs=1e-12)


def test_pass_at_k_large_n_is_stable() -> None:
    # C(2000, 1000) overflows a float; the product form does not.
    expected = 1 - Fraction(math.comb(1000, 1000), math.comb(2000, 1000))
    assert pass_at_k(2000, 1000, 1000) == pytest.approx(float(expected))
    expected = 1 - Fraction(math.comb(1900, 500), math.comb(2000, 500))
    assert pass_at_k(2000, 100, 500) == pytest.approx(float(expected), rel=1e-9)


@pytest.mark.parametrize(
    ("n", "c", "k", "match"),
    [
        (3, 1, 4, "k <= n"),
        (3, 4, 1, "c <= n"),
        (-1, 0, 1, "non-negative"),
        (3, -1, 1, "non-negative"),
        (3, 1, -1, "non-negative"),
        (3, 1, 0, "k >= 1"),
    ],
)
def test_pass_at_k_rejects_bad_arguments(n: int, c: int, k: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pass_at_k(n, c, k)


def test_mean_pass_at_k() -> None:
    correct = [[True, False], [False, False], [True, True]]
    assert mean_pass_at_k(correct, 1) == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    # k = 2: first question has n - c = 1 < 2 -> 1.0.
    assert mean_pass_at_k(correct, 2) == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert mean_pass_at_k([[True, False, False, True, False]], 2) == pytest.approx(0.7)


def test_mean_pass_at_k_empty_and_too_few_samples() -> None:
    assert math.isnan(mean_pass_at_k([], 1))
    with pytest.raises(ValueError, match="k <= n"):
        mean_pass_at_k([[True, True], [True]], 2)


# --- token entropy -------------------------------------------------------------------------

ENTROPIES = np.array([[0.1, 0.9, 2.0, 5.0], [0.5, 1.0, 0.0, 0.0]])
AGENT = np.array([[False, True, True, True], [True, True, False, False]])
# Position (0, 0) is outside the agent mask and must be ignored.
QUERY = np.array([[True, True, True, False], [False, False, False, False]])
ANSWER = np.array([[False, False, False, True], [False, True, False, False]])


def test_token_entropy_stats_hand_worked() -> None:
    stats = token_entropy_stats(ENTROPIES, AGENT, QUERY, ANSWER)
    assert set(stats) == {"entropy_all", "entropy_query", "entropy_answer", "forking_share"}
    # Agent tokens: 0.9, 2.0, 5.0, 0.5, 1.0.
    assert stats["entropy_all"] == pytest.approx(9.4 / 5)
    assert stats["entropy_query"] == pytest.approx((0.9 + 2.0) / 2)
    assert stats["entropy_answer"] == pytest.approx((5.0 + 1.0) / 2)
    # > 0.672: 0.9, 2.0, 5.0, 1.0 -> 4 of 5.
    assert stats["forking_share"] == pytest.approx(4 / 5)


def test_token_entropy_stats_threshold_is_strict() -> None:
    stats = token_entropy_stats(ENTROPIES, AGENT, QUERY, ANSWER, forking_threshold=1.0)
    assert stats["forking_share"] == pytest.approx(2 / 5)  # 2.0 and 5.0; 1.0 is not above


def test_token_entropy_stats_empty_selections_are_nan() -> None:
    none = np.zeros_like(AGENT)
    stats = token_entropy_stats(ENTROPIES, AGENT, QUERY, none)
    assert math.isnan(stats["entropy_answer"])
    assert stats["entropy_query"] == pytest.approx(1.45)
    empty = token_entropy_stats(ENTROPIES, none, QUERY, ANSWER)
    assert all(math.isnan(value) for value in empty.values())


def test_token_entropy_stats_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="query_mask"):
        token_entropy_stats(ENTROPIES, AGENT, QUERY[:, :3], ANSWER)


def test_wrong_entity_queries_are_errors_not_strategies() -> None:
    from agents.diversity import error_rate

    labels = ["entity", "bridge", "wrong_entity", "wrong_entity"]
    assert strategy_entropy(labels) == pytest.approx(1.0)  # entity and bridge only
    dist = strategy_distribution(labels)
    assert dist["entity"] == dist["bridge"] == 0.5 and "wrong_entity" not in dist
    assert error_rate(labels) == 0.5 and error_rate([]) == 0.0
    with pytest.raises(ValueError, match="unknown strategy labels"):
        strategy_distribution(["garbled"])


def test_success_diversity_and_the_pass_at_k_curve() -> None:
    from agents.diversity import strategies_per_question
    from agents.evaluation import summarize
    from agents.trajectory import Trajectory

    def episode(qid: str, sample: int, labels: list[str], em: float) -> Trajectory:
        return Trajectory(qid=qid, question="?", agent="a", sample=sample, em=em, reward=em,
                          queries=[f"{qid} {sample} {i}" for i in range(len(labels))],
                          strategy_labels=labels)

    episodes = [
        episode("q1", 0, ["entity"], 1.0), episode("q1", 1, ["keyword"], 1.0),
        episode("q1", 2, ["entity", "wrong_entity"], 1.0), episode("q1", 3, ["verbatim"], 0.0),
        episode("q2", 0, ["verbatim"], 0.0), episode("q2", 1, ["verbatim"], 0.0),
        episode("q2", 2, ["bridge"], 1.0), episode("q2", 3, ["verbatim"], 0.0),
    ]
    row = summarize(episodes, k=4)
    div = row["diversity"]
    # Successes use entity, keyword, entity, bridge: H(1/2, 1/4, 1/4) = 1.5 bits.
    assert div["success_strategy_entropy"] == pytest.approx(1.5)
    # q1 is solved by ("entity",) twice (the error label left out) and ("keyword",): 2; q2: 1.
    assert div["strategies_per_solved_question"] == pytest.approx(1.5)
    assert strategies_per_question([]) != strategies_per_question([])  # NaN: nothing solved
    assert div["wrong_entity_rate"] == pytest.approx(1 / 9)
    assert row["strategy_by_type"]["unknown"]["verbatim"] == pytest.approx(4 / 8)
    curve = row["pass_at_k_curve"]
    assert list(curve) == ["1", "2", "3", "4"]
    assert curve["1"] == pytest.approx(row["pass_at_1"]) and curve["4"] == row["pass_at_k"] == 1.0
    # Unbiased estimator: q1 has 3 of 4 correct, q2 1 of 4; pass@2 = mean(1, 1 - C(3,2)/C(4,2)).
    assert curve["2"] == pytest.approx((1.0 + 0.5) / 2)
    assert all(curve[str(k)] <= curve[str(k + 1)] for k in range(1, 4))
