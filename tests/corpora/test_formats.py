import dataclasses
import gzip
import hashlib
import json
import os
import re
import string
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import corpora  # noqa: E402
from corpora.formats import CorpusFormatError  # noqa: E402
from corpora.formats.documents import content_doc_id  # noqa: E402
from corpora.formats.jsonio import iter_jsonl  # noqa: E402
from corpora.paths import data_dir  # noqa: E402
from corpora.records import join_contents, split_contents  # noqa: E402

SAMPLES = {
    "hotpotqa": [
        "hotpotqa/hotpot_train_sample100.json",
        "hotpotqa/hotpot_dev_distractor_sample200.json",
    ],
    "musique": [
        "musique/musique_ans_train_sample100.jsonl",
        "musique/musique_ans_dev_sample100.jsonl",
    ],
    "nq_open": ["nq_open/nq-open-oracle.jsonl.gz"],
}


def _needs_samples(name: str) -> None:
    missing = [f for f in SAMPLES[name] if not (data_dir() / f).exists()]
    if missing:
        pytest.skip(f"sample data not found under {data_dir()}: {missing}")


@pytest.fixture(scope="module")
def loaded():
    cache = {}

    def get(name):
        _needs_samples(name)
        if name not in cache:
            cache[name] = corpora.load(name)
        return cache[name]

    return get


