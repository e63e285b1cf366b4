"""The SSE hub: ordering, bounded queues, resync, wire format; and a real uvicorn stream."""

import asyncio
import json
import socket

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from sixminutes.web.events import PING, Hub, encode, events_endpoint, series_name


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def parse(message: bytes) -> tuple[str, object]:
    """(event, data) of one encoded message."""
    fields = dict(line.split(": ", 1) for line in message.decode().strip("\n").split("\n"))
    return fields["event"], json.loads(fields["data"])


async def drain(sub) -> list[tuple[str, object]]:
    """Everything already queued (next() answers at once while something is there)."""
    out = []
    while sub._queue or sub.lost:
        out.append(parse(await sub.next()))
    return out


# Wire format


def test_encode_wire_format():
    assert encode("stats", [{"name": "calls", "data": 1}]) == (
        b'event: stats\ndata: [{"name":"calls","data":1}]\n\n'
    )
    assert encode("alert", {"msg": "a\nb"}, id=7) == b'id: 7\nevent: alert\ndata: {"msg":"a\\nb"}\n\n'
    assert encode("stats", {1700000000: {"é": 1.5}}) == (
        b'event: stats\ndata: {"1700000000":{"\xc3\xa9":1.5}}\n\n'
    )
    assert PING == b": ping\n\n"
    for bad in ("", "a\nb", "a\rb"):
        with pytest.raises(ValueError):
            encode(bad, {})


def test_series_name_rule():
    """Every run of non-letters becomes one `_`: the seed's id for a series."""
    assert series_name('calls{direction="egress",profile="a-b"}') == "calls_direction_egress_profile_a_b_"
    assert series_name("calls") == "calls"
    assert series_name("pdd_ms") == "pdd_ms"
    assert series_name("a__b--c") == "a_b_c"
    assert series_name('x{p="Télécom"}') == "x_p_T_l_com_"  # letters are ASCII letters
    # Digits are not letters: label values that differ only by digits share a name.
    assert series_name('sip_status{code="503",direction="egress",profile="a"}') == (
        "sip_status_code_direction_egress_profile_a_"
    )
    assert series_name('sip_status{code="404"}') == series_name('sip_status{code="503"}')
    assert series_name("9lives") == "_lives"


# The hub


def test_ready_first_then_events_in_order():
    async def main():
        hub = Hub()
        with hub.subscribe() as sub:
            for i in range(5):
                hub.publish("stats", [i])
            hub.publish("alert", {"msg": "x"})
            got = await drain(sub)
        assert got == [("ready", {})] + [("stats", [i]) for i in range(5)] + [("alert", {"msg": "x"})]

    run(main())


def test_ready_data():
    async def main():
        hub = Hub()
        async with hub.subscribe({"version": "1"}) as sub:
            assert parse(await sub.__anext__()) == ("ready", {"version": "1"})

    run(main())


def test_slow_subscriber_loses_and_resyncs_while_fast_gets_everything():
    async def main():
        hub = Hub(queue_size=16)
        fast, slow = hub.subscribe(), hub.subscribe()
        received = [parse(await fast.next())]
        for i in range(50):
            hub.publish("stats", [i])
            received += await drain(fast)
        assert received == [("ready", {})] + [("stats", [i]) for i in range(50)]
        assert fast.dropped == 0 and slow.dropped == 34 and hub.dropped == 34
        assert len(slow._queue) == 17  # ready + 16: bounded
        got = await drain(slow)
        assert got == [("ready", {})] + [("stats", [i]) for i in range(16)] + [("resync", {"lost": 34})]
        hub.publish("stats", ["after"])  # caught up: follows again
        assert await drain(slow) == [("stats", ["after"])]
        assert slow.lost == 0 and slow.dropped == 34

    run(main())


def test_events_published_while_behind_are_lost_until_the_resync():
    """Once losing, a subscriber loses everything until it has read the resync, even if its
    queue has room again: it always reaches the resync, and one resync covers all."""

    async def main():
        hub = Hub(queue_size=2)
        sub = hub.subscribe()
        for i in range(4):  # 0, 1 queued; 2, 3 lost
            hub.publish("stats", [i])
        assert parse(await sub.next()) == ("ready", {})
        assert parse(await sub.next()) == ("stats", [0])
        hub.publish("stats", [4])  # room now, but still behind: lost
        assert await drain(sub) == [("stats", [1]), ("resync", {"lost": 3})]
        assert hub.dropped == 3

    run(main())


