"""``ServeLimits``: the bounds on ``forksearch-serve``'s requests.

Apart from ``corpora.retrieval.server`` so that the CLI schemas hold them without importing
FastAPI (half a second more for every CLI).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class ServeLimits:
    """Bounds on one request, and on the searches one server process runs at once.

    Attributes:
        max_queries: Queries in one request (Search-R1 sends a whole rollout batch at once;
            ``RemoteRetriever`` sends 256 by default).
        max_query_chars: Characters in one query.
        max_topk: Largest ``topk``.
        max_body_bytes: Bytes in a request body, checked on ``Content-Length`` and on the
            bytes actually received (a chunked body has no length).
        search_threads: ``retriever.search`` calls running at once in one process; more
            requests wait their turn.
    """

    max_queries: int = 1024
    max_query_chars: int = 4096
    max_topk: int = 100
    max_body_bytes: int = 8 * 2**20
    search_threads: int = 4

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limits.{name}: expected a positive integer, got {value!r}")
