"""A small real HTTP server that records what is POSTed to it: the far end of webhooks.

It answers each POST with the next status of ``statuses`` (200 once they run out), so a test
can make a target fail a few times and then accept.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import orjson


class Receiver:
    """POSTs land in ``requests`` as dicts: path, headers, body (bytes) and json."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        self.delay = delay
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append({
                        "path": self.path, "headers": dict(self.headers), "body": body,
                        "json": _json(body), "status": status, "at": time.time()})
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self, accepted_only: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["status"] < 300 or not accepted_only]

    def wait_for(self, check: Callable[[list[dict[str, Any]]], Any], timeout: float = 20.0,
                 what: str = "a request") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check(self.received())
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; received: "
                             f"{[r['json'] for r in self.received(False)]!r}"[:4000])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
