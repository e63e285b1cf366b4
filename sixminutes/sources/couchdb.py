"""The CouchDB source: follow one database's continuous ``_changes`` feed, forever.

A monitor that stops reading at 3 a.m. because CouchDB restarted is worse than none, so every
failure (refused connection, HTTP error, missing database, bad credentials, a silent socket) is a
*state* that is reported and retried with capped exponential backoff, never an exception for the
caller. Rows come out as the raw bytes the server sent (the engine decodes them once, tolerantly)
with their ``seq``, so the caller can save a position only after the row is durable and resume
from it. Credentials may sit in the URL; they never reach a log line, an error or ``status()``.
Parameters in the URL's query go to ``_changes`` (``?heartbeat=2000`` also sets how long a
silent socket is tolerated: two heartbeats), so an operator can tune a feed in its URL.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import orjson

__all__ = ["ChangesFollower", "redact"]

LAG_REFRESH = 5.0  # seconds between two GET <db> while connected: lag is cheap, not free
_ERROR_BODY = 300  # characters of an error response kept in last_error
# A compressed feed is buffered by the compressor (pouchdb-server's gzip holds rows back until
# the stream ends; so would a gzip proxy): ask for the bytes as they are written.
_IDENTITY = {"Accept-Encoding": "identity"}
# _changes parameters the follower sets itself: a URL's query cannot override them.
_OWNED = {"feed", "include_docs", "since"}


class _Row(msgspec.Struct):
    """What the follower reads of a change row; the document in it is skipped."""

    seq: Any = msgspec.UNSET
    id: Any = msgspec.UNSET
    last_seq: Any = msgspec.UNSET
    error: Any = msgspec.UNSET


_ROW_FIELDS = _Row.__struct_fields__
_row_decoder = msgspec.json.Decoder(_Row)


def redact(url: str) -> str:
    """The URL with its user and password replaced by ``***``: safe for logs and status."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "***"  # (the configuration refuses such a URL first: never show it anyway)
    return str(parsed.copy_with(userinfo=b"***")) if parsed.userinfo else url


def _seq_number(seq: Any) -> int | None:
    """The numeric prefix of a seq: 42, "42-g1AAAA…" (CouchDB 2/3), [42, "…"] (BigCouch)."""
    if isinstance(seq, list) and seq:
        seq = seq[0]
    if isinstance(seq, bool):
        return None
    if isinstance(seq, int):
        return seq
    if isinstance(seq, str):
        head = seq.partition("-")[0]
        return int(head) if head.isdigit() else None
    return None


def _decode_position(position: str) -> Any:
    """A JSON-encoded seq as a value; "now" and text that is not JSON stay as they are."""
    try:
        return json.loads(position)
    except ValueError:
        return position


def _heartbeat(value: str | None, default: int) -> int:
    """A ``heartbeat`` from the URL's query in ms; the default when absent or not a positive
    integer (CouchDB would refuse it, and a feed that never starts helps nobody)."""
    if value is None:
        return default
    try:
        heartbeat = int(value)
    except ValueError:
        return default
    return heartbeat if heartbeat > 0 else default


class _FeedError(Exception):
    """A failure already worded for an operator (and already free of credentials)."""


