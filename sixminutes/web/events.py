"""Server-Sent Events for /6minutes/events: one publisher, many browsers, none can hurt it.

The service publishes `stats` batches (~4 a second) and `alerts`; every client gets `ready` first.
A client that reads slowly, or not at all (a laptop asleep, a stalled proxy), must neither slow
the publisher nor make memory grow: each subscriber has a small bounded queue, and when it is
full the subscriber *loses* events (counted) until it has caught up; then it gets one `resync`
event (`{"lost": n}`) telling the page to refetch /6minutes/data instead of trusting its deltas.
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
        self._queue: deque[bytes] = deque([ready])  # `ready` does not count against the size
        self._limit = hub.queue_size + 1
        self._wake = asyncio.Event()
        self.lost = 0  # lost since the last `resync`: announced once the queue is drained
        self.dropped = 0  # lost over the whole connection
        self.closed = False

    def _offer(self, message: bytes) -> None:
        """Queue a message, or lose it. Once losing, keep losing until the `resync` is out,
        so a slow reader always reaches it and then follows again from a clean state."""
        if self.closed:
            return
        if self.lost or len(self._queue) >= self._limit:
            self.lost += 1
            self.dropped += 1
            self._hub.dropped += 1
        else:
            self._queue.append(message)
        self._wake.set()

    async def next(self, timeout: float | None = None) -> bytes:
        """The next message; PING when none came within `timeout` seconds.
        StopAsyncIteration once closed and drained."""
        while True:
            if self._queue:
                return self._queue.popleft()
            if self.lost:
                lost, self.lost = self.lost, 0
                return encode("resync", {"lost": lost})
            if self.closed:
                raise StopAsyncIteration
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                return PING

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

    def __init__(self, queue_size: int = 16) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
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
                    message = await subscription.next(heartbeat)
                except StopAsyncIteration:
                    return
                yield message

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(stream(), media_type="text/event-stream", headers=HEADERS)

    return endpoint
