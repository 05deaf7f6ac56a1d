r"""Client for a Search-R1-style retrieval server (``POST {url}/retrieve``).

Request: ``{"queries": [...], "topk": k, "return_scores": true}``. Response:
``{"result": [[{"document": {...}, "score": s}, ...], ...]}``, one list per query, best first.
The document is a row of the server's corpus: ``{"id": ..., "contents": '"Title"\\nText'}`` for
its dense retriever, ``{"title": ..., "text": ..., "contents": ...}`` (no id) for its BM25 one.
Each hit carries the document the server sent (``Hit.document``), so no local copy of the
server's corpus is needed.

Every failure raises ``RemoteRetrievalError``, with a message that says what went wrong and
what to do: an unreachable server, an HTTP error, a timeout, a missed deadline, a response of
the wrong shape. Connection errors, timeouts and 5xx answers are retried with exponential
backoff; 4xx answers and malformed responses are not (asking again gives the same answer).
``timeout`` bounds one HTTP request from connecting to its last byte, ``deadline`` a whole
``search`` call (all batches and retries), both even against a server that trickles bytes.
HTTP goes through one ``httpx.Client`` per retriever (connections are reused), retries through
``tenacity``.
"""

from __future__ import annotations

import json
import math
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from corpora.records import Corpus, Document, split_contents
from corpora.retrieval.base import Hit
from corpora.retrieval.ranking import check_search_args

_ID_FIELDS = ("id", "doc_id", "_id", "docid")
#: Backoff before retry n (from 1): 0.25 * 2 ** (n - 1) seconds, at most 4.
_BACKOFF_S, _MAX_BACKOFF_S = 0.25, 4.0
_EXPECTED_SHAPE = (
    "Search-R1's retrieval API answers "
    '{"result": [[{"document": {"id": ..., "contents": ...}, "score": ...}, ...], ...]}'
)


class RemoteRetrievalError(RuntimeError):
    """The server could not be reached, failed, or answered in an unexpected shape."""


class _TransientError(RemoteRetrievalError):
    """A failure that asking again may cure: connection trouble, a timeout, an HTTP 5xx."""


