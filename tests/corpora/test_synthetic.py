from collections import Counter

import pytest

import corpora
from corpora.synthetic import SIZES, load_synthetic
from corpora.synthetic.names import NameBook, near_duplicate


@pytest.fixture(scope="module")
def world():
    return load_synthetic()


def test_same_seed_same_world_and_other_seed_differs():
    a, b = load_synthetic("tiny", seed=3), load_synthetic("tiny", seed=3)
    assert a.documents == b.documents and a.questions == b.questions
    assert a.fingerprint == b.fingerprint
    c = load_synthetic("tiny", seed=4)
    assert c.documents != a.documents and c.fingerprint != a.fingerprint


def test_registered_as_default_name():
    assert "synthetic" in corpora.available()
    assert corpora.load("synthetic", size="tiny").documents == load_synthetic("tiny").documents


def test_split_sizes_and_type_balance(world):
    _, _, _, _, n_train, n_dev, n_test = SIZES["default"]
    test = world.split("test")
    assert len(test) == n_test and len(world.split("dev")) == n_dev
    assert 0 < len(world.split("train")) <= n_train
    assert Counter(q.qtype for q in test) == {"attribute": 100, "bridge": 100, "comparison": 100}


def _asked_and_texts(corpus):
    asked = {s: set() for s in ("train", "dev", "test")}
    texts = {s: set() for s in asked}
    for q in corpus.questions:
        # The entities a question names (not the bridge entity found by retrieval).
        named = [e for e in q.entities if e in q.question]
        asked[q.split].update(named[:2] if q.qtype == "comparison" else named[:1])
        texts[q.split].add(q.question)
    return asked, texts


def test_splits_share_no_question_and_no_asked_about_entity(world):
    asked, texts = _asked_and_texts(world)
    assert not asked["train"] & asked["test"] and not asked["dev"] & asked["test"]
    assert not texts["train"] & texts["test"]
    assert len({q.qid for q in world.questions}) == len(world.questions)


def test_question_holdout_shares_entities_but_no_question():
    corpus = load_synthetic(holdout="question")
    asked, texts = _asked_and_texts(corpus)
    # Most dev entities are asked about in training too, in other questions.
    assert len(asked["dev"] & asked["train"]) > 0.5 * len(asked["dev"])
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"]
    assert corpus.documents == load_synthetic().documents
    assert corpus.name != load_synthetic().name
    assert Counter(q.qtype for q in corpus.split("test")) == {
        "attribute": 100, "bridge": 100, "comparison": 100}


def test_answers_are_stated_in_the_supporting_documents(world):
    for q in world.questions:
        docs = [world.by_id[d] for d in q.supporting_ids]
        assert len(docs) == q.hops
        if q.qtype == "comparison":
            assert q.answers[0] in q.question
        else:
            # The answer is in the last document of the reasoning chain ...
            assert q.answers[0] in docs[-1].text
        if q.qtype == "bridge":
            # ... and the bridge document is named by the first document, not by the question.
            bridge = docs[1].title
            assert bridge in docs[0].text and bridge not in q.question


def test_document_per_entity_with_titles_as_names(world):
    titles = [d.title for d in world.documents]
    assert len(titles) == len(set(titles))
    assert all(d.text.strip() for d in world.documents)
    assert all(d.title in d.text for d in world.documents)


def test_near_duplicate_names_exist(world):
    people = [d.title for d in world.documents if d.doc_id.startswith("person/")]
    firsts = Counter(tuple(n.split()[:-1]) + (n.split()[-1][:4],) for n in people)
    assert any(count > 1 for count in firsts.values())


def test_namebook_never_repeats_and_twins_differ():
    import random

    book = NameBook(random.Random(0))
    names = [book.fresh("person") for _ in range(200)]
    assert len(set(names)) == 200
    twin = near_duplicate(random.Random(1), "Toraven Mekali")
    assert twin.startswith("Toraven Mek") and twin != "Toraven Mekali"


def test_bad_size_and_fraction_are_explained():
    with pytest.raises(ValueError, match="expected one of"):
        load_synthetic("huge")
    with pytest.raises(ValueError, match="twin_fraction"):
        load_synthetic(twin_fraction=1.5)
    with pytest.raises(ValueError, match="expected one of entity, question"):
        load_synthetic(holdout="answer")