def _write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _normalise(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _answer_in(answer: str, texts) -> bool:
    needle = f" {_normalise(answer)} "
    return any(needle in f" {_normalise(t)} " for t in texts)


# --- the shipped samples -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hotpotqa", "musique", "nq_open"])
def test_sample_corpus_is_consistent(loaded, name):
    corpus = loaded(name)
    assert corpus.name == name
    keys = Counter((d.title, d.text) for d in corpus.documents)
    assert keys.most_common(1)[0][1] == 1, "duplicate (title, text) documents"
    assert all(d.text and d.text == d.text.strip() for d in corpus.documents)
    assert len({q.qid for q in corpus.questions}) == len(corpus.questions)
    for q in corpus.questions:
        assert q.answers and all(a.strip() for a in q.answers)
        assert q.question
        assert q.supporting_ids and all(d in corpus.by_id for d in q.supporting_ids)
        assert len(set(q.supporting_ids)) == len(q.supporting_ids)


@pytest.mark.parametrize("name", ["hotpotqa", "musique", "nq_open"])
def test_ids_are_deterministic_across_loads(loaded, name):
    first = loaded(name)
    again = corpora.load(name)
    assert again.documents == first.documents and again.questions == first.questions
    assert again.fingerprint == first.fingerprint


# Documents and questions of the samples as loaded before the stricter checks of issue #13
# (sha256 of their JSON): the checks refuse bad input only, good input loads the same.
SAMPLE_DIGESTS = [
    ("hotpotqa", {}, 2960, 300, "066e1cfc479b8cb31a7af5b99d53fb6c837aea1ae865661910b8e1acfce4e0b0"),
    ("musique", {}, 3722, 200, "e199c7bd6ec71f45c98c4f71203455de872972b3a5649627ff8950c6637e7e87"),
    ("musique", {"answerable_only": False}, 3722, 200,
     "e199c7bd6ec71f45c98c4f71203455de872972b3a5649627ff8950c6637e7e87"),
    ("nq_open", {"max_questions": None}, 2599, 2655,
     "117e63d14fa2f0fda3e874633dddc70394fd8592b1134addb2f49782d3036aff"),
]


@pytest.mark.parametrize("name, options, n_docs, n_questions, digest", SAMPLE_DIGESTS)
def test_samples_load_exactly_as_before(name, options, n_docs, n_questions, digest):
    _needs_samples(name)
    corpus = corpora.load(name, **options)
    blob = json.dumps(
        [
            [dataclasses.asdict(d) for d in corpus.documents],
            [dataclasses.asdict(q) for q in corpus.questions],
        ],
        sort_keys=True,
    )
    assert (len(corpus.documents), len(corpus.questions)) == (n_docs, n_questions)
    assert hashlib.sha256(blob.encode()).hexdigest() == digest


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_line_endings_do_not_change_what_loads(tmp_path, newline):
    _needs_samples("musique")
    sample = data_dir() / SAMPLES["musique"][1]
    lines = sample.read_text(encoding="utf-8").splitlines()[:5]
    plain, other = tmp_path / "plain" / "dev.jsonl", tmp_path / "other" / "dev.jsonl"
    for path, end in ((plain, "\n"), (other, newline)):
        path.parent.mkdir()
        path.write_bytes((end.join(lines) + end + end).encode())
    want, got = corpora.load("musique", path=plain), corpora.load("musique", path=other)
    assert got.documents == want.documents and got.questions == want.questions
    third = lines[2].encode().replace(b'"question": "', b'"question": "\xff', 1)
    end = newline.encode()
    other.write_bytes(end.join(line.encode() for line in lines[:2]) + end + third + end)
    with pytest.raises(CorpusFormatError, match=r"dev\.jsonl:3: not UTF-8"):
        corpora.load("musique", path=other)


def test_hotpotqa_counts_and_splits(loaded):
    corpus = loaded("hotpotqa")
    assert len(corpus.questions) == 300
    assert [len(corpus.split(s)) for s in ("train", "dev", "test")] == [100, 50, 150]
    assert Counter(q.qtype for q in corpus.questions) == {"bridge": 212, "comparison": 88}
    assert all(q.hops == 2 == len(q.supporting_ids) for q in corpus.questions)
    dev = json.loads((data_dir() / SAMPLES["hotpotqa"][1]).read_text(encoding="utf-8"))
    assert [q.qid for q in corpus.split("dev")] == [r["_id"] for r in dev[:50]]
    assert [q.qid for q in corpus.split("test")] == [r["_id"] for r in dev[50:]]
    # 1,971 distinct dev paragraphs + 994 train paragraphs, 5 of which are also in dev.
    assert len(corpus.documents) == 2960


def test_hotpotqa_supporting_ids_follow_supporting_facts(loaded):
    corpus = loaded("hotpotqa")
    q = corpus.question("5a7f6fd75542992e7d278cfa")
    assert q.answers == ("Rush",) and q.split == "dev" and q.qtype == "bridge"
    assert [corpus.by_id[d].title for d in q.supporting_ids] == ["Nobody's Hero", "Neil Peart"]
    assert q.supporting_ids[1] == content_doc_id(
        "Neil Peart", corpus.by_id[q.supporting_ids[1]].text
    )
    assert q.supporting_ids[1].startswith("Neil_Peart#")


@pytest.mark.parametrize("name, minimum", [("hotpotqa", 0.9), ("musique", 0.9), ("nq_open", 0.95)])
def test_span_answers_appear_in_supporting_documents(loaded, name, minimum):
    corpus = loaded(name)
    spans = [q for q in corpus.questions if _normalise(q.answers[0]) not in {"yes", "no"}]
    found = sum(
        any(_answer_in(a, [corpus.by_id[d].text for d in q.supporting_ids]) for a in q.answers)
        for q in spans
    )
    assert len(spans) > 0.8 * len(corpus.questions)
    assert found >= minimum * len(spans), f"{found}/{len(spans)}"


def test_musique_counts_answers_and_reasoning_order(loaded):
    corpus = loaded("musique")
    assert [len(corpus.split(s)) for s in ("train", "dev", "test")] == [100, 25, 75]
    assert Counter(q.hops for q in corpus.questions) == {2: 121, 3: 61, 4: 18}
    assert all(q.qtype == f"{q.hops}hop" == f"{len(q.supporting_ids)}hop" for q in corpus.questions)
    q = corpus.question("2hop__82713_84616")
    assert q.answers[0] == "for Best Performance by a Leading Actress in a Play in Ondine"
    assert q.answers[1:] == ("leading role", "star", "leading actress", "lead")
    # The first decomposition step is answered by the "My Fair Lady (film)" paragraph.
    assert corpus.by_id[q.supporting_ids[0]].title == "My Fair Lady (film)"


def test_nq_open_index_splits_and_all_records(loaded):
    corpus = loaded("nq_open")
    assert [len(corpus.split(s)) for s in ("train", "dev", "test")] == [600, 100, 300]
    assert [q.qid for q in corpus.split("train")][:2] == ["nq-0", "nq-1"]
    assert corpus.split("dev")[0].qid == "nq-600" and corpus.split("test")[-1].qid == "nq-999"
    assert all(len(q.supporting_ids) == 1 and q.hops == 1 for q in corpus.questions)
    full = corpora.load("nq_open", max_questions=None)
    assert len(full.questions) == 2655
    assert [len(full.split(s)) for s in ("train", "dev", "test")] == [1593, 265, 797]
    # Split boundaries move with max_questions; ids and evidence do not.
    assert [(q.qid, q.supporting_ids) for q in full.questions[:1000]] == [
        (q.qid, q.supporting_ids) for q in corpus.questions
    ]


def test_custom_path_split_rules(tmp_path):
    _needs_samples("hotpotqa")
    dev_file = data_dir() / SAMPLES["hotpotqa"][1]
    alone = corpora.load("hotpotqa", path=dev_file, dev_fraction=0.5)
    assert [len(alone.split(s)) for s in ("train", "dev", "test")] == [0, 100, 100]
    as_train = corpora.load("hotpotqa", path=str(dev_file), split="train")
    assert len(as_train.split("train")) == 200
    # Content ids do not depend on which files were loaded.
    both = corpora.load("hotpotqa")
    assert set(alone.by_id) <= set(both.by_id)
    with pytest.raises(ValueError, match="split"):
        corpora.load("hotpotqa", path=dev_file, split="validation")


# --- BEIR, FlashRAG and plain JSONL on hand-written files ----------------------------------------


@pytest.fixture
def beir_folder(tmp_path):
    folder = tmp_path / "tiny_beir"
    (folder / "qrels").mkdir(parents=True)
    _write_jsonl(
        folder / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Paris", "text": "Paris is the capital of France."},
            {"_id": "d2", "title": "Lyon", "text": "Lyon lies on the Rhone."},
            {"_id": "d3", "title": "", "text": "An untitled passage."},
            {"_id": "d4", "title": "Paris", "text": "Paris is the capital of France."},
        ],
    )
    _write_jsonl(
        folder / "queries.jsonl",
        [
            {
                "_id": "q1",
                "text": "What is the capital of France?",
                "metadata": {"answer": "Paris"},
            },
            {"_id": "q2", "text": "Which river flows through Lyon?"},
            {"_id": "q3", "text": "Untitled?"},
            {"_id": "q4", "text": "Never relevant."},
            {"_id": "q5", "text": "Not judged."},
        ],
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td2\t1\nq1\td1\t2\nq2\td2\t1\nq4\td1\t0\n"
    )
    (folder / "qrels" / "train.tsv").write_text("q3\td3\t1\n")
    return folder


