import asyncio
import json
import logging

import pytest
from fastapi.testclient import TestClient

import corpora
from corpora.records import Corpus, Document, join_contents, split_contents
from corpora.retrieval import BM25Retriever, Hit
from corpora.retrieval.limits import ServeLimits
from corpora.retrieval.server import DEFAULT_TOPK, make_app


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return corpora.load("synthetic", size="tiny")


@pytest.fixture(scope="module")
def bm25(corpus) -> BM25Retriever:
    return BM25Retriever(corpus, cache=False)


@pytest.fixture(scope="module")
def client(bm25, corpus):
    with TestClient(make_app(bm25, corpus)) as client:
        yield client


def questions(corpus: Corpus, n: int = 6) -> list[str]:
    return [q.question for q in corpus.questions[:n]]


def test_results_equal_the_in_process_retrievers(client, bm25, corpus):
    queries = [*questions(corpus), "zzzz no such word", ""]
    reply = client.post("/retrieve", json={"queries": queries, "topk": 5, "return_scores": True})
    assert reply.status_code == 200
    result = reply.json()["result"]
    want = bm25.search(queries, 5)
    assert len(result) == len(queries)
    assert [[(r["document"]["id"], r["score"]) for r in row] for row in result] == [
        [(h.doc_id, h.score) for h in hits] for hits in want]  # scores exact, through JSON
    assert result[-1] == [] and result[-2] == []
    for row in result:
        for item in row:
            doc = corpus.by_id[item["document"]["id"]]
            assert item["document"]["contents"] == join_contents(doc.title, doc.text)
            assert split_contents(item["document"]["contents"]) == (doc.title, doc.text)
    assert sum(map(len, result)) > len(queries)  # the questions did find documents


def test_without_scores_rows_are_the_bare_documents(client, corpus):
    queries = questions(corpus, 3)
    scored = client.post("/retrieve", json={"queries": queries, "topk": 4,
                                            "return_scores": True}).json()["result"]
    for body in ({"queries": queries, "topk": 4, "return_scores": False},
                 {"queries": queries, "topk": 4}):  # Search-R1's default: no scores
        bare = client.post("/retrieve", json=body).json()["result"]
        assert bare == [[item["document"] for item in row] for row in scored]
        assert all(set(doc) == {"id", "contents"} for row in bare for doc in row)


def test_topk_left_out_or_null_is_search_r1s_default(client, bm25, corpus):
    queries = questions(corpus, 2)
    want = [[h.doc_id for h in hits] for hits in bm25.search(queries, DEFAULT_TOPK)]
    for body in ({"queries": queries}, {"queries": queries, "topk": None}):
        result = client.post("/retrieve", json=body).json()["result"]
        assert [[doc["id"] for doc in row] for row in result] == want
    assert client.post("/retrieve", json={"queries": queries, "topk": 0}).json() == {
        "result": [[], []]}
    assert client.post("/retrieve", json={"queries": []}).json() == {"result": []}


SMALL = ServeLimits(max_queries=2, max_query_chars=10, max_topk=5, max_body_bytes=200)


@pytest.fixture(scope="module")
def small(bm25, corpus):
    with TestClient(make_app(bm25, corpus, limits=SMALL)) as client:
        yield client


@pytest.mark.parametrize(
    "body, status, limit",
    [
        ({"queries": ["a", "b", "c"]}, 413, "max_queries"),
        ({"queries": ["a" * 11]}, 413, "max_query_chars"),
        ({"queries": ["a"], "topk": 6}, 422, "max_topk"),
        ({"queries": ["a"], "topk": -1}, 422, "max_topk"),
        ({"queries": ["a", "b"], "topk": 3, "pad": "x" * 200}, 413, "max_body_bytes"),
    ],
)
def test_each_limit_refuses_with_its_name_and_value(small, body, status, limit):
    reply = small.post("/retrieve", json=body)
    assert reply.status_code == status
    value = getattr(SMALL, limit)
    assert reply.json()["limit"] == limit and reply.json()["value"] == value
    assert f"{limit}={value}" in reply.json()["detail"]


def test_requests_at_the_limits_pass(small):
    body = json.dumps({"queries": ["a" * 10, "b"], "topk": 5}).encode()
    assert len(body) <= SMALL.max_body_bytes
    reply = small.post("/retrieve", content=body.ljust(SMALL.max_body_bytes),  # JSON allows
                       headers={"content-type": "application/json"})  # trailing spaces
    assert reply.status_code == 200 and len(reply.json()["result"]) == 2


