"""web/server.py: uvicorn's httptools protocol (its own code, on a transport that records what
is written to it) answers a response of known length in one write, and writes the head of
any other at once."""
from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from sixminutes.web.server import OneWriteProtocol


class Transport(asyncio.Transport):
    """What uvicorn's protocol writes, one entry per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8360), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def sized(scope: dict, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


def exchange(app: Any, request: bytes, until: Any = None) -> list[bytes]:
    """The writes of the protocol for one request (until ``until(writes)`` holds, if given)."""
    async def main() -> list[bytes]:
        config = Config(app, log_level="warning", access_log=False, lifespan="off")
        protocol = OneWriteProtocol(config, ServerState(), {})
        transport = Transport()
        protocol.connection_made(transport)
        protocol.data_received(request)
        await asyncio.gather(*protocol.tasks) if until is None else None
        for _ in range(100):
            if until is None or until(transport.writes):
                break
            await asyncio.sleep(0)
        return transport.writes
    return asyncio.run(main())


POST = b"POST /6minutes/cdr HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"


def test_a_response_of_known_length_is_one_write_head_and_body():
    (write,) = exchange(sized, POST)
    assert write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b'\r\n\r\n{"ok":true}')
    assert b"content-length: 11\r\n" in write


def test_keep_alive_requests_each_get_their_one_write():
    writes = exchange(sized, POST + POST)
    assert len(writes) == 2 and all(w.endswith(b'{"ok":true}') for w in writes)


def test_the_head_of_a_response_to_head_is_written_without_a_body():
    (write,) = exchange(sized, b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b"\r\n\r\n")


def test_a_response_of_unknown_length_has_its_head_written_before_any_body_comes():
    gate = asyncio.Event()

    async def stream(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await gate.wait()  # (an event stream: nothing to send yet)

    writes = exchange(stream, b"GET /6minutes/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                      until=lambda writes: writes)
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked\r\n" in writes[0]