def test_beir_folder(beir_folder):
    corpus = corpora.load("beir", path=beir_folder)
    # d4 repeats d1 word for word and is dropped.
    assert [d.doc_id for d in corpus.documents] == ["d1", "d2", "d3"]
    assert [(q.qid, q.split) for q in corpus.questions] == [
        ("q3", "train"),
        ("q1", "test"),
        ("q2", "test"),
    ]
    q1 = corpus.question("q1")
    assert q1.supporting_ids == ("d1", "d2")  # by descending score
    assert q1.answers == ("Paris", "Lyon") and q1.question == "What is the capital of France?"
    assert corpus.question("q3").answers == ("d3",)  # untitled: the document id
    with_answers = corpora.load("beir", path=str(beir_folder), answers_field="metadata.answer")
    assert with_answers.question("q1").answers == ("Paris",)
    assert with_answers.question("q2").answers == ("Lyon",)


def test_beir_aliases_and_errors(beir_folder, tmp_path):
    (beir_folder / "qrels" / "dev.tsv").write_text("q5\td4\t1\n")
    assert corpora.load("beir", path=beir_folder).question("q5").supporting_ids == ("d1",)
    (beir_folder / "qrels" / "dev.tsv").write_text("q5\td4\t1\nq5\td9\t1\n")
    with pytest.raises(CorpusFormatError, match=r"dev\.tsv:2: document 'd9'"):
        corpora.load("beir", path=beir_folder)
    (beir_folder / "qrels" / "dev.tsv").write_text("q5 d1 1\n")
    with pytest.raises(CorpusFormatError, match=r"dev\.tsv:1: expected 3 tab-separated"):
        corpora.load("beir", path=beir_folder)
    (beir_folder / "qrels" / "dev.tsv").write_text("q1\td1\t1\n")
    with pytest.raises(CorpusFormatError, match="duplicate question id 'q1'"):
        corpora.load("beir", path=beir_folder)
    with pytest.raises(ValueError, match="path="):
        corpora.load("beir")
    with pytest.raises(FileNotFoundError, match="qrels"):
        (tmp_path / "empty").mkdir()
        corpora.load("beir", path=tmp_path / "empty")


