"""Corpora of questions without documents: loadable, searchable remotely, refused locally."""

import json

import pytest

import corpora
from corpora import make_retriever
from corpora.retrieval import RemoteRetriever


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_jsonl_questions_file_alone(tmp_path):
    path = write_jsonl(tmp_path / "qs.jsonl", [
        {"qid": "a", "question": "Who?", "answers": ["Ada"], "supporting_ids": ["wiki-7", 12]},
        {"id": 3, "question": "When?", "answers": "1901", "split": "dev"},
    ])
    corpus = corpora.load("jsonl", questions_path=path)
    assert corpus.documents == ()
    a, b = corpus.questions
    # Supporting ids name the server's documents: kept as given, as there is nothing to check.
    assert (a.qid, a.supporting_ids, a.hops, a.split) == ("a", ("wiki-7", "12"), 2, "test")
    assert (b.qid, b.answers, b.split) == ("3", ("1901",), "dev")


def test_jsonl_still_checks_supporting_ids_against_a_documents_file(tmp_path):
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"doc_id": "d", "text": "Ada wrote it."}])
    qs = write_jsonl(tmp_path / "qs.jsonl", [
        {"qid": "a", "question": "Who?", "answers": ["Ada"], "supporting_ids": ["wiki-7"]}])
    with pytest.raises(corpora.formats.CorpusFormatError, match="'wiki-7' is not a document id"):
        corpora.load("jsonl", path=docs, questions_path=qs)


def test_jsonl_without_any_file_says_what_to_pass():
    with pytest.raises(ValueError, match="questions_path alone for a remote retriever"):
        corpora.load("jsonl")


def test_flashrag_qa_files_alone(tmp_path):
    qa = write_jsonl(tmp_path / "test.jsonl", [{"question": "Who?", "golden_answers": ["Ada"]}])
    corpus = corpora.load("flashrag", qa_paths={"test": qa})
    assert corpus.documents == () and [q.qid for q in corpus.questions] == ["test-0"]
    with pytest.raises(ValueError, match="qa_paths alone for a remote retriever"):
        corpora.load("flashrag")


@pytest.mark.parametrize("kind", ["bm25", "rank_bm25", "dense", "hybrid"])
def test_local_retrievers_refuse_a_corpus_without_documents(tmp_path, kind):
    qs = write_jsonl(tmp_path / "qs.jsonl", [{"qid": "a", "question": "Who?", "answers": "Ada"}])
    corpus = corpora.load("jsonl", questions_path=qs)
    with pytest.raises(ValueError, match=r"has no documents \(only 1 questions\).*path=.*"
                                         "retriever=remote"):
        make_retriever(kind, corpus)
    assert isinstance(make_retriever("remote", corpus, url="http://127.0.0.1:9"), RemoteRetriever)