def test_the_body_limit_counts_the_bytes_of_a_body_without_a_length(small):
    def chunks():
        yield b'{"queries": ["a"], "pad": "'
        for _ in range(10):
            yield b"x" * 50
        yield b'"}'

    reply = small.post("/retrieve", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and reply.json()["limit"] == "max_body_bytes"
    assert "content-length" not in {k.lower() for k in reply.request.headers}


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"queries": "one string"}',
        b'{"queries": [1, 2]}',
        b'{"topk": 3}',
        b'{"queries": ["a"], "top_k": 3}',  # a typo is refused, not ignored
        b'{"queries": ["a"], "topk": "3"}',
        b'{"queries": ["a"], "topk": 2.5}',
        b'{"queries": ["a"], "return_scores": "yes"}',
    ],
)
def test_malformed_bodies_are_422(client, content):
    reply = client.post("/retrieve", content=content, headers={"content-type": "application/json"})
    assert reply.status_code == 422, reply.text


def test_health_and_info(client, corpus):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["corpus"] == corpus.name and info["documents"] == len(corpus.documents)
    assert info["fingerprint"] == corpus.fingerprint and info["retriever"] == "bm25"
    assert info["limits"] == {"max_queries": 1024, "max_query_chars": 4096, "max_topk": 100,
                              "max_body_bytes": 8 * 2**20, "search_threads": 4}


class Recording:
    """A retriever that records its calls and whether it ran on the event loop's thread."""

    name = "recording"

    def __init__(self, corpus: Corpus) -> None:
        self.doc_id = corpus.documents[0].doc_id
        self.calls: list[tuple[list[str], int, bool]] = []

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        self.calls.append((list(queries), k, on_loop))
        return [[Hit(self.doc_id, 1.0)] for _ in queries]


def test_one_batched_search_per_request_off_the_event_loop(corpus):
    retriever = Recording(corpus)
    with TestClient(make_app(retriever, corpus)) as client:
        reply = client.post("/retrieve", json={"queries": ["a", "b", "c"], "topk": 2})
        assert client.get("/info").json()["retriever"] == "recording"
    assert reply.status_code == 200
    assert retriever.calls == [(["a", "b", "c"], 2, False)]


def test_one_log_line_per_request_only_at_debug(client, caplog):
    caplog.set_level(logging.INFO, logger="corpora.retrieval.server")
    client.get("/health")
    assert not caplog.records
    caplog.set_level(logging.DEBUG, logger="corpora.retrieval.server")
    client.post("/retrieve", json={"queries": ["x"], "topk": 1})
    client.post("/retrieve", json={"queries": "x"})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("POST /retrieve 200") and lines[1].startswith("POST /retrieve 422")


def test_limits_must_be_positive_integers():
    with pytest.raises(ValueError, match="limits.max_topk: expected a positive integer, got 0"):
        ServeLimits(max_topk=0)


def test_a_document_keeps_an_empty_title_and_quotes(tmp_path):
    corpus = Corpus("quotes", (Document("q", 'The "Best" Band', "They played loud."),
                               Document("e", "", "Untitled loud notes.")))
    with TestClient(make_app(BM25Retriever(corpus, cache=False), corpus)) as client:
        result = client.post("/retrieve", json={"queries": ["loud"], "topk": 2}).json()["result"]
    assert sorted(split_contents(doc["contents"]) for doc in result[0]) == [
        ("", "Untitled loud notes."), ('The "Best" Band', "They played loud.")]


class Carrying:
    """A retriever whose hits bring their own documents (as a remote retriever's do)."""

    name = "carrying"

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        elsewhere = Document("far/1", "Far Away", "A document the local corpus lacks.")
        return [[Hit(elsewhere.doc_id, 2.0, document=elsewhere)] for _ in queries]


def test_a_hit_that_carries_its_document_is_served_with_it(corpus):
    with TestClient(make_app(Carrying(), corpus)) as client:
        result = client.post("/retrieve", json={"queries": ["x"]}).json()["result"]
    assert result == [[{"id": "far/1",
                        "contents": '"Far Away"\nA document the local corpus lacks.'}]]