def test_flashrag_files(tmp_path):
    corpus_file = _write_jsonl(
        tmp_path / "wiki.jsonl",
        [
            {"id": "0", "contents": '"Paris"\nParis is the capital of France.'},
            {"id": 1, "contents": "Lyon\nLyon lies on the Rhone."},
            {"id": "2", "contents": '"Paris"\nParis is the capital of France.'},
        ],
    )
    test_file = _write_jsonl(
        tmp_path / "test.jsonl",
        [{"id": "test_0", "question": "Capital of France?", "golden_answers": ["Paris", "Paris"]}],
    )
    train_file = _write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"question": "Where is Lyon?", "golden_answers": "France"},
            {"question": "Two hops?", "golden_answers": ["yes"], "hops": 2},
        ],
    )
    corpus = corpora.load(
        "flashrag", corpus_path=corpus_file, qa_paths={"test": test_file, "train": train_file}
    )
    assert [(d.doc_id, d.title, d.text) for d in corpus.documents] == [
        ("0", "Paris", "Paris is the capital of France."),
        ("1", "Lyon", "Lyon lies on the Rhone."),
    ]
    assert [(q.qid, q.split, q.answers, q.hops) for q in corpus.questions] == [
        ("test_0", "test", ("Paris",), 1),
        ("train-0", "train", ("France",), 1),
        ("train-1", "train", ("yes",), 2),
    ]
    assert all(q.supporting_ids == () for q in corpus.questions)
    assert len(corpora.load("flashrag", corpus_path=corpus_file).questions) == 0
    with pytest.raises(ValueError, match="corpus_path="):
        corpora.load("flashrag")
    with pytest.raises(ValueError, match="qa_paths"):
        corpora.load("flashrag", corpus_path=corpus_file, qa_paths={"valid": test_file})


@pytest.mark.parametrize(
    "contents, title, text",
    [
        ('"Paris"\nParis is big.', "Paris", "Paris is big."),  # quoted title
        ("Lyon\nLyon is big.\nIt is old.", "Lyon", "Lyon is big.\nIt is old."),  # unquoted
        ('"Paris" is big.', "", '"Paris" is big.'),  # no newline: all text
        ('""\nUntitled.', "", "Untitled."),  # empty title
        ('"Paris"\n', "Paris", ""),  # empty text
        ('\n \n  " Paris " \n  Big.  \n', "Paris", "Big."),  # surrounding whitespace
        ('"Quoted "inner" title"\nBody.', 'Quoted "inner" title', "Body."),  # inner quotes stay
        ('"Half-quoted\nBody.', '"Half-quoted', "Body."),  # only a pair of quotes is removed
        ("", "", ""),
    ],
)
def test_split_contents_edge_cases(contents, title, text):
    assert split_contents(contents) == (title, text)


@pytest.mark.parametrize(
    "title, text",
    [
        ("Paris", "Paris is big."),
        ("", "Untitled."),
        ("Paris", ""),
        ("", ""),
        ('Quoted "inner" title', "Body."),
        ('"', "A lone quote."),
        ('"Already quoted"', "Its quotes are part of the title."),
        ("Lyon", "Lyon is big.\nIt is old."),
    ],
)
def test_join_contents_writes_what_split_contents_reads_back(title, text):
    contents = join_contents(title, text)
    assert contents == f'"{title}"\n{text}'
    assert split_contents(contents) == (title, text)


@given(st.text().map(str.strip).filter(lambda t: "\n" not in t), st.text().map(str.strip))
def test_join_contents_inverts_split_contents_on_stripped_strings(title, text):
    assert split_contents(join_contents(title, text)) == (title, text)


def test_join_contents_keeps_a_multiline_title_on_its_line():
    assert split_contents(join_contents("Two\nlines", "Body.")) == ("Two lines", "Body.")


