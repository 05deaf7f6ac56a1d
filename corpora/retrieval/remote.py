r"""Client for a Search-R1-style retrieval server (``POST {url}/retrieve``).

Request: ``{"queries": [...], "topk": k, "return_scores": true}``. Response:
``{"result": [[{"document": {...}, "score": s}, ...], ...]}``, one list per query, best first.
The document is a row of the server's corpus: ``{"id": ..., "contents": '"Title"\\nText'}`` for
its dense retriever, ``{"title": ..., "text": ..., "contents": ...}`` (no id) for its BM25 one.
Only the standard library is used.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from corpora.records import Corpus, Document, split_contents
from corpora.retrieval.base import Hit
from corpora.retrieval.ranking import check_search_args

_ID_FIELDS = ("id", "doc_id", "_id", "docid")


class RemoteRetrievalError(RuntimeError):
    """The server could not be reached, failed, or answered in an unexpected shape."""


class RemoteRetriever:
    """Retriever that asks a Search-R1 retrieval server over HTTP.

    Hits keep the server's order and scores. A document's id is its ``id`` (or ``doc_id``,
    ``_id``, ``docid``) field as a string; documents without one (Search-R1's BM25 server) are
    identified by title, mapped to the local ``corpus`` doc id when a corpus with that title is
    given.

    Args:
        url: Server base URL, e.g. ``http://127.0.0.1:8000`` (``/retrieve`` is appended unless
            the URL already ends with it).
        corpus: Optional local copy of the server's corpus, used to map titles to doc ids.
        timeout: Seconds to wait for each HTTP request.
        batch_size: Queries per request.

    Attributes:
        corpus: The local corpus, or ``None``.
    """

    name = "remote"

    def __init__(
        self,
        url: str,
        corpus: Corpus | None = None,
        *,
        timeout: float = 60.0,
        batch_size: int = 256,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"RemoteRetriever needs an http(s) URL, got {url!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/retrieve") else base + "/retrieve"
        self.corpus = corpus
        self.timeout = timeout
        self.batch_size = batch_size
        self._by_title: dict[str, str] = {}
        if corpus is not None:
            for doc in corpus.documents:
                self._by_title.setdefault(doc.title, doc.doc_id)

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top ``k`` hits per query, as ranked by the server."""
        return [[hit for hit, _ in row] for row in self.search_documents(queries, k)]

    def search_documents(self, queries: list[str], k: int) -> list[list[tuple[Hit, Document]]]:
        """Like ``search``, with each hit's document as the server sent it."""
        check_search_args(queries, k)
        if k == 0:
            return [[] for _ in queries]
        out: list[list[tuple[Hit, Document]]] = []
        for start in range(0, len(queries), self.batch_size):
            batch = list(queries[start : start + self.batch_size])
            result = self._post({"queries": batch, "topk": k, "return_scores": True})
            if not isinstance(result, list) or len(result) != len(batch):
                raise RemoteRetrievalError(
                    f"{self.endpoint}: expected 'result' to hold {len(batch)} lists, one per "
                    f"query, got {type(result).__name__}"
                    + (f" of length {len(result)}" if isinstance(result, list) else "")
                )
            out.extend([self._parse_item(item) for item in row[:k]] for row in result)
        return out

    def _post(self, payload: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.endpoint,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode("utf-8", "replace")
            raise RemoteRetrievalError(
                f"{self.endpoint} answered HTTP {err.code}: {detail}"
            ) from err
        except (urllib.error.URLError, OSError) as err:
            raise RemoteRetrievalError(f"could not reach {self.endpoint}: {err}") from err
        try:
            data = json.loads(body)
        except ValueError as err:
            raise RemoteRetrievalError(f"{self.endpoint} did not answer JSON") from err
        if not isinstance(data, Mapping) or "result" not in data:
            raise RemoteRetrievalError(f"{self.endpoint}: expected a JSON object with 'result'")
        return data["result"]

    def _parse_item(self, item: Any) -> tuple[Hit, Document]:
        if isinstance(item, Mapping) and isinstance(item.get("document"), Mapping):
            raw, score = item["document"], item.get("score", 0.0)
        elif isinstance(item, Mapping):
            raw, score = item, 0.0  # a server that ignored return_scores
        else:
            raise RemoteRetrievalError(f"{self.endpoint}: unexpected hit {item!r:.200}")
        title, text = split_contents(str(raw.get("contents", "")))
        title = str(raw.get("title", title))
        text = str(raw.get("text", text))
        doc_id = next((str(raw[f]) for f in _ID_FIELDS if raw.get(f) is not None), None)
        if doc_id is None:
            doc_id = self._by_title.get(title, title)
        try:
            value = float(score)
        except (TypeError, ValueError) as err:
            raise RemoteRetrievalError(f"{self.endpoint}: non-numeric score {score!r}") from err
        return Hit(doc_id, value), Document(doc_id, title, text)
