import dataclasses

import pytest

import corpora
from agents.build import make_envs
from agents.registry import available_agents
from agents.registry import make_agent_policy as make_policy
from agents.rollout import rollout
from agents.scripted.baselines import EntityBridgeBaseline, RandomBaseline
from agents.scripted.demonstrators import DEMONSTRATORS
from agents.scripted.text import (
    answer_kind,
    choice_options,
    extract_answer,
    keyword_budget,
    names_in,
    plain_title,
    reword,
)
from agents.training.config import EnvConfig
from corpora import make_retriever


@pytest.fixture(scope="module")
def world():
    return corpora.load("synthetic", size="small")


@pytest.fixture(scope="module")
def batch(world):
    return make_envs(world, make_retriever("bm25", world), EnvConfig(), "test", 16)


def first_of(world, qtype, template_word):
    return next(q for q in world.split("test") if q.qtype == qtype and template_word in q.question)


def test_names_kinds_and_options():
    q = "In which city was the founder of Quandex Systems born?"
    assert names_in(q) == ["Quandex Systems"]
    assert answer_kind(q) == "name" and answer_kind("In what year was X born?") == "year"
    assert answer_kind("Who founded Quandex Systems?") == "person"
    assert answer_kind("Who was born first, Ana Lu or Bo Ek?") == "choice"
    assert choice_options("Who was born first, Ana Lu or Bo Ek?") == ["Ana Lu", "Bo Ek"]


def test_names_titles_and_keyword_budget_on_real_text():
    assert names_in("Hugo Rodríguez Romero plays for Whose team?") == ["Hugo Rodríguez Romero"]
    assert plain_title("Lilu (mythology)") == "Lilu" and plain_title("Rush") == "Rush"
    # Fewer than 80% of the question's terms (80% is verbatim), at most four, at least one.
    assert [keyword_budget(n) for n in (1, 2, 3, 4, 5, 6, 12)] == [1, 1, 2, 3, 3, 4, 4]


def test_reword_finds_new_words_beyond_the_synthetic_templates():
    q = "Which film directed by Ana Lu starred the singer of Velora?"
    assert reword(["film", "directed", "starred", "singer"], q) == [
        "movie",
        "filmmaker",
        "cast",
        "vocalist",
    ]
    # Words already read in the episode are skipped for the next synonym.
    assert reword(["film"], q, avoid={"movie"}) == ["picture"]
    # No synonym known: the question's intent is reworded instead.
    assert reword(["astronaut"], "Who was the first astronaut of Velora?") == ["person"]
    assert reword([], "How many moons does Velora have?") == ["number"]
    assert reword([], "When did Velora join?") == ["date"]


def test_extract_answer_reads_the_sentence_that_matches_the_question():
    docs = [
        ("Dre Sebu", "Born in 1957 in Gunri, Dre Sebu works as a poet. She works for Kexgol Labs."),
        ("Dre Sebox", "Dre Sebox was born in 1931 in Velora."),
    ]
    assert extract_answer("Which company does Dre Sebu work for?", docs) == "Kexgol Labs"
    assert extract_answer("In what year was Dre Sebu born?", docs) == "1957"
    assert extract_answer("In which city was Dre Sebox born?", docs) == "Velora"
    years = [("Ana Lu", "Ana Lu was born in 1950."), ("Bo Ek", "Bo Ek was born in 1940.")]
    assert extract_answer("Who was born first, Ana Lu or Bo Ek?", years) == "Bo Ek"


def test_decomposition_follows_the_bridge_it_reads(world, batch):
    q = first_of(world, "bridge", "founder of")
    [t] = rollout(make_policy("demo_decomposition", world), batch, [q.qid])
    company, founder = (world.by_id[d].title for d in q.supporting_ids)
    assert t.queries == [company, founder]
    assert t.strategy_labels == ["entity", "bridge"]
    assert t.em == 1.0 and t.answer == q.answers[0]


def test_single_strategy_demonstrators_query_as_named(world, batch):
    q = first_of(world, "attribute", "In which city was")
    name = q.entities[0]
    expected = {
        "verbatim": ([q.question], ["verbatim"]),
        "entity": ([name], ["entity"]),
        "keyword": ([f"{name} born"], ["keyword"]),
        "reformulation": ([f"{name} town hometown"], ["novel"]),
    }
    for strategy, (queries, labels) in expected.items():
        [t] = rollout(make_policy(f"demo_{strategy}", world), batch, [q.qid])
        assert (t.queries, t.strategy_labels) == (queries, labels), strategy


def test_demonstrator_answers_unknown_without_evidence(world, batch):
    q = first_of(world, "bridge", "founder of")
    [t] = rollout(make_policy("demo_verbatim", world), batch, [q.qid])
    if set(q.supporting_ids) - {d for ids in t.retrieved_ids for d in ids}:
        assert t.answer == "unknown" and t.em == 0.0


def test_baselines_never_read_gold(world):
    """Swapping every gold answer and supporting id leaves baseline behaviour unchanged."""
    scrambled = dataclasses.replace(
        world,
        questions=tuple(
            dataclasses.replace(q, answers=("zzz",), supporting_ids=()) for q in world.questions
        ),
    )
    qids = [q.qid for q in world.split("test")[:40]]
    for name in ("base_verbatim", "base_keyword", "base_entity_bridge", "base_random"):
        runs = []
        for corpus in (world, scrambled):
            b = make_envs(corpus, make_retriever("bm25", corpus), EnvConfig(), "test", 8)
            runs.append(
                [(t.actions, t.answer) for t in rollout(make_policy(name, corpus), b, qids)]
            )
        assert runs[0] == runs[1], name
    # Structurally, too: baselines are built without the corpus.
    assert "corpus" not in EntityBridgeBaseline().__dict__


def test_random_baseline_is_reproducible_and_varies_across_samples(world, batch):
    qids = [q.qid for q in world.split("test")[:10]]
    a = rollout(make_policy("base_random", world, seed=1), batch, qids, samples=3)
    b = rollout(make_policy("base_random", world, seed=1), batch, qids, samples=3)
    assert [t.actions for t in a] == [t.actions for t in b]
    assert len({tuple(t.actions) for t in a}) > 10
    assert RandomBaseline(seed=2).seed == 2


def test_unknown_agent_lists_choices(world):
    with pytest.raises(ValueError, match="known agents: .*base_verbatim") as err:
        make_policy("base_verbatin", world)
    assert "Did you mean 'base_verbatim'" in str(err.value)
    assert len(available_agents()) == len(DEMONSTRATORS) + 4
