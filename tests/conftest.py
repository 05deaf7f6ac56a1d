import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Indexes and tokenizers built by tests go to the checkout's .cache (git-ignored), not ~/.cache.
os.environ.setdefault("FORKSEARCH_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache"))



@pytest.fixture()
def require_sample() -> Callable[[str], None]:
    """A check that skips the calling test when the shipped sample of a dataset is absent."""
    from corpora.paths import data_dir

    def check(name: str) -> None:
        if not (data_dir() / name).is_dir():
            pytest.skip(f"sample data not found: {data_dir() / name} (see ../shared/data)")

    return check


#: ``answer(handler, request)`` of a stub retrieval server (see ``retrieval_server``).
Answer = Callable[[BaseHTTPRequestHandler, Any], "tuple[int, Any] | None"]


@pytest.fixture()
def retrieval_server() -> Iterator[Callable[[Answer], str]]:
    """``start(answer) -> url``: a stub HTTP/1.1 server on 127.0.0.1 that answers POSTs.

    ``answer(handler, request)`` gets the request handler and the decoded JSON body; it returns
    ``(status, payload)`` (bytes, or an object sent as JSON) or ``None`` once it has written the
    response itself (to hang, trickle or cut it short). A hanging answer should wait on
    ``handler.server.stopping`` (an ``Event``), which is set when the test ends.
    """
    servers: list[ThreadingHTTPServer] = []
    stopping = threading.Event()

    def start(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so that clients can reuse connections

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply = answer(self, request)
                if reply is None:
                    return
                status, payload = reply
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.stopping = stopping  # type: ignore[attr-defined]
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    stopping.set()
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()
