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
    while sub._ready or sub._queue or sub.lost:
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
        # the 17th overflowed: the 16 queued went with it, and the 33 after it
        assert fast.dropped == 0 and slow.dropped == 50 and hub.dropped == 50
        assert len(slow._queue) == 0 and slow._bytes == 0  # behind: holds nothing
        got = await drain(slow)
        assert got == [("ready", {}), ("resync", {"lost": 50})]
        hub.publish("stats", ["after"])  # caught up: follows again
        assert await drain(slow) == [("stats", ["after"])]
        assert slow.lost == 0 and slow.dropped == 50

    run(main())


def test_events_published_while_behind_are_lost_until_the_resync():
    """Once losing, a subscriber loses everything until it has read the resync, even if its
    queue has room again: it always reaches the resync, and one resync covers all."""

    async def main():
        hub = Hub(queue_size=2)
        sub = hub.subscribe()
        for i in range(2):  # 0, 1 queued
            hub.publish("stats", [i])
        assert parse(await sub.next()) == ("ready", {})
        assert parse(await sub.next()) == ("stats", [0])
        hub.publish("stats", [2])  # queued: room for it
        hub.publish("stats", [3])  # overflow: 1, 2 and 3 lost
        hub.publish("stats", [4])  # behind: lost
        assert await drain(sub) == [("resync", {"lost": 4})]
        assert hub.dropped == 4

    run(main())


def test_queue_is_bounded_in_bytes_too():
    async def main():
        hub = Hub(queue_size=1000, queue_bytes=1000)
        sub = hub.subscribe()
        big = "x" * 300  # each message is ~330 bytes encoded: 3 fit in 1000
        for i in range(3):
            hub.publish("stats", [i, big])
        assert len(sub._queue) == 3 and sub._bytes <= 1000 and sub.dropped == 0
        hub.publish("stats", [3, big])
        assert len(sub._queue) == 0 and sub._bytes == 0 and sub.dropped == 4
        huge = "y" * 5000  # bigger than the bound: still goes to a client that is not behind
        assert await drain(sub) == [("ready", {}), ("resync", {"lost": 4})]
        hub.publish("alert", {"huge": huge})
        assert await drain(sub) == [("alert", {"huge": huge})]

    run(main())


def test_default_bounds_take_one_tick_burst_at_1000_cdr_per_s():
    """What the service publishes in one tick at 1,000 CDR/s (a ~200 KB stats batch and a few
    dozen alerts), several ticks in a row, reaches a reader that reads between ticks intact."""

    async def main():
        hub = Hub()
        sub = hub.subscribe()
        await sub.next()  # ready
        items = [{"timestamp": 1700000000, "name": "account_calls_account_c_direction_egress_",
                  "label": f'account_calls{{account="c{i:06d}",direction="egress"}}',
                  "data": {"sum": i, "count": i, "squares": i, "min": 1, "max": i}} for i in range(1000)]
        for tick in range(3):  # the reader is stalled for three ticks
            hub.publish("stats", items)
            for a in range(60):
                hub.publish("alert", {"id": f"{tick}-{a}", "msg": "asr below 0.4"})
        assert sub.dropped == 0 and hub.dropped == 0
        got = await drain(sub)
        assert len(got) == 3 * 61 and not any(event == "resync" for event, _ in got)

    run(main())


def test_take_joins_what_is_queued_in_order():
    async def main():
        hub = Hub(queue_size=4)
        sub = hub.subscribe()
        for i in range(3):
            hub.publish("stats", [i])
        assert await sub.take() == encode("ready", {}) + b"".join(encode("stats", [i]) for i in range(3))
        for i in range(5):  # the 5th overflows
            hub.publish("stats", [i])
        assert await sub.take() == encode("resync", {"lost": 5})
        for i in range(3):
            hub.publish("stats", [i])
        assert await sub.take(max_bytes=1) == encode("stats", [0])  # at least one message
        assert await sub.take(timeout=0.01) == encode("stats", [1]) + encode("stats", [2])
        assert await sub.take(timeout=0.01) == PING

    run(main())


def test_publish_never_blocks_with_1000_subscribers_not_reading():
    async def main():
        hub = Hub(queue_size=16)
        subs = [hub.subscribe() for _ in range(1000)]
        assert hub.clients == 1000
        for i in range(100):
            hub.publish("stats", [{"name": "calls", "data": i}])  # synchronous: returns
        assert hub.published == 100
        assert all(len(s._queue) == 0 and s.dropped == 100 for s in subs)
        assert hub.dropped == 1000 * 100
        got = await drain(subs[500])
        assert got == [("ready", {}), ("resync", {"lost": 100})]

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


def test_real_uvicorn_a_client_that_never_reads_costs_the_others_nothing():
    """A raw socket that sends the request and never reads: its socket buffers fill, the
    server's writes to it block, it loses events and then holds none, while a reader on the
    same server, 40 events behind, gets every event in order."""

    async def main():
        hub = Hub(queue_bytes=256 << 10)
        server, task, url = await _serve(hub, heartbeat=15)
        port = int(url.rsplit(":", 1)[1])
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(b"GET /6minutes/events HTTP/1.1\r\nHost: t\r\n\r\n")
        try:
            await _until(lambda: hub.clients == 1)
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                async with client.stream("GET", "/6minutes/events") as response:
                    messages = _messages(response)
                    assert await anext(messages) == ["event: ready", "data: {}"]
                    await _until(lambda: hub.clients == 2)
                    blob = "z" * 50_000
                    seen = []
                    for i in range(300):  # 15 MB, far past what the stalled socket can buffer
                        hub.publish("stats", [i, blob])
                        await asyncio.sleep(0.002)
                        while len(seen) < i - 40:  # the reader follows, a little behind
                            event, data = await anext(messages)
                            assert event == "event: stats", event
                            seen.append(json.loads(data.removeprefix("data: "))[0])
                    while len(seen) < 300:
                        event, data = await anext(messages)
                        assert event == "event: stats", event
                        seen.append(json.loads(data.removeprefix("data: "))[0])
            assert seen == list(range(300))  # the reader lost nothing
            stalled_sub = next(iter(hub._subscriptions))
            assert stalled_sub.dropped > 100 and hub.dropped == stalled_sub.dropped
            assert stalled_sub._bytes == 0 and len(stalled_sub._queue) == 0  # holds nothing
        finally:
            stalled.close()
            hub.close()
            server.should_exit = True
            await task

    run(main())
