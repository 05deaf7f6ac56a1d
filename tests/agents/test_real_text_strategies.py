"""Strategy labels and scripted agents on real-style text: long natural questions, real samples.

The synthetic world's questions are short templates; real multi-hop questions (HotpotQA,
MuSiQue) are long, name things with accents, digits and disambiguated titles, and are answered
from long passages. The same strategy must get the same label on both.
"""

from __future__ import annotations

from collections import Counter

import pytest

import corpora
from agents.build import make_envs
from agents.diversity import strategy_entropy
from agents.registry import make_agent_policy
from agents.rollout import rollout
from agents.scripted.baselines import KeywordBaseline
from agents.scripted.demonstrators import DEMONSTRATORS
from agents.scripted.text import keyword_query, rarity_from_doc_freq
from agents.strategies import content_tokens, label_query
from agents.training.config import EnvConfig
from agents.trajectory import Trajectory
from corpora import Corpus, Document, Question, make_retriever
from envs.protocol import parse_action, render_prompt

LONG_QUESTION = (
    "Which Norwegian architect, who trained in Oslo and later designed the Halden Observatory "
    "that opened to visitors in 1931, was born in a small fishing town?"
)
BRIDGE_QUESTION = "In which town was the architect who designed the Halden Observatory born?"
OBSERVATORY = (
    "The Halden Observatory is an astronomical observatory on the coast of northern Norway. "
    "It was designed by the architect Mira Tollefsen and opened to visitors in 1931."
)


def _doc(title: str, text: str) -> Document:
    return Document(title.replace(" ", "_"), title, text)


@pytest.fixture(scope="module")
def small_world() -> Corpus:
    """A few invented encyclopedia paragraphs with a two-hop question and near-miss distractors."""
    docs = (
        _doc("Halden Observatory", OBSERVATORY),
        _doc(
            "Mira Tollefsen (architect)",
            "Mira Tollefsen (1889-1960) was a Norwegian architect known for public buildings in "
            "the north. She was born in Brekkevik, a fishing town, and trained in Oslo.",
        ),
        _doc(
            "Halden Fortress",
            "Halden Fortress is a fortress of the seventeenth century in the town of Halden.",
        ),
        _doc("Brekkevik", "Brekkevik is a small town on the Norwegian coast with an old harbour."),
        _doc("Tollef Mirasen", "Tollef Mirasen was a Norwegian painter born in Bergen in 1902."),
        _doc(
            "Northern Lights Observatory",
            "The Northern Lights Observatory was designed by a Danish architect in 1957.",
        ),
    )
    question = Question(
        "q-bridge",
        BRIDGE_QUESTION,
        ("Brekkevik",),
        ("Halden_Observatory", "Mira_Tollefsen_(architect)"),
        hops=2,
        split="test",
        qtype="bridge",
    )
    return Corpus("small-real-style", docs, (question,))


def _run(agent: str, world: Corpus) -> Trajectory:
    # One document per search, so the question alone cannot reach the second hop.
    batch = make_envs(world, make_retriever("bm25", world), EnvConfig(top_k=1), "test", 1)
    [trajectory] = rollout(make_agent_policy(agent, world), batch, ["q-bridge"])
    return trajectory


# --- keyword queries ------------------------------------------------------------------------


def test_keyword_baseline_keeps_a_few_specific_words_of_a_long_question() -> None:
    agent = KeywordBaseline()
    agent.reset(LONG_QUESTION, "q")
    query = parse_action(agent.act(render_prompt(LONG_QUESTION))).content
    words = query.split()
    assert 1 < len(words) <= 4
    assert set(content_tokens(query)) < set(content_tokens(LONG_QUESTION))
    assert label_query(query, LONG_QUESTION) == "keyword"


