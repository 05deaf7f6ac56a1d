from __future__ import annotations

import pytest

from agents.strategies import (
    STRATEGY_LABELS,
    content_tokens,
    label_episode,
    label_query,
    name_tokens,
)

QUESTION = "In which country is the headquarters of Quandex Systems?"
RETRIEVED = "Quandex Systems is headquartered in Velora."
# Five content tokens: year, quandex, systems, founder, leave.
FIVE_TOKEN_QUESTION = "Which year did the Quandex Systems founder leave?"


def test_strategy_labels() -> None:
    assert STRATEGY_LABELS == ("verbatim", "entity", "keyword", "bridge", "novel", "repeat")


# --- content_tokens ------------------------------------------------------------------------


def test_content_tokens_of_question() -> None:
    assert content_tokens(QUESTION) == ["country", "headquarters", "quandex", "systems"]


def test_content_tokens_split_possessive_and_drop_s() -> None:
    assert content_tokens("Mekali's firm") == ["mekali", "firm"]


def test_content_tokens_keep_digits_order_and_duplicates() -> None:
    assert content_tokens("Velora, velora (founded 1990)") == [
        "velora",
        "velora",
        "founded",
        "1990",
    ]


def test_content_tokens_fold_accents_and_keep_words_whole() -> None:
    # Accented words are one token, spelt as a search engine folds them.
    assert content_tokens("Hugo Rodríguez, Långa nätter") == [
        "hugo",
        "rodriguez",
        "langa",
        "natter",
    ]
    assert content_tokens("Rodriguez") == content_tokens("RODRÍGUEZ")


def test_content_tokens_drop_pronouns_modals_and_clitics() -> None:
    assert content_tokens("Would he say that she won all of them?") == ["say", "won"]


def test_content_tokens_stopwords_only() -> None:
    assert content_tokens("Who was the one? What did it do, and where, when, how, why?") == ["one"]
    assert content_tokens("which of the") == []
    assert content_tokens("") == []


# --- name_tokens ---------------------------------------------------------------------------


def test_name_tokens_of_question() -> None:
    assert name_tokens(QUESTION) == {"quandex", "systems"}


def test_name_tokens_first_word_only_when_it_is_a_name() -> None:
    # Sentence-initial capitals are not names...
    assert name_tokens("Which year was Velora founded?") == {"velora"}
    assert name_tokens("If Gallu is a demon, Lilu is what?") == {"gallu", "lilu"}
    assert name_tokens("During which war was Velora founded?") == {"velora"}
    assert name_tokens("Name the founder of Velora.") == {"velora"}
    # ...but a question may start with its subject, or with a longer name (real questions do).
    assert name_tokens("Quandex Systems was founded in which year?") == {"quandex", "systems"}
    assert name_tokens("Valuair was acquired by which airline?") == {"valuair"}
    assert name_tokens("Hugo Rodríguez Romero plays for which team?") == {
        "hugo",
        "rodriguez",
        "romero",
    }


def test_name_tokens_possessive_and_lowercase_words() -> None:
    assert name_tokens("Who founded Mekali's firm in 1990?") == {"mekali"}


def test_name_tokens_keep_numbers_only_inside_names() -> None:
    assert name_tokens("What did Orvin win in 1987?") == {"orvin"}
    assert name_tokens("Who won in 1990 in Orvin?") == {"orvin"}
    # A number in or next to a capitalised word is part of a name.
    assert name_tokens("What did Zeta-1987 win in Orvin?") == {"zeta", "1987", "orvin"}
    assert name_tokens("Where were the 2017 Brit Awards held?") == {"2017", "brit", "awards"}
    assert name_tokens("Which series did Channel 8 air?") == {"channel", "8"}


def test_name_tokens_drop_capitalised_stopwords() -> None:
    assert name_tokens("Who founded The Quandex Group?") == {"quandex", "group"}


# --- label_query ---------------------------------------------------------------------------


def test_verbatim_question() -> None:
    assert label_query(QUESTION, QUESTION) == "verbatim"


def test_verbatim_ignores_order_and_stopwords() -> None:
    assert label_query("headquarters country Quandex Systems", QUESTION) == "verbatim"


def test_verbatim_threshold_is_inclusive_at_0_8() -> None:
    # 4 of 5 question tokens: ratio 0.8 -> verbatim.
    assert label_query("Quandex Systems founder leave", FIVE_TOKEN_QUESTION) == "verbatim"
    # 3 of 5: ratio 0.6, "founder" is not a name -> keyword.
    assert label_query("Quandex Systems founder", FIVE_TOKEN_QUESTION) == "keyword"


def test_entity() -> None:
    assert label_query("Quandex Systems", QUESTION) == "entity"
    assert label_query("systems", QUESTION) == "entity"


def test_keyword() -> None:
    # 3 of 4 question tokens (0.75 < 0.8) and "headquarters" is not a name.
    assert label_query("Quandex Systems headquarters", QUESTION) == "keyword"
    assert label_query("country", QUESTION) == "keyword"


