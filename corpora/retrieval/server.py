r"""A Search-R1-compatible retrieval service over any retriever: ``make_app(retriever, corpus)``.

The API is the one Search-R1's retrieval server speaks (and ``RemoteRetriever`` asks):

* ``POST /retrieve`` with ``{"queries": [...], "topk": k, "return_scores": true}`` answers
  ``{"result": [[{"document": {"id": ..., "contents": '"Title"\nText'}, "score": s}, ...], ...]}``,
  one list per query, best first (``join_contents`` writes ``contents``). With
  ``return_scores: false`` (Search-R1's default) each row holds the bare documents. ``topk``
  may be left out or ``null`` (3, as in Search-R1). Unknown fields are refused (422), so a typo
  such as ``top_k`` is not silently ignored.
* ``GET /health``: ``{"status": "ok"}`` once the index is loaded.
* ``GET /info``: corpus name, fingerprint and document count, retriever name, limits.

Every request is bounded (:class:`ServeLimits`); a request over a limit is refused with 413
(the body, the number of queries, a query's length) or 422 (``topk``) and a JSON body
``{"detail": ..., "limit": <name>, "value": <the limit>}``. A request's queries are one batched
``retriever.search(queries, k)`` call, run in a worker thread so the event loop keeps serving.

``app_from_env`` builds the app from a JSON spec in ``$FORKSEARCH_SERVE_SPEC``: it is the
factory that ``forksearch-serve workers=N`` hands to each uvicorn worker process. It needs only
``corpora`` (no torch for lexical retrievers), so a worker starts in about a second.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import asdict
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

import corpora
from corpora.records import Corpus, join_contents
from corpora.retrieval.base import Hit, Retriever
from corpora.retrieval.limits import ServeLimits

#: The environment variable that carries a worker's spec (see :func:`app_from_env`).
SPEC_ENV = "FORKSEARCH_SERVE_SPEC"
#: ``topk`` of a request that leaves it out (Search-R1's ``retrieval_topk`` default).
DEFAULT_TOPK = 3

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RetrieveRequest(BaseModel):
    """The body of ``POST /retrieve`` (strict: no strings for numbers, no unknown fields)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    queries: list[str]
    topk: int | None = None
    return_scores: bool = False


def limit_error(status: int, limit: str, value: int, message: str) -> JSONResponse:
    """The JSON answer to a request over ``limit``: its name, its value and what was wrong."""
    return JSONResponse({"detail": f"{message} (limit {limit}={value})", "limit": limit,
                         "value": value}, status_code=status)


class BodyLimit:
    """ASGI middleware that refuses a request body over ``max_bytes`` with 413.

    The declared ``Content-Length`` is checked before reading anything; the body is then read
    (counting the bytes, since a chunked body declares no length) and handed on whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse an oversized body with 413, or pass the request on with its body read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await JSONResponse({"detail": "Content-Length is not an integer"},
                                   status_code=400)(scope, receive, send)
                return
            if length > self.max_bytes:
                await self._refuse(scope, receive, send, f"a body of {length} bytes")
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, f"a body over {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, got: str) -> None:
        response = limit_error(413, "max_body_bytes", self.max_bytes,
                               f"request body too large: {got}")
        await response(scope, receive, send)


class RequestLog:
    """ASGI middleware: one DEBUG line per request (method, path, status, body bytes, time).

    It replaces uvicorn's access log (off by default), and costs nothing above DEBUG.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; log it once answered (at DEBUG only)."""
        if scope["type"] != "http" or not log.isEnabledFor(logging.DEBUG):
            await self.app(scope, receive, send)
            return
        start, status, received = time.perf_counter(), 0, 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counted_receive, status_send)
        finally:
            log.debug("%s %s %d, %d bytes in, %.1f ms", scope["method"], scope["path"], status,
                      received, 1000 * (time.perf_counter() - start))


def make_app(
    retriever: Retriever,
    corpus: Corpus,
    *,
    limits: ServeLimits | None = None,
    retriever_name: str | None = None,
) -> FastAPI:
    """The FastAPI app serving ``retriever`` (over ``corpus``) with Search-R1's API.

    Args:
        retriever: Any retriever; its hits' ids must be ``corpus`` doc ids, unless a hit
            carries its own document (``Hit.document``, as a remote retriever's do).
        corpus: The documents, for ``contents`` and ``/info``.
        limits: Request bounds; default ``ServeLimits()``.
        retriever_name: Its name in ``/info``; default its ``name`` attribute.
    """
    limits = limits if limits is not None else ServeLimits()
    name = retriever_name or str(getattr(retriever, "name", type(retriever).__name__))
    by_id = corpus.by_id
    searches = anyio.CapacityLimiter(limits.search_threads)
    info = {"corpus": corpus.name, "fingerprint": corpus.fingerprint,
            "documents": len(corpus.documents), "retriever": name, "limits": asdict(limits)}
    app = FastAPI(title="forksearch retrieval service", docs_url=None, redoc_url=None,
                  openapi_url=None)

    def document(hit: Hit) -> dict[str, str]:
        doc = hit.document if hit.document is not None else by_id[hit.doc_id]
        return {"id": hit.doc_id, "contents": join_contents(doc.title, doc.text)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    async def get_info() -> dict[str, Any]:
        return info

    @app.post("/retrieve", response_model=None)
    async def retrieve(request: RetrieveRequest) -> JSONResponse:
        queries, k = request.queries, request.topk if request.topk is not None else DEFAULT_TOPK
        if len(queries) > limits.max_queries:
            return limit_error(413, "max_queries", limits.max_queries,
                               f"too many queries: {len(queries)}")
        longest = max(map(len, queries), default=0)
        if longest > limits.max_query_chars:
            return limit_error(413, "max_query_chars", limits.max_query_chars,
                               f"a query of {longest} characters")
        if not 0 <= k <= limits.max_topk:
            return limit_error(422, "max_topk", limits.max_topk,
                               f"topk must be in [0, {limits.max_topk}], got {k}")
        hits = await anyio.to_thread.run_sync(retriever.search, list(queries), k,
                                              limiter=searches)
        if request.return_scores:
            result: list[list[Any]] = [
                [{"document": document(h), "score": float(h.score)} for h in row] for row in hits]
        else:
            result = [[document(h) for h in row] for row in hits]
        # A JSONResponse skips FastAPI's response validation and encoding: the rows are plain.
        return JSONResponse({"result": result})

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(RequestLog)  # outermost: refused requests are logged too
    return app


def app_from_spec(spec: Mapping[str, Any]) -> FastAPI:
    """Load the corpus and retriever a spec names and serve them.

    Args:
        spec: ``{"corpus": {"name": ..., **options}, "retriever": {"name": ..., **options},
            "limits": {...}}``, as ``forksearch-serve`` writes it.
    """
    corpus_options, retriever_options = dict(spec["corpus"]), dict(spec["retriever"])
    corpus = corpora.load(corpus_options.pop("name"), **corpus_options)
    kind = retriever_options.pop("name")
    retriever = corpora.make_retriever(kind, corpus, **retriever_options)
    return make_app(retriever, corpus, limits=ServeLimits(**spec.get("limits", {})),
                    retriever_name=kind)


def app_from_env() -> FastAPI:
    """The app of the JSON spec in ``$FORKSEARCH_SERVE_SPEC`` (see :func:`app_from_spec`)."""
    raw = os.environ.get(SPEC_ENV)
    if raw is None:
        raise RuntimeError(f"app_from_env needs ${SPEC_ENV}: start workers with forksearch-serve")
    return app_from_spec(json.loads(raw))
