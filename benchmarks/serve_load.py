"""Load test of ``forksearch-serve``: concurrent clients against a server on a loopback port.

    python benchmarks/serve_load.py                      # synthetic corpus, bm25, 2,000 requests
    python benchmarks/serve_load.py --docs 1000000 --workers 4
    python benchmarks/serve_load.py --requests 200 --clients 8 --retriever dense

The server is started as a subprocess (``python -m agents.cli.serve``) on a free port of
127.0.0.1 (never another address), with a temporary index cache (``--cache-dir`` reuses one)
and run directory; the clock starts once ``/health`` answers, so loading and indexing are not
timed (``startup_s`` reports them). ``--clients`` threads, each with its own keep-alive
connection, then send ``--requests`` requests in all (after ``--warmup`` untimed ones): each
asks ``--queries-per-request`` questions of the corpus with ``topk`` ``--topk`` and scores, as
Search-R1's client does. By default the corpus is ``synthetic`` and the queries its questions;
``--docs N`` serves N generated documents instead (``benchmarks/retrieval.py``'s generator,
written to a temporary JSONL file) and asks its generated 4-word queries.

A request is an error when it fails or answers anything but 200 with one list per query.
Clients and server share the machine's cores, so on a small machine the figures include the
clients' own cost. Sending stops after ``--max-seconds`` (requests not sent are reported as
``unsent``); the server is stopped at the end, whatever happened. Nothing is written outside
the temporary folder. The last line of the output is one JSON object with every figure:
``p50_ms``/``p99_ms``/``mean_ms`` (latency of one request), ``requests_per_s`` and
``queries_per_s``.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import corpora  # noqa: E402

HOST = "127.0.0.1"  # loopback only: the service has no authentication
REPO = Path(__file__).resolve().parents[1]


def retrieval_benchmark() -> ModuleType:
    """``benchmarks/retrieval.py`` (its document generator), imported by path."""
    spec = importlib.util.spec_from_file_location("retrieval_benchmark",
                                                  REPO / "benchmarks" / "retrieval.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def corpus_and_queries(docs: int | None, folder: Path, seed: int) -> tuple[list[str], list[str]]:
    """The server's corpus overrides and the queries to ask."""
    if docs is None:
        corpus = corpora.load("synthetic")
        return [], [q.question for q in corpus.questions]
    generated, queries = retrieval_benchmark().make_corpus(docs, seed=seed)
    path = folder / "documents.jsonl"
    with path.open("w") as f:
        for doc in generated.documents:
            f.write(json.dumps({"doc_id": doc.doc_id, "title": doc.title, "text": doc.text}))
            f.write("\n")
    return ["corpus.name=jsonl", f"corpus.path={path}", f"corpus.label=generated-{docs}"], queries


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_health(proc: subprocess.Popen[bytes], url: str, timeout_s: float, log: Path) -> None:
    """Poll ``/health`` until it answers 200; fail if the server exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"forksearch-serve exited ({proc.returncode}):\n"
                             f"{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"forksearch-serve gave no /health in {timeout_s:.0f} s:\n"
                     f"{log.read_text()[-3000:]}")


def load(url: str, queries: Sequence[str], *, requests: int, clients: int, per_request: int,
         topk: int, max_seconds: float) -> dict[str, Any]:
    """Send ``requests`` requests from ``clients`` threads; latencies and errors."""
    counter = itertools.count()  # next() on it is atomic under the GIL
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + max_seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.monotonic() < stop_at:
                i = next(counter)
                if i >= requests:
                    return
                start = (i * per_request) % len(queries)
                batch = [queries[(start + j) % len(queries)] for j in range(per_request)]
                t0 = time.perf_counter()
                error = None
                try:
                    reply = http.post("/retrieve", json={"queries": batch, "topk": topk,
                                                         "return_scores": True})
                    if reply.status_code != 200:
                        error = f"HTTP {reply.status_code}: {reply.text[:200]}"
                    elif len(reply.json()["result"]) != len(batch):
                        error = "wrong number of result lists"
                except (httpx.HTTPError, ValueError, KeyError) as err:
                    error = f"{type(err).__name__}: {err}"
                seconds = time.perf_counter() - t0
                with lock:
                    latencies.append(seconds)
                    if error is not None:
                        errors.append(error)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "sent": len(latencies),
        "unsent": requests - len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(wall, 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "queries_per_s": round(len(latencies) * per_request / wall, 1),
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, load it, stop it; every figure."""
    with tempfile.TemporaryDirectory(prefix="serve_load-") as tmp:
        folder = Path(tmp)
        overrides, queries = corpus_and_queries(args.docs, folder, args.seed)
        port = free_port()
        url = f"http://{HOST}:{port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1",
               "FORKSEARCH_CACHE_DIR": args.cache_dir or str(folder / "cache")}
        command = [sys.executable, "-m", "agents.cli.serve", f"host={HOST}", f"port={port}",
                   f"workers={args.workers}", f"retriever={args.retriever}", "log_level=warning",
                   f"hydra.run.dir={folder / 'run'}", *overrides]
        log = folder / "server.log"
        t0 = time.perf_counter()
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=REPO)
        try:
            wait_for_health(proc, url, args.start_timeout, log)
            startup_s = time.perf_counter() - t0
            info = httpx.get(f"{url}/info", timeout=10).json()
            options = {"clients": args.clients, "per_request": args.queries_per_request,
                       "topk": args.topk, "max_seconds": args.max_seconds}
            if args.warmup:
                load(url, queries, requests=args.warmup, **options)
            figures = load(url, queries, requests=args.requests, **options)
        finally:
            stop(proc)
    return {
        "corpus": info["corpus"], "documents": info["documents"], "retriever": info["retriever"],
        "workers": args.workers, "requests": args.requests, "clients": args.clients,
        "queries_per_request": args.queries_per_request, "topk": args.topk,
        "startup_s": round(startup_s, 2), **figures,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests in all")
    parser.add_argument("--clients", type=int, default=32, help="concurrent client threads")
    parser.add_argument("--queries-per-request", type=int, default=4, help="questions per request")
    parser.add_argument("--topk", type=int, default=3, help="documents per query")
    parser.add_argument("--warmup", type=int, default=64, help="untimed requests sent first")
    parser.add_argument("--docs", type=int, default=None,
                        help="serve N generated documents instead of the synthetic corpus")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated documents")
    parser.add_argument("--retriever", default="bm25", help="bm25, dense, hybrid, rank_bm25")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--cache-dir", default=None,
                        help="FORKSEARCH_CACHE_DIR of the server (default: a temporary one)")
    parser.add_argument("--start-timeout", type=float, default=600,
                        help="seconds the server gets to load and index")
    parser.add_argument("--max-seconds", type=float, default=600,
                        help="stop sending after this many seconds")
    args = parser.parse_args(argv)
    for name in ("requests", "clients", "queries_per_request", "topk", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected at least 1, got "
                         f"{getattr(args, name)}")
    figures = run(args)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