class RemoteRetriever:
    """Retriever that asks a Search-R1 retrieval server over HTTP.

    Hits keep the server's order and scores and carry the server's document
    (``Hit.document``). A document's id is its ``id`` (or ``doc_id``, ``_id``, ``docid``) field
    as a string; documents without one (Search-R1's BM25 server) are identified by title,
    mapped to the local ``corpus`` doc id when a corpus with that title is given.

    Args:
        url: Server base URL, e.g. ``http://127.0.0.1:8000`` (``/retrieve`` is appended unless
            the URL already ends with it).
        corpus: Optional local copy of the server's corpus, used to map titles to doc ids.
        timeout: Seconds one HTTP request may take in all (connect, send, whole answer).
        batch_size: Queries per request.
        deadline: Seconds one ``search`` call may take in all (every batch and retry), or
            ``None`` for no limit beyond ``timeout`` per request.
        retries: Further attempts after a connection error, a timeout or an HTTP 5xx answer.

    Attributes:
        corpus: The local corpus, or ``None``.

    Raises:
        RemoteRetrievalError: From ``search``, for every failure (see the module docstring).
    """

    name = "remote"

    def __init__(
        self,
        url: str,
        corpus: Corpus | None = None,
        *,
        timeout: float = 60.0,
        batch_size: int = 256,
        deadline: float | None = None,
        retries: int = 2,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"RemoteRetriever needs an http(s) URL, got {url!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for option, value in (("timeout", timeout), ("deadline", deadline)):
            if (value is not None or option == "timeout") and not _seconds(value):
                raise ValueError(f"{option} must be a number of seconds > 0, got {value!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/retrieve") else base + "/retrieve"
        self.corpus = corpus
        self.timeout = float(timeout)
        self.batch_size = batch_size
        self.deadline = None if deadline is None else float(deadline)
        self.retries = retries
        self._by_title: dict[str, str] = {}
        if corpus is not None:
            for doc in corpus.documents:
                self._by_title.setdefault(doc.title, doc.doc_id)
        self._connect()

    def _connect(self) -> None:
        self._client = httpx.Client(
            headers={"Content-Type": "application/json", "Accept": "application/json"}
        )
        # A retriever dropped without close() still closes its sockets.
        self._closer = weakref.finalize(self, self._client.close)

    def close(self) -> None:
        """Close the pooled connections; the retriever reconnects if used again."""
        self._closer()
        self._connect()

    def __getstate__(self) -> dict[str, Any]:
        # An httpx.Client (locks, sockets) cannot be pickled or deep-copied, and
        # gymnasium.make deep-copies its arguments: a copy gets a client of its own.
        state = self.__dict__.copy()
        del state["_client"], state["_closer"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._connect()

    def __enter__(self) -> RemoteRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top ``k`` hits per query as ranked by the server, each with its document."""
        check_search_args(queries, k)
        if k == 0:
            return [[] for _ in queries]
        end = math.inf if self.deadline is None else time.monotonic() + self.deadline
        out: list[list[Hit]] = []
        for start in range(0, len(queries), self.batch_size):
            batch = list(queries[start : start + self.batch_size])
            result = self._post({"queries": batch, "topk": k, "return_scores": True}, end)
            out.extend(self._parse_result(result, len(batch), k))
        return out

    def search_documents(self, queries: list[str], k: int) -> list[list[tuple[Hit, Document]]]:
        """Like ``search``, with each hit paired with its document."""
        return [
            [(hit, hit.document) for hit in row if hit.document is not None]
            for row in self.search(queries, k)
        ]

    # --- HTTP ----------------------------------------------------------------------------------

    def _post(self, payload: dict[str, Any], end: float) -> Any:
        """The ``result`` of one request, retried while transient failures and time allow."""
        body = json.dumps(payload).encode("utf-8")
        wait = wait_exponential(multiplier=_BACKOFF_S, max=_MAX_BACKOFF_S)

        def stop(state: RetryCallState) -> bool:
            # Give up when the attempts are spent or the backoff would reach the deadline.
            return state.attempt_number > self.retries or wait(state) >= end - time.monotonic()

        failures: list[str] = []

        def remember(state: RetryCallState) -> None:
            if state.outcome is not None:
                failures.append(str(state.outcome.exception()))

        def give_up(state: RetryCallState) -> Any:
            error = state.outcome.exception() if state.outcome is not None else None
            tries = state.attempt_number
            why = (f"retries={self.retries} spent" if tries > self.retries
                   else "no time left before the deadline")
            # A last attempt cut short by the deadline says little: name the failure before it.
            before = ""
            if failures and failures[-1] != str(error):
                before = f"; attempt {tries - 1}: {failures[-1]}"
            raise RemoteRetrievalError(
                f"{error} (gave up after {tries} attempt{'s' * (tries > 1)}, {why}{before})"
            ) from error

        retrying = Retrying(
            retry=retry_if_exception_type(_TransientError),
            stop=stop,
            wait=wait,
            before_sleep=remember,
            retry_error_callback=give_up,
        )
        return retrying(self._attempt, body, end)

    def _attempt(self, body: bytes, end: float) -> Any:
        """One request, limited to ``timeout`` and to the time left before ``end``."""
        left = end - time.monotonic()
        if left <= 0:
            raise RemoteRetrievalError(self._deadline_message())
        limit = min(self.timeout, left)
        # httpx's timeouts bound each network operation, not the whole request: a server that
        # trickles bytes (or headers) would never trip them. The request therefore runs in a
        # worker thread that this thread waits for at most ``limit``; the worker also stops
        # reading once told to, so an abandoned request ends soon after.
        outcome: list[tuple[int, bytes] | BaseException] = []
        cancel = threading.Event()
        worker = threading.Thread(
            target=self._exchange, args=(body, limit, cancel, outcome), daemon=True
        )
        worker.start()
        worker.join(limit)
        if not outcome:
            cancel.set()
            raise self._out_of_time(limit)
        answer = outcome[0]
        if isinstance(answer, BaseException):
            raise answer
        status, content = answer
        if status >= 500:
            raise _TransientError(
                f"{self.endpoint} answered HTTP {status}: {_snippet(content)}; the server "
                "failed: see its log"
            )
        if not 200 <= status < 300:
            raise RemoteRetrievalError(
                f"{self.endpoint} answered HTTP {status}: {_snippet(content)}; check url= (it "
                "must name a Search-R1 retrieval server) and the server's log"
            )
        return self._result(content)

    def _exchange(
        self,
        body: bytes,
        limit: float,
        cancel: threading.Event,
        outcome: list[tuple[int, bytes] | BaseException],
    ) -> None:
        """Send the request and read the whole answer (in a worker thread): ``outcome``."""
        stop_at = time.monotonic() + limit
        try:
            with self._client.stream(
                "POST", self.endpoint, content=body, timeout=httpx.Timeout(limit)
            ) as response:
                chunks = []
                for chunk in response.iter_bytes():
                    if cancel.is_set() or time.monotonic() > stop_at:
                        return  # the caller has given up on this attempt
                    chunks.append(chunk)
                outcome.append((response.status_code, b"".join(chunks)))
        except httpx.TimeoutException:
            outcome.append(self._out_of_time(limit))
        except httpx.ConnectError as err:
            outcome.append(_TransientError(
                f"could not reach {self.endpoint} ({err}); is the retrieval server running "
                "there?"
            ))
        except (httpx.NetworkError, httpx.RemoteProtocolError) as err:
            # A dropped connection, or an answer cut short or garbled: a server in trouble.
            outcome.append(_TransientError(
                f"{self.endpoint} broke off or garbled its answer ({type(err).__name__}: "
                f"{err}); see the server's log"
            ))
        except httpx.HTTPError as err:
            outcome.append(RemoteRetrievalError(
                f"request to {self.endpoint} failed ({type(err).__name__}: {err}); check url="
            ))
        except BaseException as err:  # a bug, not a server failure: the caller re-raises it
            outcome.append(err)

    def _out_of_time(self, limit: float) -> _TransientError:
        """The error of an attempt that ran out of its ``limit`` seconds."""
        if limit < self.timeout:  # the deadline, not the timeout, set the limit
            return _TransientError(self._deadline_message())
        return _TransientError(
            f"{self.endpoint} did not answer within timeout={self.timeout:g} s; is the server "
            "overloaded? Raise timeout= or lower batch_size="
        )

    def _deadline_message(self) -> str:
        return (
            f"{self.endpoint}: the search ran past its deadline of {self.deadline:g} s; raise "
            "deadline= or lower batch_size=, or check that the server is healthy"
        )

    # --- the response's shape ------------------------------------------------------------------

    def _result(self, content: bytes) -> Any:
        try:
            data = json.loads(content)
        except (ValueError, RecursionError) as err:
            raise self._malformed(f"not JSON ({_snippet(content)})") from err
        if not isinstance(data, Mapping) or "result" not in data:
            raise self._malformed(f"no 'result' in {_snippet(content)}")
        return data["result"]

    def _parse_result(self, result: Any, n: int, k: int) -> list[list[Hit]]:
        if not isinstance(result, list) or len(result) != n:
            got = type(result).__name__ + (f" of {len(result)}" if isinstance(result, list) else "")
            raise self._malformed(f"expected 'result' to hold {n} lists, one per query, got {got}")
        rows = []
        for qi, row in enumerate(result):
            if not isinstance(row, list):
                raise self._malformed(f"result[{qi}] is {_kind(row)}, expected a list of hits")
            # A server that sends more than k hits has only ignored topk: keep the best k.
            rows.append([self._parse_hit(item, f"result[{qi}][{i}]")
                         for i, item in enumerate(row[:k])])
        return rows

    def _parse_hit(self, item: Any, where: str) -> Hit:
        if not isinstance(item, Mapping):
            raise self._malformed(f"{where} is {_kind(item)}, expected an object")
        if "document" in item:
            raw, score = item["document"], item.get("score", 0.0)
            if not isinstance(raw, Mapping):
                raise self._malformed(f"{where}.document is {_kind(raw)}, expected an object")
        else:
            raw, score = item, 0.0  # a server that ignored return_scores sends bare documents
        if not _finite(score):
            raise self._malformed(f"{where}.score is {_kind(score)}, expected a finite number")
        fields: dict[str, str | None] = {}
        for name in ("contents", "title", "text"):
            value = raw.get(name)
            if value is not None and not isinstance(value, str):
                raise self._malformed(f"{where}: '{name}' is {_kind(value)}, expected a string")
            fields[name] = value
        if fields["contents"] is None and fields["text"] is None:
            raise self._malformed(f"{where}: the document has no 'contents' (nor 'text')")
        title, text = split_contents(fields["contents"] or "")
        title = _clean(fields["title"] if fields["title"] is not None else title)
        text = _clean(fields["text"] if fields["text"] is not None else text)
        doc_id = next((raw[f] for f in _ID_FIELDS if raw.get(f) is not None), None)
        if doc_id is None:
            doc_id = self._by_title.get(title, title)
        elif isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise self._malformed(f"{where}: the id is {_kind(doc_id)}, expected a string")
        doc_id = _clean(str(doc_id))
        return Hit(doc_id, float(score), Document(doc_id, title, text))

    def _malformed(self, what: str) -> RemoteRetrievalError:
        return RemoteRetrievalError(
            f"{self.endpoint} sent a malformed response: {what}. {_EXPECTED_SHAPE}; check that "
            "url= names such a server"
        )


def _finite(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (``bool`` is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range
        return False


def _seconds(value: Any) -> bool:
    return _finite(value) and value > 0


def _snippet(content: bytes, limit: int = 200) -> str:
    text = content[:limit].decode("utf-8", "replace")
    return repr(text) + ("..." if len(content) > limit else "")


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r:.60}"


def _clean(text: str) -> str:
    """``text`` with lone surrogates (JSON may escape them) replaced, so it encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
