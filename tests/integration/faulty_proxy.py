"""A TCP proxy in front of a real CouchDB-protocol server that breaks what a network breaks.

The service follows ``proxy.url + "/db"`` instead of the server's own URL; the test switches the
proxy's behaviour while documents keep flowing through the real server behind it:

- ``pass``: bytes go through untouched, except that a ``_changes`` response can be cut after a
  given number of body bytes, always in the middle of a row (``cut_changes_after``);
- ``status``: every new request is answered with an HTTP error (500, 401, 404...) and closed;
- ``hang``: the request is read and never answered, not a byte;
- ``silent``: a ``_changes`` response's headers go through, then nothing more (no row, no
  heartbeat), as a server or a middlebox that froze mid-stream.

``set_mode`` drops every open connection, so the follower's live feed meets the new behaviour
at once. Everything runs in daemon threads; ``close()`` stops them.
"""
from __future__ import annotations

import socket
import threading
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus

from couchdb_server import _free_port

__all__ = ["Cut", "FaultyProxy"]

_MARKER = b'"doc":'  # a cut lands this many bytes into a row's document: mid-line for sure
_INTO_DOC = 40


@dataclass
class Cut:
    """One _changes response cut short: how many body bytes went through, and the last ones."""

    body_bytes: int
    tail: bytes


class _Watch:
    """The client-bound bytes of one _changes response: where its body starts, where to cut."""

    def __init__(self, cut_after: int | None, silent: bool) -> None:
        self.cut_after, self.silent = cut_after, silent
        self.seen = bytearray()
        self.body_at: int | None = None

    def feed(self, data: bytes) -> tuple[bytes, Cut | None]:
        """The part of ``data`` to forward, and the Cut when the connection must close after it."""
        start = len(self.seen)
        self.seen += data
        if self.body_at is None:
            end = self.seen.find(b"\r\n\r\n")
            if end < 0:
                return data, None
            self.body_at = end + 4
        if self.silent:
            return data[:max(0, self.body_at - start)], None
        if self.cut_after is None:
            return data, None
        found = self.seen.find(_MARKER, self.body_at + self.cut_after)
        at = found + len(_MARKER) + _INTO_DOC
        if found < 0 or at > len(self.seen):
            return data, None
        return data[:at - start], Cut(at - self.body_at, bytes(self.seen[max(0, at - 80):at]))


class FaultyProxy:
    """127.0.0.1:<free port> → ``upstream`` (host, port), with switchable faults."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "pass"
        self.status_code = 500
        self.cuts: list[Cut] = []
        self.requests: dict[str, int] = {}  # mode → requests met in that mode
        self._cut_plan: deque[int] = deque()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._accept, daemon=True, name="faulty-proxy")

    def start(self) -> FaultyProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        _close(self._listener)  # shutdown() wakes the accept() in progress
        self.drop_all()
        self._thread.join(5)

    # -- what the tests switch ----------------------------------------------------------------
    def set_mode(self, mode: str, status_code: int | None = None, drop: bool = True) -> None:
        """pass | status | hang | silent; open connections are dropped (unless ``drop=False``)."""
        assert mode in ("pass", "status", "hang", "silent"), mode
        with self._lock:
            self.mode = mode
            if status_code is not None:
                self.status_code = status_code
        if drop:
            self.drop_all()

    def cut_changes_after(self, *body_bytes: int) -> None:
        """Cut each of the next _changes responses (one per number) a row's start past that
        many body bytes: the client gets part of a row, then the connection closes."""
        with self._lock:
            self._cut_plan.extend(body_bytes)

    @property
    def cuts_pending(self) -> int:
        with self._lock:
            return len(self._cut_plan)

    def drop_all(self) -> None:
        """Close every open connection, both sides, at once."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    # -- the plumbing -------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            head = _read_head(client)
            if head is None:
                return
            with self._lock:
                mode, code = self.mode, self.status_code
                self.requests[mode] = self.requests.get(mode, 0) + 1
            if mode == "status":
                client.sendall(_error_response(code))
            elif mode == "hang":
                while client.recv(65536):  # until the client or drop_all() closes it
                    pass
            else:
                self._relay(client, head, silent=mode == "silent")
        except OSError:
            pass
        finally:
            _close(client)

    def _relay(self, client: socket.socket, head: bytes, silent: bool) -> None:
        upstream = socket.create_connection(self.upstream, timeout=10)
        upstream.settimeout(None)
        with self._lock:
            self._open.add(upstream)
        watch: list[_Watch | None] = [None]

        def requests(data: bytes) -> None:
            # A connection may carry a plain GET first (keep-alive), then a _changes request,
            # whose response never ends: watch the response of the latest _changes request.
            if b"/_changes" in data:
                with self._lock:
                    cut_after = self._cut_plan.popleft() if self._cut_plan else None
                watch[0] = _Watch(cut_after, silent)
            upstream.sendall(data)

        def client_to_upstream() -> None:
            try:
                requests(head)
                while data := client.recv(65536):
                    requests(data)
            except OSError:
                pass
            finally:
                _close(upstream)

        threading.Thread(target=client_to_upstream, daemon=True).start()
        try:
            while data := upstream.recv(65536):
                current = watch[0]
                if current is None:
                    client.sendall(data)
                    continue
                forward, cut = current.feed(data)
                if forward:
                    client.sendall(forward)
                if cut is not None:
                    with self._lock:
                        self.cuts.append(cut)
                    return
                if current.body_at is not None and current.cut_after is None \
                        and not current.silent:
                    watch[0] = None  # nothing more to do with this response: plain relay
        except OSError:
            pass
        finally:
            _close(upstream)
            _close(client)


def _read_head(sock: socket.socket) -> bytes | None:
    """Bytes up to the end of the first request's head (None if the client left first)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


def _error_response(code: int) -> bytes:
    reason = HTTPStatus(code).phrase
    body = f'{{"error":"{reason.lower().replace(" ", "_")}","reason":"injected by the proxy"}}'
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
