"""uvicorn's httptools protocol, answering a response of known length in one write, not two.

uvicorn writes a response's status line and headers to the socket when the app sends
``http.response.start``, then its body when the app sends ``http.response.body``: two
``send`` calls, each through the whole TCP stack (on loopback, the receiver's side too) with
the GIL held. py-spy put the two at about a quarter of the event loop's time per POST
/6minutes/cdr, whose answer is 32 bytes. Here, when the head says ``Content-Length``, it
is held and written with the first bytes of the body that follows at once: one ``send``. A
response without (the event stream, written as events come) has its head sent at once, as
before. Everything else is uvicorn's own code: the cycle's class is swapped for a subclass
whose ``send`` lends uvicorn's a transport that keeps or prefixes what it writes.
"""
from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

__all__ = ["OneWriteProtocol"]


class _Held:
    """Stands in for the transport while uvicorn writes a response's head: keeps it."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


class _Prefixed:
    """Stands in for the transport while uvicorn writes a body: the head goes first, in the
    same write; anything else is the transport's."""

    __slots__ = ("transport", "head")

    def __init__(self, transport: Any, head: bytes) -> None:
        self.transport, self.head = transport, head

    def write(self, data: bytes) -> None:
        head, self.head = self.head, b""
        self.transport.write(head + data if head else data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _sized(message: Any) -> bool:
    return any(name.lower() == b"content-length" for name, _ in message.get("headers", ()))


class _OneWriteCycle(RequestResponseCycle):
    _head: bytes | None = None

    async def send(self, message: Any) -> None:
        if not self.response_started:
            if message["type"] != "http.response.start" or not _sized(message):
                return await super().send(message)
            transport, held = self.transport, _Held()
            self.transport = held  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._head = held.data or None
            return
        head = self._head
        if head is None or message["type"] != "http.response.body":
            return await super().send(message)
        self._head = None
        transport, prefixed = self.transport, _Prefixed(self.transport, head)
        self.transport = prefixed  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = transport
        if prefixed.head and not self.disconnected:  # no body written (HEAD): the head alone
            transport.write(prefixed.head)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose responses of known length take one write."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = _OneWriteCycle
