"""``forksearch-serve``: serve a corpus's retriever over HTTP with Search-R1's API.

    forksearch-serve                                  # synthetic corpus, bm25, 127.0.0.1:8000
    forksearch-serve corpus=hotpotqa retriever=dense port=8001
    forksearch-serve workers=4 limits.max_queries=512 log_level=debug

The API (``POST /retrieve``, ``GET /health``, ``GET /info``) and the limits are those of
``corpora.retrieval.server``; ``corpora.make_retriever("remote", url=...)`` is its client.

The index is built (or loaded from the index cache) once, here, before the port opens. With
``workers=1`` this process serves it. With ``workers > 1`` each uvicorn worker process loads the
corpus and the cached index (``corpora.retrieval.server.app_from_env``): a ``bm25`` index is
memory-mapped, so the workers share one copy of it through the page cache, while each worker
holds its own corpus (for the documents' text) and, for ``dense``, its own encoder and
embeddings. A retriever without an index cache (``rank_bm25``, ``cache=false``) is built again
by every worker.

Imports stay inside the functions: uvicorn starts its workers with ``spawn``, which re-imports
this module in each of them, and the CLI's schema pulls in torch (seconds, hundreds of MB).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.cli.schema import ServeConfig

PROGRAM = "forksearch-serve"
#: The factory each worker process calls (it reads the spec from ``SPEC_ENV``).
WORKER_APP = "corpora.retrieval.server:app_from_env"
log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def log_config(level: str) -> dict[str, Any]:
    """The logging config of uvicorn, plus the service's logger (its per-request DEBUG lines)."""
    from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["corpora.retrieval.server"] = {
        "handlers": ["default"], "level": LOG_LEVELS[level], "propagate": False}
    return config


def serve(cfg: ServeConfig, out_dir: Path) -> None:
    """Load the corpus and its index, print where it is served, and serve until stopped."""
    import uvicorn

    from agents.build import build_retriever, load_corpus
    from corpora.retrieval.server import SPEC_ENV, make_app
    from envs import cache

    kind = cfg.retriever["name"]
    corpus = load_corpus(cfg.corpus)
    retriever = build_retriever(cfg.retriever, corpus)  # builds and caches the index once
    name, documents = corpus.name, len(corpus.documents)
    app: Any
    if cfg.workers == 1:
        app = make_app(retriever, corpus, limits=cfg.limits, retriever_name=kind)
    else:
        # The workers load their own copies from the spec; this process only supervises them.
        os.environ[SPEC_ENV] = json.dumps({"corpus": cfg.corpus, "retriever": cfg.retriever,
                                           "limits": asdict(cfg.limits)})
        app = WORKER_APP
        del corpus, retriever
        cache.clear()
    if not is_loopback(cfg.host):
        log.warning("listening on %s: the service has no authentication, anyone who can reach "
                    "the port can query it", cfg.host)
    workers = f"{cfg.workers} worker{'s' if cfg.workers > 1 else ''}"
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host  # an IPv6 address
    print(f"{PROGRAM}: http://{host}:{cfg.port} corpus {name} ({documents} documents), "
          f"retriever {kind}, {workers}", flush=True)
    uvicorn.run(app, host=cfg.host, port=cfg.port, workers=cfg.workers,
                factory=cfg.workers > 1, log_level=cfg.log_level, access_log=cfg.access_log,
                log_config=log_config(cfg.log_level))


def main() -> None:
    """Entry point of ``forksearch-serve``."""
    from agents.cli.schema import ServeConfig, entry_point

    entry_point("serve", ServeConfig, PROGRAM, serve)()


if __name__ == "__main__":
    main()
