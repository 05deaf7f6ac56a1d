"""Bad input to every corpus loader is refused with a ``CorpusFormatError`` naming file and line.

Each row of ``ROWS`` is one case: the loader, the files it reads (written to ``tmp_path``), the
expected location (``file:line``, ``file:line: record N`` for a JSON list, or ``file`` alone for
a whole-file problem) and a regex for the rest of the message. Before issue #13 every row was
accepted silently, crashed with another error, or was reported at the wrong place (four BEIR
rows only indirectly, as a qrels line naming a query or document that seemed missing).
``test_valid_baselines_load`` is the control: the unchanged records load.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import corpora
from corpora.formats import CorpusFormatError


def jsonl(*records: Any) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def json_list(*records: Any) -> str:
    """One record per line: record N starts on line N + 1."""
    return "[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n"


def changed(record: dict, **fields: Any) -> dict:
    return {**record, **fields}


def dropped(record: dict, name: str) -> dict:
    return {k: v for k, v in record.items() if k != name}


def deep_line(prefix: str, depth: int = 100_000) -> str:
    """``prefix`` and a value nested ``depth`` lists deep, closing the object (``json`` cannot
    write one)."""
    return prefix + "[" * depth + "]" * depth + "}\n"


# --- valid records, one per format ---------------------------------------------------------------

DOC = {"doc_id": "d1", "title": "Ada Lovelace", "text": "Ada Lovelace was born in London."}
DOC2 = {"doc_id": "d2", "title": "London", "text": "London is the capital of England."}
QUESTION = {
    "qid": "q1",
    "question": "Where was Ada Lovelace born?",
    "answers": ["London"],
    "supporting_ids": ["d1"],
}
HOTPOT = {
    "_id": "h1",
    "question": "Which country's capital is Ada Lovelace's birthplace?",
    "answer": "England",
    "type": "bridge",
    "supporting_facts": [["Ada Lovelace", 0], ["London", 0]],
    "context": [
        ["Ada Lovelace", ["Ada Lovelace was born in London."]],
        ["London", ["London is the capital of England.", " It is old."]],
    ],
}
HOTPOT2 = changed(HOTPOT, _id="h2")
PARAGRAPHS = [
    {"idx": 0, "title": "Ada Lovelace", "paragraph_text": "Ada was born in London.",
     "is_supporting": True},
    {"idx": 1, "title": "London", "paragraph_text": "London is in England.", "is_supporting": True},
    {"idx": 2, "title": "Paris", "paragraph_text": "Paris is in France.", "is_supporting": False},
]
STEPS = [
    {"id": 1, "question": "Ada's birthplace?", "answer": "London", "paragraph_support_idx": 0},
    {"id": 2, "question": "#1 is in?", "answer": "England", "paragraph_support_idx": 1},
]
MUSIQUE = {
    "id": "2hop__1_2",
    "paragraphs": PARAGRAPHS,
    "question": "In which country was Ada Lovelace born?",
    "question_decomposition": STEPS,
    "answer": "England",
    "answer_aliases": ["the UK"],
    "answerable": True,
}
MUSIQUE2 = changed(MUSIQUE, id="2hop__3_4")
CTX = {"title": "Ada Lovelace", "text": "Ada Lovelace was born in London.", "hasanswer": True,
       "isgold": True}
NQ = {"question": "where was ada lovelace born", "answers": ["London"], "ctxs": [CTX]}
WIKI = {"id": "0", "contents": '"Ada Lovelace"\nAda Lovelace was born in London.'}
WIKI2 = {"id": "1", "contents": '"London"\nLondon is the capital of England.'}
QA = {"id": "t0", "question": "Where was Ada Lovelace born?", "golden_answers": ["London"]}
BEIR_DOC = {"_id": "d1", "title": "Ada Lovelace", "text": "Ada Lovelace was born in London."}
BEIR_DOC2 = {"_id": "d2", "title": "London", "text": "London is the capital of England."}
QUERY = {"_id": "q1", "text": "Where was Ada Lovelace born?", "metadata": {"answer": "London"}}
QUERY2 = {"_id": "q2", "text": "What is the capital of England?"}
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n"


def paragraph(index: int, **fields: Any) -> list[dict]:
    return [changed(p, **fields) if p["idx"] == index else p for p in PARAGRAPHS]


def question_file(**fields: Any) -> dict[str, str]:
    """``docs.jsonl``: ``DOC``, then ``QUESTION`` with ``fields`` changed on line 2."""
    return {"docs.jsonl": jsonl(DOC, changed(QUESTION, **fields))}


def hotpot_file(**fields: Any) -> dict[str, str]:
    """``hotpot.json``: a JSON list of ``HOTPOT`` with ``fields`` changed (line 2, record 1)."""
    return {"hotpot.json": json_list(changed(HOTPOT, **fields))}


def musique_file(**fields: Any) -> dict[str, str]:
    """``musique.jsonl``: ``MUSIQUE`` with ``fields`` changed on line 1."""
    return {"musique.jsonl": jsonl(changed(MUSIQUE, **fields))}


def nq_file(**fields: Any) -> dict[str, str]:
    """``nq.jsonl``: ``NQ`` with ``fields`` changed on line 1."""
    return {"nq.jsonl": jsonl(changed(NQ, **fields))}


def beir(corpus: str | None = None, queries: str | None = None, qrels: str | None = None):
    return {
        "corpus.jsonl": jsonl(BEIR_DOC, BEIR_DOC2) if corpus is None else corpus,
        "queries.jsonl": jsonl(QUERY, QUERY2) if queries is None else queries,
        "qrels/test.tsv": QRELS if qrels is None else qrels,
    }


def flashrag(corpus: str | None = None, qa: str | None = None):
    return {
        "wiki.jsonl": jsonl(WIKI, WIKI2) if corpus is None else corpus,
        "test.jsonl": jsonl(QA) if qa is None else qa,
    }


# Encoding errors: the bad byte sits on a known line, at a known byte offset.
MANY = "".join(json.dumps(changed(DOC, doc_id=f"d{i}", text=f"Text {i}.")) + "\n"
               for i in range(2000))
BAD_LINE = b'{"doc_id": "bad", "text": "caf\xff"}\n'
BAD_AT = BAD_LINE.index(b"\xff")
BAD_LIST = json_list(HOTPOT, HOTPOT2).encode().replace(b'"h2"', b'"h\xe92"')  # on line 3
BAD_NQ = jsonl(NQ, NQ).encode() + b'{"question": "\xc3"}\n'
BAD_QRELS = b"q1\td1\t1\nq2\td\xff2\t1\n"
GZIPPED = gzip.compress(jsonl(NQ).encode())


class Row(NamedTuple):
    """One bad input: ``loader`` reads ``files``; the error starts with ``where``."""

    case: str
    loader: str
    files: dict[str, str | bytes]
    where: str
    message: str


ROWS = [
    # --- every format: empty files, encodings, JSON the reader cannot take ---------------------
    Row("empty file", "jsonl", {"docs.jsonl": ""}, "docs.jsonl",
        r"no documents in docs\.jsonl: the file is empty"),
    Row("blank lines only", "jsonl", {"docs.jsonl": "\n  \n\n"}, "docs.jsonl",
        r"no documents in docs\.jsonl: the file has 3 lines, all blank"),
    Row("questions but no documents", "jsonl",
        {"docs.jsonl": jsonl(dropped(QUESTION, "supporting_ids"))}, "docs.jsonl",
        r"no documents in .*docs\.jsonl: all its 1 records are questions"),
    Row("empty JSON list", "hotpotqa", {"hotpot.json": "[]"}, "hotpot.json",
        r"no documents in hotpot\.json: the file holds an empty JSON list"),
    Row("empty gzip file", "nq_open", {"nq.jsonl.gz": ""}, "nq.jsonl.gz",
        r"no documents in nq\.jsonl\.gz: the file is empty"),
    Row("empty QA file", "flashrag", flashrag(qa=""), "test.jsonl",
        r"no questions in test\.jsonl: the file is empty"),
    Row("empty BEIR corpus", "beir", beir(corpus=""), "corpus.jsonl",
        r"no documents in corpus\.jsonl"),
    Row("empty BEIR queries", "beir", beir(queries="\n"), "queries.jsonl",
        r"no queries in queries\.jsonl"),
    Row("empty qrels", "beir", beir(qrels=""), "qrels/test.tsv",
        r"no judgement with a score above 0 in test\.tsv: it is empty"),
    Row("qrels without a relevant document", "beir", beir(qrels="q1\td1\t0\nq2\td2\t-1\n"),
        "qrels/test.tsv", r"no judgement with a score above 0 in test\.tsv: its 2 judgements"),
    Row("100k-deep nesting in JSONL", "jsonl",
        {"docs.jsonl": jsonl(DOC) + deep_line('{"doc_id": "d2", "text": ')}, "docs.jsonl:2",
        r"a value nested more than 500 levels deep \(column 525\)"),
    Row("100k-deep nesting in a JSON list", "hotpotqa",
        {"hotpot.json": "[\n" + json.dumps(HOTPOT) + ",\n" + deep_line('{"_id": ')[:-1] + "]"},
        "hotpot.json:3", r"a value nested more than 500 levels deep"),
    Row("bad byte on line 2001", "jsonl", {"docs.jsonl": MANY.encode() + BAD_LINE},
        "docs.jsonl:2001",
        rf"not UTF-8 text \(byte 0xff at byte offset {len(MANY.encode()) + BAD_AT}: "),
    Row("bad byte in the first 4 KB", "jsonl", {"docs.jsonl": jsonl(DOC).encode() + BAD_LINE},
        "docs.jsonl:2", rf"not UTF-8 text \(byte 0xff at byte offset {len(jsonl(DOC)) + BAD_AT}"),
    Row("bad byte in a JSON list", "hotpotqa", {"hotpot.json": BAD_LIST}, "hotpot.json:3",
        rf"not UTF-8 text \(byte 0xe9 at byte offset {BAD_LIST.index(0xE9)}: invalid continua"),
    Row("bad byte in a gzipped file", "nq_open", {"nq.jsonl.gz": gzip.compress(BAD_NQ)},
        "nq.jsonl.gz:3",
        rf"not UTF-8 text \(byte 0xc3 at byte offset {BAD_NQ.index(0xC3)} of the decompressed"),
    Row("bad byte in a qrels TSV", "beir", beir(qrels=BAD_QRELS), "qrels/test.tsv:2",
        rf"not UTF-8 text \(byte 0xff at byte offset {BAD_QRELS.index(0xFF)}: invalid start"),
    Row("gzip data without a .gz name", "nq_open", {"nq.jsonl": GZIPPED}, "nq.jsonl:1",
        r"not UTF-8 text .*; the file is gzip-compressed: give it a name ending in \.gz"),
    Row("UTF-16 file", "jsonl", {"docs.jsonl": jsonl(DOC).encode("utf-16")}, "docs.jsonl:1",
        r"not UTF-8 text .*; the file is UTF-16: save it as UTF-8"),
    Row("corrupt gzip stream", "nq_open",
        {"nq.jsonl.gz": GZIPPED[:10] + bytes(b ^ 0xFF for b in GZIPPED[10:])}, "nq.jsonl.gz:1",
        r"unreadable \(.*\); check that it is UTF-8 or gzip text"),
    Row("repeated key", "jsonl",
        {"docs.jsonl": jsonl(DOC) + '{"doc_id": "d2", "text": "a", "text": "b"}\n'},
        "docs.jsonl:2", r"key 'text' appears twice in one object"),
    Row("repeated key in a JSON list", "hotpotqa",
        {"hotpot.json": json_list(HOTPOT)[:-4] + ', "answer": "x"}\n]\n'},
        "hotpot.json:2: record 1", r"key 'answer' appears twice"),
    Row("integer of 5000 digits", "jsonl",
        {"docs.jsonl": jsonl(DOC) + '{"doc_id": ' + "1" * 5000 + ', "text": "a"}\n'},
        "docs.jsonl:2", r"a number that cannot be read \(Exceeds the limit"),
    Row("unpaired surrogate escape", "musique",
        {"musique.jsonl": jsonl(MUSIQUE, changed(MUSIQUE2, paragraphs=paragraph(
            2, paragraph_text="Paris \ud800")))},
        "musique.jsonl:2",
        r"field 'paragraph_text' holds an unpaired surrogate escape \(\\ud800 at character 7\)"),
    Row("unpaired surrogate escape in a title", "jsonl",
        {"docs.jsonl": jsonl(changed(DOC, title="\udc00"))}, "docs.jsonl:1",
        r"field 'title' holds an unpaired surrogate escape"),
    # --- plain JSONL -------------------------------------------------------------------------
    Row("hops 0", "jsonl", question_file(hops=0), "docs.jsonl:2",
        r"field 'hops' should be at least 1, got 0"),
    Row("hops -2", "jsonl", question_file(hops=-2), "docs.jsonl:2",
        r"field 'hops' should be at least 1, got -2"),
    Row("empty question", "jsonl", question_file(question=""), "docs.jsonl:2",
        r"field 'question' is empty"),
    Row("blank question", "jsonl", question_file(question=" \t"), "docs.jsonl:2",
        r"field 'question' is empty"),
    Row("blank answer beside a good one", "jsonl", question_file(answers=["London", " "]),
        "docs.jsonl:2", r"gold answer 2 in 'answers' is blank"),
    Row("supporting id listed twice", "jsonl", question_file(supporting_ids=["d1", "d1"]),
        "docs.jsonl:2", r"supporting id 'd1' is listed twice"),
    Row("blank document id", "jsonl", {"docs.jsonl": jsonl(changed(DOC, doc_id=" "))},
        "docs.jsonl:1", r"field 'doc_id' is empty"),
    Row("blank question id", "jsonl", question_file(qid=""), "docs.jsonl:2",
        r"field 'qid' is empty"),
    Row("blank document text", "jsonl", {"docs.jsonl": jsonl(changed(DOC, text=""))},
        "docs.jsonl:1", r"field 'text' is empty"),
    Row("blank qtype", "jsonl", question_file(qtype=""), "docs.jsonl:2",
        r"field 'qtype' is empty"),
    Row("blank entity", "jsonl", question_file(entities=["Ada", ""]), "docs.jsonl:2",
        r"field 'entities\[1\]' is empty"),
    Row("document in the questions file", "jsonl",
        {"docs.jsonl": jsonl(DOC), "questions.jsonl": jsonl(QUESTION, DOC2)},
        "questions.jsonl:2", r"missing field 'question' \(expected fields: qid, question"),
    # --- FlashRAG / Search-R1 ----------------------------------------------------------------
    Row("blank contents", "flashrag", flashrag(corpus=jsonl(WIKI, changed(WIKI2, contents=" "))),
        "wiki.jsonl:2", r"field 'contents' is empty"),
    Row("contents with an empty title and text", "flashrag",
        flashrag(corpus=jsonl(changed(WIKI, contents='""\n '))), "wiki.jsonl:1",
        r"document '0' has neither title nor text"),
    Row("blank document id", "flashrag", flashrag(corpus=jsonl(changed(WIKI, id=""))),
        "wiki.jsonl:1", r"field 'id' is empty"),
    Row("hops 0", "flashrag", flashrag(qa=jsonl(QA, changed(QA, id="t1", hops=0))),
        "test.jsonl:2", r"field 'hops' should be at least 1, got 0"),
    Row("empty question", "flashrag", flashrag(qa=jsonl(changed(QA, question=""))),
        "test.jsonl:1", r"field 'question' is empty"),
    Row("blank golden answer", "flashrag",
        flashrag(qa=jsonl(changed(QA, golden_answers=["London", ""]))), "test.jsonl:1",
        r"gold answer 2 in 'golden_answers' is blank"),
    Row("blank question id", "flashrag", flashrag(qa=jsonl(changed(QA, id=" "))),
        "test.jsonl:1", r"field 'id' is empty"),
    # --- BEIR --------------------------------------------------------------------------------
    Row("duplicate query id", "beir", beir(queries=jsonl(QUERY, QUERY2, changed(QUERY2, _id="q1"))),
        "queries.jsonl:3", r"duplicate query id 'q1' \(first at .*queries\.jsonl:1\)"),
    Row("blank query text", "beir", beir(queries=jsonl(QUERY, changed(QUERY2, text=""))),
        "queries.jsonl:2", r"field 'text' is empty"),
    Row("blank query id", "beir", beir(queries=jsonl(QUERY, changed(QUERY2, _id=""))),
        "queries.jsonl:2", r"field '_id' is empty"),
    Row("blank document id", "beir", beir(corpus=jsonl(BEIR_DOC, changed(BEIR_DOC2, _id=" "))),
        "corpus.jsonl:2", r"field '_id' is empty"),
    Row("document with neither title nor text", "beir",
        beir(corpus=jsonl(BEIR_DOC, changed(BEIR_DOC2, title="", text=" "))), "corpus.jsonl:2",
        r"document 'd2' has neither title nor text"),
    Row("judgement repeated", "beir", beir(qrels=QRELS + "q1\td1\t2\n"), "qrels/test.tsv:4",
        r"query 'q1' and document 'd1' are judged twice \(first at .*test\.tsv:2\)"),
    # --- HotpotQA (record 1 starts on line 2) ------------------------------------------------
    Row("empty supporting_facts", "hotpotqa",
        {"hotpot.json": json_list(HOTPOT, changed(HOTPOT2, supporting_facts=[]))},
        "hotpot.json:3: record 2", r"field 'supporting_facts' is empty"),
    Row("sentence number as a string", "hotpotqa", hotpot_file(supporting_facts=[["London", "0"]]),
        "hotpot.json:2: record 1", r"supporting fact \['London', '0'\] should be \[title, sent"),
    Row("negative sentence number", "hotpotqa", hotpot_file(supporting_facts=[["London", -1]]),
        "hotpot.json:2: record 1", r"supporting fact \['London', -1\] should be \[title, sentence"),
    Row("context title twice", "hotpotqa",
        hotpot_file(context=HOTPOT["context"] + [["London", ["London is big."]]]),
        "hotpot.json:2: record 1", r"context title 'London' appears twice"),
    Row("paragraph without text", "hotpotqa",
        hotpot_file(context=HOTPOT["context"] + [["Paris", []]]),
        "hotpot.json:2: record 1", r"context paragraph 'Paris' has no text"),
    Row("blank context title", "hotpotqa", hotpot_file(context=HOTPOT["context"] + [[" ", ["x"]]]),
        "hotpot.json:2: record 1", r"field 'context\[2\] title' is empty"),
    Row("blank question", "hotpotqa", hotpot_file(question=" "), "hotpot.json:2: record 1",
        r"field 'question' is empty"),
    Row("blank id", "hotpotqa", hotpot_file(_id=""), "hotpot.json:2: record 1",
        r"field '_id' is empty"),
    Row("blank type", "hotpotqa", hotpot_file(type=""), "hotpot.json:2: record 1",
        r"field 'type' is empty"),
    # --- MuSiQue -----------------------------------------------------------------------------
    Row("no supporting paragraph", "musique",
        {"musique.jsonl": jsonl(MUSIQUE, changed(MUSIQUE2, paragraphs=[
            changed(p, is_supporting=False) for p in PARAGRAPHS]))},
        "musique.jsonl:2", r'no paragraph has "is_supporting": true'),
    Row("empty decomposition (0 hops)", "musique", musique_file(question_decomposition=[]),
        "musique.jsonl:1", r"field 'question_decomposition' is empty \(0 hops\)"),
    Row("is_supporting as a string", "musique",
        musique_file(paragraphs=paragraph(2, is_supporting="true")),
        "musique.jsonl:1", r"field 'is_supporting' should be bool, got str 'true'"),
    Row("is_supporting missing", "musique",
        musique_file(paragraphs=PARAGRAPHS[:2] + [dropped(PARAGRAPHS[2], "is_supporting")]),
        "musique.jsonl:1", r"missing field 'is_supporting'"),
    Row("duplicate paragraph idx", "musique", musique_file(paragraphs=paragraph(2, idx=1)),
        "musique.jsonl:1", r"paragraph idx 1 appears twice"),
    Row("idx as a list", "musique", musique_file(paragraphs=paragraph(0, idx=[0])),
        "musique.jsonl:1", r"field 'idx' should be int, got list \[0\]"),
    Row("idx missing", "musique", musique_file(paragraphs=[dropped(PARAGRAPHS[0], "idx")]),
        "musique.jsonl:1", r"missing field 'idx'"),
    Row("blank paragraph text", "musique",
        musique_file(paragraphs=paragraph(2, paragraph_text="")),
        "musique.jsonl:1", r"field 'paragraph_text' is empty"),
    Row("no paragraphs", "musique", musique_file(paragraphs=[]), "musique.jsonl:1",
        r"field 'paragraphs' is empty"),
    Row("decomposition step not an object", "musique", musique_file(question_decomposition=["#1"]),
        "musique.jsonl:1", r"field 'question_decomposition' should be dict, got str"),
    Row("step naming no paragraph", "musique",
        musique_file(question_decomposition=[STEPS[0], changed(STEPS[1], paragraph_support_idx=7)]),
        "musique.jsonl:1", r"a decomposition step's paragraph_support_idx 7 names no paragraph"),
    Row("answerable as a string", "musique", musique_file(answerable="false"), "musique.jsonl:1",
        r"field 'answerable' should be bool, got str"),
    Row("every record unanswerable", "musique", musique_file(answerable=False), "musique.jsonl",
        r'no answerable questions: all 1 records are "answerable": false; pass answerable_only'),
    Row("blank alias", "musique", musique_file(answer_aliases=[""]), "musique.jsonl:1",
        r"gold answer 1 in 'answer_aliases' is blank"),
    Row("blank question", "musique", musique_file(question=""), "musique.jsonl:1",
        r"field 'question' is empty"),
    Row("blank id", "musique", musique_file(id=""), "musique.jsonl:1", r"field 'id' is empty"),
    # --- NQ-open -----------------------------------------------------------------------------
    Row("no passages", "nq_open", {"nq.jsonl": jsonl(NQ, changed(NQ, ctxs=[]))}, "nq.jsonl:2",
        r"field 'ctxs' is empty"),
    Row("isgold as a string", "nq_open", nq_file(ctxs=[changed(CTX, isgold="true")]),
        "nq.jsonl:1", r"field 'isgold' should be bool, got str"),
    Row("hasanswer as a number", "nq_open", nq_file(ctxs=[changed(CTX, hasanswer=1)]),
        "nq.jsonl:1", r"field 'hasanswer' should be bool, got int"),
    Row("blank answer", "nq_open", nq_file(answers=["London", ""]), "nq.jsonl:1",
        r"gold answer 2 in 'answers' is blank"),
    Row("blank question", "nq_open", nq_file(question=""), "nq.jsonl:1",
        r"field 'question' is empty"),
    Row("blank passage text", "nq_open", nq_file(ctxs=[changed(CTX, text=" ")]), "nq.jsonl:1",
        r"field 'text' is empty"),
]


def write_files(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
        if name.endswith(".gz") and not data.startswith(b"\x1f\x8b"):
            data = gzip.compress(data)
        path.write_bytes(data)


def load(loader: str, folder: Path, files: dict[str, str | bytes]) -> corpora.Corpus:
    """Call ``corpora.load`` with the options that point ``loader`` at ``files``."""
    names = list(files)
    if loader == "beir":
        return corpora.load("beir", path=folder)
    if loader == "flashrag":
        return corpora.load(
            "flashrag", corpus_path=folder / names[0], qa_paths={"test": folder / names[1]}
        )
    if loader == "jsonl" and len(names) == 2:
        return corpora.load("jsonl", path=folder / names[0], questions_path=folder / names[1])
    return corpora.load(loader, path=folder / names[0])


@pytest.mark.parametrize("row", [pytest.param(r, id=f"{r.loader}: {r.case}") for r in ROWS])
def test_bad_input_is_refused_with_file_and_line(tmp_path, row):
    write_files(tmp_path, row.files)
    expected = re.escape(f"{tmp_path / row.where}: ") + row.message
    with pytest.raises(CorpusFormatError, match=expected):
        load(row.loader, tmp_path, row.files)


VALID = {
    "jsonl": {"docs.jsonl": jsonl(DOC, DOC2, QUESTION)},
    "jsonl, two files": {"docs.jsonl": jsonl(DOC, DOC2), "questions.jsonl": jsonl(QUESTION)},
    "flashrag": flashrag(),
    "beir": beir(),
    "hotpotqa": {"hotpot.json": json_list(HOTPOT, HOTPOT2)},
    "musique": {"musique.jsonl": jsonl(MUSIQUE, MUSIQUE2)},
    "nq_open": {"nq.jsonl.gz": jsonl(NQ, NQ)},
}


@pytest.mark.parametrize("name", VALID)
def test_valid_baselines_load(tmp_path, name):
    """The control: the records the rows above break load as they are."""
    write_files(tmp_path, VALID[name])
    corpus = load(name.split(",")[0], tmp_path, VALID[name])
    assert corpus.documents and corpus.questions


# --- byte-order marks are accepted --------------------------------------------------------------

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("name", VALID)
def test_files_with_a_byte_order_mark_load_the_same(tmp_path, name):
    plain, marked = tmp_path / "plain", tmp_path / "marked"
    loader = name.split(",")[0]
    write_files(plain, VALID[name])
    write_files(marked, {k: BOM + v.encode() for k, v in VALID[name].items()})
    assert (marked / next(iter(VALID[name]))).read_bytes().startswith((BOM, b"\x1f\x8b"))
    want, got = load(loader, plain, VALID[name]), load(loader, marked, VALID[name])
    assert got.documents == want.documents and got.questions == want.questions