def test_bridge_uses_retrieved_text() -> None:
    assert label_query("Velora", QUESTION, retrieved_texts=[RETRIEVED]) == "bridge"


def test_bridge_needs_retrieved_text() -> None:
    assert label_query("Velora", QUESTION) == "novel"
    assert label_query("Velora", QUESTION, retrieved_texts=["Orvin is a city."]) == "novel"


def test_bridge_needs_at_least_half_of_new_tokens() -> None:
    # new = {velora, office}: 1 of 2 in R -> bridge; question tokens do not count as new.
    assert label_query("Velora office country", QUESTION, [RETRIEVED]) == "bridge"
    # new = {velora, office, city}: 1 of 3 in R -> novel.
    assert label_query("Velora office city", QUESTION, [RETRIEVED]) == "novel"


def test_bridge_pools_all_retrieved_texts() -> None:
    texts = [RETRIEVED, "Velora lies in Morland."]
    assert label_query("Morland office", QUESTION, texts) == "bridge"
    assert label_query("Morland office", QUESTION, texts[:1]) == "novel"


def test_novel() -> None:
    assert label_query("corporate base of the firm", QUESTION) == "novel"
    assert label_query("corporate base of the firm", QUESTION, [RETRIEVED]) == "novel"


def test_empty_or_stopword_only_query_is_novel() -> None:
    assert label_query("", QUESTION) == "novel"
    assert label_query("which of the", QUESTION) == "novel"


def test_repeat() -> None:
    assert label_query("Quandex Systems", QUESTION, previous_queries=["Quandex Systems"]) == (
        "repeat"
    )


def test_repeat_compares_normalised_queries() -> None:
    assert label_query("the Quandex  systems?", QUESTION, previous_queries=["Quandex Systems"]) == (
        "repeat"
    )
    # Token order matters for the normalised form.
    assert label_query("Systems Quandex", QUESTION, previous_queries=["Quandex Systems"]) == (
        "entity"
    )


def test_repeat_takes_precedence_over_other_rules() -> None:
    assert label_query(QUESTION, QUESTION, previous_queries=["Velora", QUESTION]) == "repeat"
    assert label_query("Velora", QUESTION, [RETRIEVED], ["Velora"]) == "repeat"


def test_second_stopword_only_query_is_a_repeat() -> None:
    assert label_query("which of the", QUESTION, previous_queries=["the"]) == "repeat"


# --- label_episode -------------------------------------------------------------------------


def test_label_episode() -> None:
    queries = ["Quandex Systems", "Velora", "Velora country", "Velora", "Morland"]
    retrieved = [
        [RETRIEVED],
        ["Velora is a city in Morland."],
        ["Morland is a country."],
        [],
        ["unused"],
    ]
    assert label_episode(QUESTION, queries, retrieved) == [
        "entity",
        "bridge",
        "bridge",
        "repeat",
        "bridge",
    ]


def test_label_episode_query_does_not_see_its_own_results() -> None:
    assert label_episode(QUESTION, ["Velora"], [[RETRIEVED]]) == ["novel"]
    assert label_episode(QUESTION, ["Velora", "Morland"], [[], ["Morland"]]) == ["novel", "novel"]


def test_label_episode_matches_label_query() -> None:
    queries = [QUESTION, "Quandex Systems", "Velora", "firm base"]
    retrieved = [["Quandex is big."], [RETRIEVED], ["Velora lies in Morland."]]
    expected = [
        label_query(q, QUESTION, [t for texts in retrieved[:i] for t in texts], queries[:i])
        for i, q in enumerate(queries)
    ]
    assert label_episode(QUESTION, queries, retrieved) == expected
    assert expected == ["verbatim", "entity", "bridge", "novel"]


def test_label_episode_last_results_optional() -> None:
    assert label_episode(QUESTION, ["Quandex Systems", "Velora"], [[RETRIEVED]]) == [
        "entity",
        "bridge",
    ]
    assert label_episode(QUESTION, [], []) == []


@pytest.mark.parametrize("n_results", [0, 3])
def test_label_episode_rejects_misaligned_results(n_results: int) -> None:
    with pytest.raises(ValueError, match="retrieved_texts_per_search"):
        label_episode(QUESTION, ["a", "b"], [[]] * n_results)


@pytest.mark.parametrize(
    ("query", "retrieved", "expected"),
    [
        ("Zorvak Quell founder", [], "wrong_entity"),  # a name from nowhere
        ("Zorvak Quell founder", ["Zorvak Quell founded the Ostra guild."], "bridge"),
        ("founder hometown", [], "novel"),  # new words, but no name
        ("Ostra Zorvak", ["Ostra and its people"], "wrong_entity"),  # one name still from nowhere
    ],
)
def test_a_query_naming_what_nobody_mentioned_is_a_wrong_entity(query, retrieved, expected):
    question = "Who founded the guild of Ostra?"
    assert label_query(query, question, retrieved) == expected