def test_publish_never_blocks_with_1000_subscribers_not_reading():
    async def main():
        hub = Hub(queue_size=16)
        subs = [hub.subscribe() for _ in range(1000)]
        assert hub.clients == 1000
        for i in range(100):
            hub.publish("stats", [{"name": "calls", "data": i}])  # synchronous: returns
        assert hub.published == 100
        assert all(len(s._queue) == 17 and s.dropped == 84 for s in subs)
        assert hub.dropped == 1000 * 84
        got = await drain(subs[500])
        assert got[-1] == ("resync", {"lost": 84}) and len(got) == 18

    run(main())


def test_unsubscribe_on_exit():
    async def main():
        hub = Hub()
        with hub.subscribe() as sub:
            assert hub.clients == 1
        assert hub.clients == 0 and sub.closed
        hub.publish("stats", [1])  # not queued for a gone client
        async with hub.subscribe():
            assert hub.clients == 1
        assert hub.clients == 0
        try:
            with hub.subscribe():
                raise RuntimeError
        except RuntimeError:
            pass
        assert hub.clients == 0
        assert [m async for m in sub] == [encode("ready", {})]  # drained, then stops

    run(main())


def test_close_ends_every_stream_after_what_is_queued():
    async def main():
        hub = Hub()
        sub = hub.subscribe()
        hub.publish("alert", {"id": 1})

        async def read_all():
            return [parse(m) async for m in sub]

        reader = asyncio.create_task(read_all())
        await asyncio.sleep(0)
        hub.close()
        assert await reader == [("ready", {}), ("alert", {"id": 1})]
        assert hub.clients == 0
        assert [m async for m in hub.subscribe()] == [encode("ready", {})]  # after close

    run(main())


def test_heartbeat_when_idle():
    async def main():
        hub = Hub()
        with hub.subscribe() as sub:
            await sub.next()  # ready
            assert await sub.next(timeout=0.01) == PING
            hub.publish("stats", [])
            assert parse(await sub.next(timeout=0.01)) == ("stats", [])

    run(main())


def test_a_waiting_reader_wakes_on_publish():
    async def main():
        hub = Hub()
        with hub.subscribe() as sub:
            await sub.next()
            waiting = asyncio.create_task(sub.next())
            await asyncio.sleep(0)
            assert not waiting.done()
            hub.publish("alert", {"id": 2})
            assert parse(await waiting) == ("alert", {"id": 2})

    run(main())


# A real server and a real client


async def _serve(hub: Hub, heartbeat: float):
    app = Starlette(routes=[Route("/6minutes/events", events_endpoint(hub, heartbeat))])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{sock.getsockname()[1]}"


async def _messages(response):
    """SSE messages (lists of lines) from a streaming httpx response."""
    lines = []
    async for line in response.aiter_lines():
        if line:
            lines.append(line)
        elif lines:
            yield lines
            lines = []


async def _until(condition, seconds=10.0):
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_real_uvicorn_stream():
    async def main():
        hub = Hub()
        server, task, url = await _serve(hub, heartbeat=0.2)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                async with client.stream("GET", "/6minutes/events") as response:
                    assert response.status_code == 200
                    assert response.headers["content-type"].startswith("text/event-stream")
                    assert response.headers["cache-control"] == "no-cache"
                    assert response.headers["x-accel-buffering"] == "no"
                    messages = _messages(response)
                    assert await anext(messages) == ["event: ready", "data: {}"]
                    assert hub.clients == 1
                    batch = [{"timestamp": 1700000000, "name": "calls", "label": "a", "data": {"count": 3}}]
                    hub.publish("stats", batch)
                    event, data = await anext(messages)
                    assert event == "event: stats" and json.loads(data.removeprefix("data: ")) == batch
                    assert await anext(messages) == [": ping"]  # idle: the heartbeat
            await _until(lambda: hub.clients == 0)  # the client went: unsubscribed
        finally:
            hub.close()
            server.should_exit = True
            await task

    run(main())


def test_real_uvicorn_shutdown_with_a_client_connected():
    async def main():
        hub = Hub()
        server, task, url = await _serve(hub, heartbeat=15)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            async with client.stream("GET", "/6minutes/events") as response:
                messages = _messages(response)
                assert await anext(messages) == ["event: ready", "data: {}"]
                hub.close()  # what `serve` does on shutdown: the stream ends cleanly
                server.should_exit = True
                assert [m async for m in messages] == []
        await task
        assert hub.clients == 0

    run(main())
