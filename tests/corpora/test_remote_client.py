"""RemoteRetriever against a stub server whose behaviour each case sets.

Every case runs with a short deadline and asserts both its outcome (hits, or a
RemoteRetrievalError naming the problem) and that the call ended within the deadline.
"""

import copy
import pickle
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from corpora import Document, Hit
from corpora.retrieval import RemoteRetrievalError, RemoteRetriever

DEADLINE = 1.0
SLACK = 1.0  # thread start-up and a loaded CI machine; far below what a missed deadline costs
QUERIES = ["who wrote it", "where is it"]


def rows(request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """One hit per query: a document the client has never seen, with its id and contents."""
    return [
        [{"document": {"id": f"srv-{i}", "contents": f'"Title {i}"\nText about {q}.'},
          "score": 2.5 - i}]
        for i, q in enumerate(request["queries"])
    ]


WANT = [
    [Hit("srv-0", 2.5, Document("srv-0", "Title 0", "Text about who wrote it."))],
    [Hit("srv-1", 1.5, Document("srv-1", "Title 1", "Text about where is it."))],
]


def ok(handler, request):
    return 200, {"result": rows(request)}


def hang(handler, request):
    handler.server.stopping.wait(30)


def cut_short(handler, request):
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.write(b'{"result": [')
    handler.close_connection = True


def trickle_body(handler, request):
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(1000):
        if handler.server.stopping.wait(0.05):
            return
        handler.wfile.write(b" ")
        handler.wfile.flush()


def trickle_headers(handler, request):
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for _ in range(1000):
        if handler.server.stopping.wait(0.05):
            return
        handler.wfile.write(b"X")
        handler.wfile.flush()


def bad_status_line(handler, request):
    handler.wfile.write(b"NONSENSE\r\n\r\n")
    handler.close_connection = True


def result(payload: Any) -> Callable:
    return lambda handler, request: (200, payload)


def hit_rows(*hit: Any) -> Callable:
    """Every query answered with the same row of raw hits."""
    return lambda handler, request: (200, {"result": [list(hit)] * len(request["queries"])})


def doc(**fields: Any) -> dict[str, Any]:
    return {"document": {"id": "d", **fields}, "score": 1.0}


@dataclass
class Case:
    name: str
    answers: list[Callable]  # the server's answer to request 1, 2, ... (the last one repeats)
    want: list[list[Hit]] | None = None  # the hits, or None for an error ...
    error: str = ""  # ... matching this
    requests: int | None = None  # how many requests the server should see
    options: dict[str, Any] = field(default_factory=dict)


def status(code: int, body: Any = None) -> Callable:
    return lambda handler, request: (code, body if body is not None else {"detail": "boom"})


CASES = [
    Case("ok", [ok], want=WANT, requests=1),
    Case("500 then 200: retried", [status(500), ok], want=WANT, requests=2),
    Case("503 twice then 200", [status(503), status(503), ok], want=WANT, requests=3),
    Case("always 500: retries spent", [status(500, b"index exploded")],
         error=r"HTTP 500: 'index exploded'.*gave up after 3 attempts, retries=2 spent",
         requests=3),
    Case("404: not retried", [status(404)], error=r"HTTP 404.*check url=", requests=1),
    Case("hangs", [hang], error=r"deadline of 1 s", requests=1),
    Case("hangs, timeout first", [hang], error=r"did not answer within timeout=0\.3 s.*3 attempts",
         requests=3, options={"timeout": 0.3, "deadline": 3.0}),
    Case("malformed JSON", [result(b"{'result': oops")], error=r"malformed response: not JSON",
         requests=1),
    Case("HTML error page", [result(b"<html>hi</html>")], error="not JSON", requests=1),
    Case("closes mid-body", [cut_short], error=r"broke off or garbled.*3 attempts", requests=3),
    Case("bad status line", [bad_status_line], error="broke off or garbled", requests=3),
    Case("trickles the body", [trickle_body], error=r"deadline of 1 s"),
    Case("trickles the headers", [trickle_headers], error=r"deadline of 1 s"),
    Case("no result", [result({"results": []})], error=r"no 'result'", requests=1),
    Case("a list, not an object", [result([[]])], error=r"no 'result'", requests=1),
    Case("too few rows", [result({"result": [[]]})], error=r"hold 2 lists.*got list of 1"),
    Case("result not a list", [result({"result": "x"})], error=r"hold 2 lists.*got str"),
    Case("null row", [result({"result": [None, []]})], error=r"result\[0\] is null"),
    Case("empty rows", [hit_rows()], want=[[], []]),
    Case("dict rows", [result({"result": [{"document": {"id": "d", "contents": "x"}}] * 2})],
         error=r"result\[0\] is dict .*expected a list of hits"),
    Case("null hit", [hit_rows(None)], error=r"result\[0\]\[0\] is null, expected an object"),
    Case("str hit", [hit_rows("doc")], error=r"result\[0\]\[0\] is str"),
    Case("null document", [hit_rows({"document": None, "score": 1})],
         error=r"result\[0\]\[0\]\.document is null"),
    Case("string score", [hit_rows(doc(contents="x\ny") | {"score": "high"})],
         error=r"score is str 'high', expected a finite number"),
    Case("bool score", [hit_rows(doc(contents="x\ny") | {"score": True})], error="score is bool"),
    Case("NaN score", [result(b'{"result": [[{"document": {"contents": "a"}, "score": NaN}], '
                              b'[]]}')], error="score is float nan"),
    Case("huge int score", [hit_rows(doc(contents="x") | {"score": 10**400})],
         error="expected a finite number"),
    Case("no contents", [hit_rows(doc(title="T"))], error=r"no 'contents' \(nor 'text'\)"),
    Case("contents not text", [hit_rows(doc(contents=7))], error=r"'contents' is int 7"),
    Case("list id", [hit_rows({"document": {"id": [1], "contents": "x"}, "score": 1})],
         error=r"the id is list"),
    Case("unknown ids with contents", [ok], want=WANT),
    Case("title and text fields, no id, no scores",
         [hit_rows({"title": "Velora", "text": "A city.", "contents": '"Velora"\nA city.'})],
         want=[[Hit("Velora", 0.0, Document("Velora", "Velora", "A city."))]] * 2),
    Case("more than k hits: the first k", [hit_rows(doc(contents="a"), doc(contents="b"),
                                                    doc(contents="c"))],
         want=[[Hit("d", 1.0, Document("d", "", "a")), Hit("d", 1.0, Document("d", "", "b"))]] * 2),
    Case("lone surrogate", [result(b'{"result": [[{"document": {"id": 5, "contents": '
                                   b'"\\"T\\ud800\\"\\nx"}, "score": 1}], []]}')],
         want=[[Hit("5", 1.0, Document("5", "T?", "x"))], []]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_remote_client(case, retrieval_server):
    seen: list[dict[str, Any]] = []

    def answer(handler, request):
        seen.append(request)
        return case.answers[min(len(seen), len(case.answers)) - 1](handler, request)

    options = {"deadline": DEADLINE, "retries": 2, "timeout": 10.0, **case.options}
    retriever = RemoteRetriever(retrieval_server(answer), **options)
    start = time.monotonic()
    if case.error:
        with pytest.raises(RemoteRetrievalError, match=case.error):
            retriever.search(QUERIES, 2)
    else:
        hits = retriever.search(QUERIES, 2)
        assert hits == case.want
        # Hit equality ignores documents: compare them too.
        assert [[h.document for h in row] for row in hits] == [
            [h.document for h in row] for row in case.want]
    elapsed = time.monotonic() - start
    assert elapsed < options["deadline"] + SLACK, f"{case.name} took {elapsed:.2f} s"
    if case.requests is not None:
        assert len(seen) == case.requests
    assert seen[0] == {"queries": QUERIES, "topk": 2, "return_scores": True}


def test_trickling_server_fails_at_the_deadline_not_before(retrieval_server):
    retriever = RemoteRetriever(retrieval_server(trickle_body), deadline=0.8, timeout=10)
    start = time.monotonic()
    with pytest.raises(RemoteRetrievalError, match="deadline of 0.8 s"):
        retriever.search(QUERIES, 1)
    assert 0.75 < time.monotonic() - start < 0.8 + SLACK


def test_timeout_bounds_a_whole_request_without_a_deadline(retrieval_server):
    retriever = RemoteRetriever(retrieval_server(trickle_body), timeout=0.4, retries=1)
    start = time.monotonic()
    with pytest.raises(RemoteRetrievalError, match="within timeout=0.4 s.*2 attempts"):
        retriever.search(QUERIES, 1)
    assert time.monotonic() - start < 2 * 0.4 + 0.25 + SLACK  # two attempts and one backoff


def test_the_deadline_covers_every_batch(retrieval_server):
    def slow_ok(handler, request):
        time.sleep(0.3)
        return ok(handler, request)

    retriever = RemoteRetriever(retrieval_server(slow_ok), deadline=1.0, batch_size=1)
    start = time.monotonic()
    with pytest.raises(RemoteRetrievalError, match="deadline of 1 s"):
        retriever.search(["q"] * 10, 1)
    assert time.monotonic() - start < 1.0 + SLACK
    assert len(retriever.search(["q"] * 2, 1)) == 2  # a fresh call has a fresh deadline


def test_deadline_cut_short_attempt_names_the_failure_before_it(retrieval_server):
    answers = iter([status(500, b"disk full"), hang])
    retriever = RemoteRetriever(retrieval_server(lambda h, r: next(answers)(h, r)), deadline=1.0)
    with pytest.raises(RemoteRetrievalError, match=r"deadline.*attempt 1: .*HTTP 500: 'disk full'"):
        retriever.search(["q"], 1)


def test_connections_are_reused(retrieval_server):
    ports = []

    def answer(handler, request):
        ports.append(handler.client_address[1])
        return ok(handler, request)

    with RemoteRetriever(retrieval_server(answer), batch_size=1) as retriever:
        retriever.search(QUERIES, 1)
        retriever.search(QUERIES, 1)
    assert len(ports) == 4 and len(set(ports)) == 1


def test_unreachable_server_is_retried_then_named():
    with socket.socket() as sock:  # a port that was free a moment ago, and nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    retriever = RemoteRetriever(f"http://127.0.0.1:{port}", retries=1, deadline=DEADLINE)
    with pytest.raises(RemoteRetrievalError, match=r"could not reach .*running there.*2 attempts"):
        retriever.search(["q"], 1)


def test_nothing_is_sent_for_k_zero_or_no_queries(retrieval_server):
    seen = []
    retriever = RemoteRetriever(retrieval_server(lambda h, r: seen.append(r)))
    assert retriever.search(["a", "b"], 0) == [[], []]
    assert retriever.search([], 3) == []
    assert seen == []


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"url": "127.0.0.1:8000"}, "http"),
        ({"batch_size": 0}, "batch_size"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": None}, "timeout"),
        ({"deadline": -1}, "deadline"),
        ({"deadline": float("inf")}, "deadline"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
    ],
)
def test_bad_options_are_refused(options, error):
    with pytest.raises(ValueError, match=error):
        RemoteRetriever(**{"url": "http://127.0.0.1:9", **options})


def test_copies_and_pickles_work_with_their_own_connections(retrieval_server):
    retriever = RemoteRetriever(retrieval_server(ok), deadline=DEADLINE)
    for twin in (copy.deepcopy(retriever), pickle.loads(pickle.dumps(retriever))):
        assert twin.search(QUERIES, 1) == WANT and twin._client is not retriever._client