def test_keyword_query_is_the_rarest_terms_in_question_order() -> None:
    doc_freq = {"norwegian": 40, "architect": 9, "trained": 30, "oslo": 12, "later": 80,
                "designed": 25, "halden": 2, "observatory": 4, "opened": 60, "visitors": 20,
                "1931": 7, "born": 90, "small": 70, "fishing": 15, "town": 50}
    query = keyword_query(LONG_QUESTION, rarity_from_doc_freq(doc_freq))
    assert query == "architect Halden Observatory 1931"
    assert label_query(query, LONG_QUESTION) == "keyword"


def test_keyword_query_of_names_only_gets_a_relation_word() -> None:
    question = "Did Mira Tollefsen design the Halden Observatory?"
    query = keyword_query(question, rarity_from_doc_freq({"design": 5}))
    assert query == "Mira Tollefsen design"  # the rarest non-name word is added
    assert label_query(query, question) == "keyword"  # not an entity lookup


def test_keyword_demonstrator_aims_rare_words_at_the_named_document(small_world) -> None:
    t = _run("demo_keyword", small_world)
    [query] = t.queries
    assert t.strategy_labels == ["keyword"]
    assert len(query.split()) <= 4
    assert {"halden", "observatory"} <= set(content_tokens(query))
    assert not {"born", "town"} & set(content_tokens(query))  # common words, not in the target


# --- bridge queries -------------------------------------------------------------------------


def test_bridge_query_from_retrieved_text_is_labelled_bridge() -> None:
    assert label_query("Mira Tollefsen born", BRIDGE_QUESTION, [OBSERVATORY]) == "bridge"
    # The same query before anything names her names someone out of nowhere: an error label.
    assert label_query("Mira Tollefsen born", BRIDGE_QUESTION) == "wrong_entity"


def test_bridge_demonstrator_follows_a_disambiguated_title(small_world) -> None:
    t = _run("demo_bridge", small_world)
    assert t.queries[0] == BRIDGE_QUESTION
    assert t.queries[1].startswith("Mira Tollefsen ")  # "(architect)" is not in the text read
    assert t.strategy_labels == ["verbatim", "bridge"]
    assert t.em == 1.0


def test_decomposition_looks_up_entity_then_bridge(small_world) -> None:
    t = _run("demo_decomposition", small_world)
    assert t.queries == ["Halden Observatory", "Mira Tollefsen"]
    assert t.strategy_labels == ["entity", "bridge"]


def test_reformulation_brings_new_words_for_a_real_question(small_world) -> None:
    t = _run("demo_reformulation", small_world)
    [query] = t.queries
    assert query.startswith("Halden Observatory ")
    assert t.strategy_labels == ["novel"]


# --- acceptance on the shared samples -------------------------------------------------------

BENCH_AGENTS = [f"demo_{s}" for s in DEMONSTRATORS] + [
    "base_verbatim",
    "base_keyword",
    "base_entity_bridge",
    "base_random",
]


def _share(labels: list[str], label: str) -> float:
    return labels.count(label) / len(labels) if labels else 0.0


@pytest.mark.parametrize("name", ["hotpotqa", "musique"])
def test_strategies_mean_the_same_on_real_samples(name: str, require_sample) -> None:
    require_sample(name)
    corpus = corpora.load(name)
    qids = [q.qid for q in corpus.split("test")[:40]]
    batch = make_envs(corpus, make_retriever("bm25", corpus), EnvConfig(), "test", 40)
    runs = {a: rollout(make_agent_policy(a, corpus), batch, qids) for a in BENCH_AGENTS}
    labels = {a: [lab for t in ts for lab in t.strategy_labels] for a, ts in runs.items()}

    pooled = [lab for a in labels if a.startswith("demo_") for lab in labels[a]]
    assert strategy_entropy(pooled) >= 2.0, Counter(pooled)
    for agent in ("demo_keyword", "base_keyword"):
        assert _share(labels[agent], "keyword") > 0.5, (agent, Counter(labels[agent]))
    assert _share(labels["demo_reformulation"], "entity") < 0.5
    later = [lab for t in runs["demo_bridge"] for lab in t.strategy_labels[1:]]
    assert len(later) >= 5 and _share(later, "bridge") > 0.5, Counter(later)