def test_plain_jsonl_one_file_and_two_files(tmp_path):
    docs = [
        {"doc_id": "a", "title": "Alpha", "text": "Alpha was founded in 1901."},
        {"id": "b", "title": "Beta", "text": "Beta is in Alpha."},
        {"doc_id": "c", "title": "Alpha", "text": "Alpha was founded in 1901."},
    ]
    questions = [
        {
            "qid": "x",
            "question": "When was Beta's home founded?",
            "answers": ["1901"],
            "supporting_ids": ["b", "c"],
            "split": "train",
            "qtype": "bridge",
            "entities": ["Beta"],
        },
        {"id": "y", "question": "What is Beta in?", "answers": "Alpha"},
    ]
    one = corpora.load("jsonl", path=_write_jsonl(tmp_path / "all.jsonl", docs + questions))
    two = corpora.load(
        "jsonl",
        path=_write_jsonl(tmp_path / "docs.jsonl", docs),
        questions_path=_write_jsonl(tmp_path / "qs.jsonl", questions),
        split="dev",
    )
    assert [d.doc_id for d in one.documents] == ["a", "b"] == [d.doc_id for d in two.documents]
    x = one.question("x")
    assert x.supporting_ids == ("b", "a") and x.hops == 2 and x.split == "train"
    assert x.qtype == "bridge" and x.entities == ("Beta",)
    assert one.question("y").split == "test" and two.question("y").split == "dev"
    assert one.question("y").answers == ("Alpha",) and one.question("y").hops == 1
    bad = _write_jsonl(tmp_path / "bad.jsonl", docs + [{**questions[1], "supporting_ids": ["zz"]}])
    with pytest.raises(CorpusFormatError, match=r"bad\.jsonl:4: supporting id 'zz'"):
        corpora.load("jsonl", path=bad)


# --- error messages ------------------------------------------------------------------------------


def test_malformed_line_names_file_and_line(tmp_path):
    lines = [json.dumps({"question": "q", "answers": ["a"], "ctxs": []})] * 2 + [
        '{"question": "q",'
    ]
    bad = tmp_path / "broken.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusFormatError) as err:
        corpora.load("nq_open", path=bad)
    message = str(err.value)
    assert f"{bad}:3:" in message and "invalid JSON" in message and "fix or remove" in message
    with pytest.raises(CorpusFormatError, match=r"broken\.jsonl:3: invalid JSON"):
        list(iter_jsonl(bad))


def test_not_an_object_and_gzip_detection(tmp_path):
    gz = tmp_path / "small.jsonl.gz"
    passage = {"title": "Ann", "text": "Ann did it.", "hasanswer": True, "isgold": False}
    line = json.dumps({"question": "Who?", "answers": ["Ann"], "ctxs": [passage]}) + "\n"
    with gzip.open(gz, "wt", encoding="utf-8") as out:
        out.write(line + "\n[1, 2]\n")
    with pytest.raises(CorpusFormatError, match=r"small\.jsonl\.gz:3: expected a JSON object"):
        corpora.load("nq_open", path=gz)
    with gzip.open(gz, "wt", encoding="utf-8") as out:
        out.write(line)
    corpus = corpora.load("nq_open", path=gz)
    # No gold passage: the passages that contain an answer support the question.
    assert corpus.questions[0].supporting_ids == (corpus.documents[0].doc_id,)
    assert corpus.questions[0].split == "train"


def test_missing_field_is_named(tmp_path):
    paragraph = {"idx": 0, "title": "T", "paragraph_text": "x.", "is_supporting": True}
    record = {
        "id": "1",
        "paragraphs": [paragraph],
        "question_decomposition": [{"paragraph_support_idx": 0}],
        "answer": "x",
    }
    bad = _write_jsonl(tmp_path / "musique.jsonl", [record])
    with pytest.raises(CorpusFormatError) as err:
        corpora.load("musique", path=bad)
    message = str(err.value)
    assert f"{bad}:1:" in message and "missing field 'question'" in message
    assert "expected fields: id, paragraphs, question" in message
    hotpot = tmp_path / "hotpot.json"
    hotpot.write_text(json.dumps([{"_id": "h", "question": "q", "answer": "a", "context": []}]))
    with pytest.raises(
        CorpusFormatError, match=r"hotpot\.json:1: record 1: missing field 'supporting_facts'"
    ):
        corpora.load("hotpotqa", path=hotpot)
    wrong = _write_jsonl(tmp_path / "wrong.jsonl", [{**record, "question": ["not", "text"]}])
    with pytest.raises(CorpusFormatError, match="field 'question' should be str, got list"):
        corpora.load("musique", path=wrong)
    empty = _write_jsonl(tmp_path / "empty.jsonl", [{**record, "question": "q", "answer": " "}])
    with pytest.raises(CorpusFormatError, match="no gold answer"):
        corpora.load("musique", path=empty)


def test_missing_file_hints_at_options(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError) as err:
        corpora.load("hotpotqa", path=missing)
    message = str(err.value)
    assert str(missing) in message and "path=" in message and "FORKSEARCH_DATA_DIR" in message
    with pytest.raises(FileNotFoundError, match="corpus_path="):
        corpora.load("flashrag", corpus_path=missing)


def test_data_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("FORKSEARCH_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "hotpotqa"))):
        corpora.load("hotpotqa")

