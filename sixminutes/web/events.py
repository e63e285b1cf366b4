"""Server-Sent Events for /6minutes/events: one publisher, many browsers, none can hurt it.

The service publishes `stats` batches (~4 a second) and `alerts`; every client gets `ready` first.
A client that reads slowly, or not at all (a laptop asleep, a stalled proxy), must neither slow
the publisher nor make memory grow: each subscriber has a queue bounded in messages and in bytes,
and when it would overflow the subscriber *loses* what is queued and what comes next (counted)
until it has read one `resync` event (`{"lost": n}`) telling the page to refetch /6minutes/data
and /6minutes/alerts instead of trusting its deltas. The refetch supersedes the lost deltas, so
a client that fell behind holds no message at all. Every queue is the newest part of one
published stream and messages are encoded once and shared, so all queues together hold at most
`queue_bytes` of messages, however many clients there are or stall (plus, per client, the one
chunk the server is writing to it).
The bounds are wide enough for one tick's burst (a `stats` batch of ~200 KB and dozens of
`alert`s at 1,000 CDR/s), so a client that keeps up never sees a `resync`. Queued messages go
out joined in one write (fewer, larger sends: a burst costs one send per client, not dozens).
Everything runs on the event loop's thread: call `publish` there (from another thread, through
`loop.call_soon_threadsafe`).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

PING = b": ping\n\n"  # an SSE comment: keeps proxies and load balancers from closing the stream
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no nginx buffering
_NON_LETTERS = re.compile(r"[^A-Za-z]+")


def encode(event: str, data: Any, id: str | int | None = None) -> bytes:
    """One SSE message. orjson writes no raw newline, so the JSON is always one `data:` line."""
    if not event or "\n" in event or "\r" in event:
        raise ValueError(f"not an SSE event name: {event!r}")
    head = b"" if id is None else b"id: %s\n" % str(id).encode()
    data_json = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    return b"%sevent: %s\ndata: %s\n\n" % (head, event.encode(), data_json)


def series_name(key: str) -> str:
    """The seed's DOM id of a series: every run of non-letters (ASCII) becomes one `_`.
    Digits go too, so keys that differ only by numbers (SIP codes) share a name."""
    return _NON_LETTERS.sub("_", key)


class Subscription:
    """One client's bounded view of the hub: an async iterator of encoded SSE messages,
    `ready` first, and a (sync or async) context manager that unsubscribes on exit."""

    def __init__(self, hub: Hub, ready: bytes) -> None:
        self._hub = hub
        self._ready: bytes | None = ready  # first, and never counted against the bounds
        self._queue: deque[bytes] = deque()
        self._bytes = 0  # bytes queued
        self._wake = asyncio.Event()
        self.lost = 0  # lost since the last `resync`: announced once the queue is drained
        self.dropped = 0  # lost over the whole connection
        self.closed = False

    def _offer(self, message: bytes) -> None:
        """Queue a message, or lose it. On overflow what is queued goes too (the `resync`
        makes the page refetch it all), and everything is lost until the `resync` is out,
        so a slow reader always reaches it and then follows again from a clean state."""
        if self.closed:
            return
        hub = self._hub
        if self.lost:
            self._lose(1)
        elif self._queue and (len(self._queue) >= hub.queue_size
                              or self._bytes + len(message) > hub.queue_bytes):
            self._lose(len(self._queue) + 1)
            self._queue.clear()
            self._bytes = 0
        else:
            self._queue.append(message)
            self._bytes += len(message)
        self._wake.set()

    def _lose(self, n: int) -> None:
        self.lost += n
        self.dropped += n
        self._hub.dropped += n

    def _pop(self) -> bytes | None:
        """The next message if one is due now, else None."""
        if self._ready is not None:
            ready, self._ready = self._ready, None
            return ready
        if self._queue:
            message = self._queue.popleft()
            self._bytes -= len(message)
            return message
        if self.lost:
            lost, self.lost = self.lost, 0
            return encode("resync", {"lost": lost})
        return None

    async def next(self, timeout: float | None = None) -> bytes:
        """The next message; PING when none came within `timeout` seconds.
        StopAsyncIteration once closed and drained."""
        while True:
            message = self._pop()
            if message is not None:
                return message
            if self.closed:
                raise StopAsyncIteration
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                return PING

    async def take(self, timeout: float | None = None, max_bytes: int = 256 << 10) -> bytes:
        """Like :meth:`next`, joined with the messages queued behind it (up to about
        ``max_bytes``): one write for a burst instead of one per message."""
        first = await self.next(timeout)
        if first is PING:
            return first
        parts, size = [first], len(first)
        while size < max_bytes:
            message = self._pop()
            if message is None:
                break
            parts.append(message)
            size += len(message)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Unsubscribe; what is queued can still be read, then the iteration stops."""
        self.closed = True
        self._hub._subscriptions.pop(self, None)
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        return await self.next()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Hub:
    """Fan-out of events to subscribers. `publish` encodes once and only appends to bounded
    queues: synchronous, never waits, O(subscribers), whatever the clients do."""

    def __init__(self, queue_size: int = 1024, queue_bytes: int = 4 << 20) -> None:
        if queue_size < 1 or queue_bytes < 1:
            raise ValueError("queue_size and queue_bytes must be at least 1")
        self.queue_size = queue_size  # messages queued per client, at most
        self.queue_bytes = queue_bytes  # bytes queued per client, at most (one message always fits)
        self._subscriptions: dict[Subscription, None] = {}  # insertion-ordered set
        self.dropped = 0  # events lost by slow clients, all clients together
        self.published = 0
        self.closed = False

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, ready: Any = None) -> Subscription:
        """Register a client; its first message is `ready` (with `ready` as data, `{}` if None).
        Exit its context (or close it) when the client goes, or it keeps losing events."""
        subscription = Subscription(self, encode("ready", {} if ready is None else ready))
        if self.closed:
            subscription.closed = True
        else:
            self._subscriptions[subscription] = None
        return subscription

    def publish(self, event: str, data: Any) -> None:
        self.published += 1
        if not self._subscriptions:
            return
        message = encode(event, data)
        for subscription in self._subscriptions:
            subscription._offer(message)

    def close(self) -> None:
        """End every stream (after what is queued): for a server shutdown, since open SSE
        responses otherwise keep uvicorn waiting for them."""
        self.closed = True
        for subscription in list(self._subscriptions):
            subscription.close()


def events_endpoint(hub: Hub, heartbeat: float = 15.0) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint streaming a new subscription as `text/event-stream`.

    The client is subscribed when the stream starts and unsubscribed when it ends: Starlette
    cancels the stream when the client disconnects (ASGI < 2.4, as uvicorn), and on newer
    servers the next write fails, at the latest with the heartbeat."""

    async def stream() -> AsyncIterator[bytes]:
        with hub.subscribe() as subscription:
            while True:
                try:
                    message = await subscription.take(heartbeat)
                except StopAsyncIteration:
                    return
                yield message

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(stream(), media_type="text/event-stream", headers=HEADERS)

    return endpoint