class ChangesFollower:
    """Follows one CouchDB database's continuous _changes feed with include_docs, forever.

    Iterate :meth:`rows` (wrap it in ``contextlib.aclosing`` if you may stop early); read
    :meth:`status` from anywhere. ``reconnects`` counts connection attempts after the first.
    """

    def __init__(self, url: str, since: str = "now", *, heartbeat_ms: int = 10_000,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 client: httpx.AsyncClient | None = None,
                 log: logging.Logger | None = None) -> None:
        parsed = httpx.URL(url.rstrip("/"))
        # httpx gets the URL without credentials, so its own error messages cannot leak them;
        # the query is for _changes only, never for GET <db> (the path stays as written:
        # a database name may hold an encoded /)
        path = parsed.raw_path.partition(b"?")[0].rstrip(b"/")
        self._db_url = str(parsed.copy_with(username=None, password=None, raw_path=path,
                                            fragment=None))
        self._extra = {k: v for k, v in parsed.params.multi_items() if k not in _OWNED}
        heartbeat_ms = _heartbeat(self._extra.pop("heartbeat", None), heartbeat_ms)
        userinfo = parsed.userinfo.decode("ascii")
        self._auth = httpx.BasicAuth(parsed.username, parsed.password) if userinfo else None
        self._secrets = [s for s in {userinfo, userinfo.partition(":")[2], parsed.password} if s]
        self._public_url = redact(url.rstrip("/"))
        self._position = since
        self.started_from: str | None = None
        """The seq that "now" was resolved to, once it has been."""
        self._heartbeat_ms = heartbeat_ms
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._client = client
        self._log = log or logging.getLogger(__name__)
        self._state = "stopped"
        self._last_error: str | None = None
        self._last_error_at: float | None = None  # kept once connected again: when it broke
        self._reconnects = 0
        self._last_row_at: float | None = None
        self._db_seq: int | None = None  # numeric prefix of the database's update_seq
        self._lag_checked = float("-inf")

    def __repr__(self) -> str:
        return f"ChangesFollower({self._public_url!r}, state={self._state!r})"

    @property
    def position(self) -> str:
        """The seq of the last row the caller is done with (it asked for the next one),
        JSON-encoded, or the starting ``since``: what a snapshot may save."""
        return self._position

    def rewind(self, position: str) -> None:
        """Read again from ``position``: the caller read rows ahead that it did not count."""
        self._position = position

    def status(self, counted: str | None = None) -> dict[str, Any]:
        """What an operator asks: are we connected, where are we, how far behind, what broke.

        ``counted``: the seq (JSON-encoded, as :meth:`rows` gives it) of the last row the
        consumer has counted, when it reads ahead of it: ``lag`` then counts the changes
        not counted yet, and ``position`` stays how far the feed was read."""
        position = _decode_position(self._position)
        done = position if counted is None else _decode_position(counted)
        ours, theirs = _seq_number(done), self._db_seq
        lag = max(0, theirs - ours) if ours is not None and theirs is not None else None
        return {"url": self._public_url, "state": self._state,
                "connected": self._state == "connected", "position": position,
                "last_error": self._last_error, "last_error_at": self._last_error_at,
                "reconnects": self._reconnects,
                "last_row_at": self._last_row_at, "lag": lag}

    async def rows(self) -> AsyncIterator[tuple[bytes, str]]:
        """Yield (raw change row, its seq JSON-encoded) forever, reconnecting from the position."""
        client = self._client or httpx.AsyncClient()
        failures = 0
        lag_task: asyncio.Task[None] | None = None
        try:
            while True:
                self._set_state("connecting")
                try:
                    if self._position == "now":
                        await self._resolve_now(client)
                    async with client.stream("GET", self._db_url + "/_changes",
                                             params=self._params(), headers=_IDENTITY,
                                             auth=self._auth, timeout=self._timeout()) as response:
                        if response.status_code != 200:
                            raise _FeedError(await self._http_error(response))
                        failures = 0
                        self._set_state("connected")
                        lag_task = asyncio.create_task(self._refresh_lag(client))
                        async for row in self._lines(response):
                            yield row
                    raise _FeedError("the server ended the feed")
                except (httpx.HTTPError, _FeedError, ValueError, OSError) as error:
                    self._last_error = self._describe(error)
                    self._last_error_at = time.time()
                finally:
                    if lag_task is not None:
                        lag_task.cancel()
                        lag_task = None
                # jitter: the followers of a restarted server must not all come back in step
                delay = self._backoff_initial * 2 ** min(failures, 32) * random.uniform(0.8, 1.2)
                delay = min(self._backoff_max, delay)
                failures += 1
                self._set_state("backoff", f"{self._last_error}; retrying in {delay:.2f} s")
                await asyncio.sleep(delay)
                self._reconnects += 1
        finally:
            self._set_state("stopped")
            if self._client is None:
                await client.aclose()

    async def _lines(self, response: httpx.Response) -> AsyncIterator[tuple[bytes, str]]:
        """Split the stream into rows; skip heartbeats and the closing last_seq line."""
        pending: list[bytes] = []
        async for chunk in response.aiter_bytes():
            pending.append(chunk)
            if b"\n" not in chunk:
                continue  # a row longer than a chunk: wait for its end
            *lines, rest = b"".join(pending).split(b"\n")
            pending = [rest] if rest else []
            for line in lines:
                line = line.strip()
                if not line:
                    continue  # a heartbeat
                row = self._parse(line)
                if "last_seq" in row and "id" not in row:
                    continue  # the feed's end; the stream closing follows
                if "error" in row and "id" not in row:
                    said = line[:_ERROR_BODY].decode(errors="replace")
                    raise _FeedError(f"the server said {said}")
                seq = json.dumps(row["seq"], separators=(",", ":")) if "seq" in row \
                    else self._position
                self._last_row_at = time.time()
                yield line, seq
                # Only now, when the caller asks for the next row, is it done with this one: a
                # snapshot taken while the caller still works on a row (awaiting something
                # before counting it) must not save a position that covers it.
                self._position = seq

    @staticmethod
    def _parse(line: bytes) -> dict[str, Any]:
        """The row parsed just enough to read its seq (msgspec skips the document unbuilt:
        the engine decodes it); a broken row is still handed on.

        Bytes that are not UTF-8 inside the document no longer hide the row's seq: the engine
        rejects the document as bad_json and the position moves past it, where a whole-row
        parse used to keep the previous one (and read the row again after a restart)."""
        try:
            fields = _row_decoder.decode(line)
        except (msgspec.DecodeError, RecursionError):
            pass  # not a JSON object as msgspec reads it: as the engine would, more leniently
        else:
            return {name: value for name in _ROW_FIELDS
                    if (value := getattr(fields, name)) is not msgspec.UNSET}
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            try:
                row = json.loads(line)  # numbers orjson refuses (beyond 64 bits) are valid JSON
            except (ValueError, RecursionError):
                return {}  # the engine will count it as bad_json; it keeps the previous seq
        return row if isinstance(row, dict) else {}

    async def _resolve_now(self, client: httpx.AsyncClient) -> None:
        """Turn "now" into the database's current update_seq, a position a restart can resume.

        Otherwise a service stopped before the first change arrives would start again at
        "now" and never count what was written while it was down.
        """
        response = await client.get(self._db_url, auth=self._auth, timeout=self._timeout())
        if response.status_code != 200:
            raise _FeedError(await self._http_error(response))
        info = response.json()
        seq = info.get("update_seq") if isinstance(info, dict) else None
        if seq is None:
            raise _FeedError("the database answered without an update_seq")
        self._position = self.started_from = json.dumps(seq, separators=(",", ":"))

    async def _refresh_lag(self, client: httpx.AsyncClient) -> None:
        """Poll the database's update_seq while connected, so status() can say how far behind."""
        while True:
            wait = self._lag_checked + LAG_REFRESH - time.monotonic()
            if wait > 0:  # flapping connections must not turn this into a request storm
                await asyncio.sleep(wait)
            self._lag_checked = time.monotonic()
            try:
                response = await client.get(self._db_url, auth=self._auth, timeout=LAG_REFRESH)
                self._db_seq = _seq_number(response.json().get("update_seq"))
            except (httpx.HTTPError, ValueError, AttributeError):
                self._db_seq = None

    def _params(self) -> dict[str, str]:
        since = _decode_position(self._position)
        # since last: the position is the one thing that changes between two requests
        return {**self._extra, "feed": "continuous", "include_docs": "true",
                "heartbeat": str(self._heartbeat_ms),
                "since": since if isinstance(since, str) else self._position}

    def _timeout(self) -> httpx.Timeout:
        """A read timeout of two heartbeats: a silent socket is a dead one."""
        silence = 2 * self._heartbeat_ms / 1000
        return httpx.Timeout(connect=10.0, read=silence, write=10.0, pool=10.0)

    async def _http_error(self, response: httpx.Response) -> str:
        body = (await response.aread())[:_ERROR_BODY].decode("utf-8", "replace").strip()
        hint = {401: " (check the credentials in the URL)", 403: " (the user may not read it)",
                404: " (the database does not exist)"}.get(response.status_code, "")
        return f"HTTP {response.status_code}{hint}: {body}"

    def _describe(self, error: Exception) -> str:
        """An error as one line with no credentials: httpx messages may quote the URL."""
        if isinstance(error, httpx.ReadTimeout):
            text = f"ReadTimeout: not a byte (not even a heartbeat) in {self._timeout().read:g} s"
        elif isinstance(error, httpx.TimeoutException):
            text = f"{type(error).__name__}: timed out"
        elif isinstance(error, _FeedError):
            text = str(error)
        else:
            text = f"{type(error).__name__}: {error}".rstrip(": ")
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _set_state(self, state: str, detail: str | None = None) -> None:
        """Change state, logging each change exactly once (never on a repeated state)."""
        if state == self._state:
            return
        self._state = state
        where = f"{self._public_url} since {self._position}"
        if state == "backoff":
            self._log.warning("CouchDB feed %s: %s", where, detail)
        else:
            self._log.info("CouchDB feed %s: %s", where, state)
