"""The _changes follower against a real CouchDB-protocol server (pouchdb-server).

Each test runs its own event loop (asyncio.run); timings are short (heartbeat 200 ms, backoff
50 ms) and every wait is bounded, so a hang fails the test instead of the suite.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couchdb_server import PouchServer
from helpers import cdr
from sixminutes.engine import Engine
from sixminutes.sources.couchdb import ChangesFollower, _seq_number, redact

FAST = {"heartbeat_ms": 200, "backoff_initial": 0.05, "backoff_max": 0.2}
LOGGER = "sixminutes.sources.couchdb"


def run(coro: Awaitable[Any], timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Consumer:
    """Runs a follower in a task, collecting (row, seq) pairs, as the service will."""

    def __init__(self, follower: ChangesFollower) -> None:
        self.follower = follower
        self.rows: list[tuple[dict, str]] = []
        self.raw: list[bytes] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for raw, seq in self.follower.rows():
            self.raw.append(raw)
            self.rows.append((orjson.loads(raw), seq))

    async def take(self, n: int, timeout: float = 5.0) -> list[tuple[dict, str]]:
        await until(lambda: len(self.rows) >= n or self.task.done(), timeout, f"{n} rows")
        if self.task.done():
            self.task.result()  # re-raise what killed it
        return self.rows[:n]

    def ids(self) -> list[str]:
        return [row["id"] for row, _ in self.rows]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def docs(n: int, start: int = 0) -> list[dict]:
    return [cdr(_id=f"call-{i:04d}", billsec=i) for i in range(start, start + n)]


def test_backfill_from_zero_yields_every_row_with_its_doc_and_seq(pouchdb: PouchServer) -> None:
    db = pouchdb.new_db()
    pouchdb.post_many(db, docs(5))

    async def main() -> None:
        follower = ChangesFollower(f"{pouchdb.url}/{db}", since="0", **FAST)
        consumer = Consumer(follower)
        rows = await consumer.take(5)
        assert [row["id"] for row, _ in rows] == [f"call-{i:04d}" for i in range(5)]
        assert all(row["doc"]["variables"]["billsec"] == str(i) for i, (row, _) in enumerate(rows))
        seqs = [orjson.loads(seq) for _, seq in rows]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        assert [row["seq"] for row, _ in rows] == seqs  # the seq of that very row
        assert all(raw.startswith(b"{") and b"\n" not in raw for raw in consumer.raw)
        assert follower.position == rows[-1][1]
        status = follower.status()
        assert status["state"] == "connected" and status["connected"] is True
        assert status["position"] == seqs[-1] and status["last_error"] is None
        assert status["reconnects"] == 0 and status["last_row_at"] > time.time() - 60
        orjson.dumps(status)  # JSON-ready
        await consumer.stop()
        assert follower.status()["state"] == "stopped"

    run(main())


def test_live_rows_arrive_after_the_follower_is_connected(pouchdb: PouchServer) -> None:
    db = pouchdb.new_db()
    pouchdb.post_many(db, docs(3))  # before "now": never seen

    async def main() -> None:
        follower = ChangesFollower(f"{pouchdb.url}/{db}", **FAST)
        assert follower.position == "now" and follower.status()["state"] == "stopped"
        consumer = Consumer(follower)
        await until(lambda: follower.status()["connected"], what="connected")
        await asyncio.sleep(0.3)  # heartbeats only
        assert consumer.rows == []
        pouchdb.put(db, cdr(_id="live-1"))
        pouchdb.post_many(db, [cdr(_id="live-2"), cdr(_id="live-3")])
        await consumer.take(3)
        assert consumer.ids() == ["live-1", "live-2", "live-3"]
        assert orjson.loads(follower.position) == pouchdb.info(db)["update_seq"]
        await consumer.stop()

    run(main())


def test_resumes_after_a_saved_position_without_repeats(pouchdb: PouchServer) -> None:
    db = pouchdb.new_db()
    pouchdb.post_many(db, docs(6))

    async def main() -> None:
        first = Consumer(ChangesFollower(f"{pouchdb.url}/{db}", since="0", **FAST))
        saved = (await first.take(3))[-1][1]
        await first.stop()

        second = Consumer(ChangesFollower(f"{pouchdb.url}/{db}", since=saved, **FAST))
        await second.take(3)
        await asyncio.sleep(0.5)
        assert second.ids() == ["call-0003", "call-0004", "call-0005"]
        await second.stop()

    run(main())


def test_design_docs_and_deletions_come_through_and_the_engine_rejects_them(
        pouchdb: PouchServer) -> None:
    db = pouchdb.new_db()
    pouchdb.put(db, {"_id": "_design/cdr", "views": {"all": {"map": "function(d){emit(d._id)}"}}})
    pouchdb.put(db, cdr(_id="gone"))
    pouchdb.delete(db, "gone")

    async def main() -> list[bytes]:
        consumer = Consumer(ChangesFollower(f"{pouchdb.url}/{db}", since="0", **FAST))
        await consumer.take(2)
        await consumer.stop()
        assert consumer.ids() == ["_design/cdr", "gone"]
        assert consumer.rows[1][0]["deleted"] is True
        return consumer.raw

    raw = run(main())
    engine = Engine()
    assert [engine.feed(row) for row in raw] == ["design_doc", "deleted"]


def test_server_restart_backoff_then_continues_without_repeats(pouchdb_factory, caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    server = pouchdb_factory(on_disk=True)
    db = server.new_db()
    server.post_many(db, docs(3))

    async def main() -> None:
        follower = ChangesFollower(f"{server.url}/{db}", since="0", **FAST)
        consumer = Consumer(follower)
        await consumer.take(3)
        server.stop()
        await until(lambda: follower.status()["state"] == "backoff", what="backoff")
        status = follower.status()
        assert status["connected"] is False and status["last_error"]
        assert status["position"] == 3  # kept while down
        server.start()
        server.post_many(db, docs(2, start=3))
        await consumer.take(5, timeout=10)
        await asyncio.sleep(0.5)
        assert consumer.ids() == [f"call-{i:04d}" for i in range(5)]  # nothing twice
        status = follower.status()
        assert status["state"] == "connected" and status["reconnects"] >= 1
        assert status["position"] == 5
        await consumer.stop()

    run(main(), timeout=40)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any("backoff" in m or "retrying" in m for m in messages)
    assert [r.levelname for r in caplog.records if "retrying" in r.getMessage()][0] == "WARNING"
    states = [m.rsplit(": ", 1)[-1] for m in messages if "retrying" not in m]
    # each change logged once: never the same state twice in a row
    assert all(a != b for a, b in zip(states, states[1:])), messages


def test_credentials_never_appear_in_status_errors_or_logs(pouchdb_factory, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx's (it logs URLs), httpcore's
    server = pouchdb_factory()
    server.set_admin("admin", "s3cret")
    db = server.new_db()
    server.post_many(db, docs(2))
    host = server.url.removeprefix("http://")
    closed_port = f"127.0.0.1:{_closed_port()}"

    async def main() -> list[str]:
        good = ChangesFollower(f"http://admin:s3cret@{host}/{db}", since="0", **FAST)
        wrong = ChangesFollower(f"http://admin:s3cret-wrong@{host}/{db}", since="0", **FAST)
        missing = ChangesFollower(f"http://admin:s3cret@{host}/nope", since="0", **FAST)
        down = ChangesFollower(f"http://admin:s3cret@{closed_port}/{db}", since="0", **FAST)
        consumers = [Consumer(f) for f in (good, wrong, missing, down)]
        await consumers[0].take(2)
        for follower in (wrong, missing, down):
            await until(lambda f=follower: f.status()["reconnects"] >= 2, what="retries")
        assert wrong.status()["last_error"].startswith("HTTP 401")
        assert missing.status()["last_error"].startswith("HTTP 404")
        assert "Connect" in down.status()["last_error"]
        texts = [repr(f) + orjson.dumps(f.status()).decode() for f in (good, wrong, missing, down)]
        for consumer in consumers:
            await consumer.stop()
        return texts

    texts = run(main())
    assert "***@" in texts[0]
    everything = "\n".join(texts + [caplog.text] + [r.getMessage() for r in caplog.records])
    assert "HTTP 401" in everything and "HTTP 404" in everything  # the failures were logged
    assert "s3cret" not in everything
    ours = "\n".join(texts + [r.getMessage() for r in caplog.records if r.name == LOGGER])
    assert "admin" not in ours  # the user is hidden too (the fixture's own requests name it)
    assert base64.b64encode(b"admin:s3cret").decode() not in everything  # no header dumps


def test_missing_database_is_a_backoff_state_not_a_crash(pouchdb: PouchServer) -> None:
    async def main() -> None:
        follower = ChangesFollower(f"{pouchdb.url}/no-such-db", since="0", **FAST)
        consumer = Consumer(follower)
        await until(lambda: follower.status()["reconnects"] >= 3, what="retries")
        status = follower.status()
        assert status["state"] in ("backoff", "connecting") and not status["connected"]
        assert "404" in status["last_error"] and "does not exist" in status["last_error"]
        assert not consumer.task.done()
        pouchdb.create_db("no-such-db")  # created later: the follower picks it up
        pouchdb.put("no-such-db", cdr(_id="late"))
        await consumer.take(1, timeout=5)
        assert consumer.ids() == ["late"] and follower.status()["connected"]
        await consumer.stop()

    run(main())


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap(caplog) -> None:
    """The wait after the n-th failure in a row is initial * 2**(n-1), capped, within the
    +-20 % jitter: read from the warning each failure logs ("retrying in 0.05 s")."""
    with socket.socket() as probe:  # a port nobody listens on: every attempt is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caplog.set_level(logging.WARNING, logger=LOGGER)

    async def main() -> None:
        follower = ChangesFollower(f"http://127.0.0.1:{port}/db", since="0", heartbeat_ms=200,
                                   backoff_initial=0.05, backoff_max=0.4)
        consumer = Consumer(follower)
        await until(lambda: follower.status()["reconnects"] >= 5, what="five retries")
        await consumer.stop()

    run(main())
    waits = [float(w) for w in re.findall(r"retrying in (\d+\.\d+) s", caplog.text)]
    assert len(waits) >= 5
    for wait, expected in zip(waits, [0.05, 0.1, 0.2, 0.4, 0.4]):
        assert 0.8 * expected - 0.005 <= wait <= min(0.4, 1.2 * expected) + 0.005, (waits, expected)


@pytest.mark.parametrize("phase", ["connecting", "connected", "backoff"])
def test_cancel_stops_promptly(pouchdb: PouchServer, phase: str) -> None:
    db = "missing-db" if phase == "backoff" else pouchdb.new_db()
    # pouchdb-server sends the response headers with the first heartbeat: with a long one the
    # follower waits for them ("connecting"); with 1.5 s it is connected and waits in a read.
    heartbeat = 1500 if phase == "connected" else 60_000

    async def main() -> None:
        # long waits everywhere (read, backoff): only the cancel can end them early
        follower = ChangesFollower(f"{pouchdb.url}/{db}", heartbeat_ms=heartbeat,
                                   backoff_initial=60.0, backoff_max=60.0)
        consumer = Consumer(follower)
        await until(lambda: follower.status()["state"] == phase, what=phase)
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await consumer.stop()
        assert time.monotonic() - started < 0.5
        assert follower.status()["state"] == "stopped"

    run(main())


def test_lag_is_reported(pouchdb: PouchServer) -> None:
    db = pouchdb.new_db()
    pouchdb.post_many(db, docs(10))

    async def main() -> None:
        follower = ChangesFollower(f"{pouchdb.url}/{db}", since="0", **FAST)
        assert follower.status()["lag"] is None  # not connected yet: unknown
        rows = follower.rows()
        for _ in range(3):  # done with two rows; the third is in our hands
            await anext(rows)
        await until(lambda: follower.status()["lag"] is not None, what="lag")
        assert follower.status()["lag"] == 8
        for _ in range(7):
            await anext(rows)
        assert follower.status()["lag"] == 1  # the last row: not done with it yet
        waiting = asyncio.ensure_future(anext(rows))  # asking for more: done with it
        await until(lambda: follower.status()["lag"] == 0, what="lag 0")
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        await rows.aclose()
        assert follower.status()["state"] == "stopped"

    run(main())


def test_a_silent_server_times_out_and_the_follower_reconnects_from_its_position() -> None:
    """A hung CouchDB (headers and a row, then not even a heartbeat): 2 heartbeats, then retry."""
    requests: list[bytes] = []

    async def hung(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if b"/_changes" not in head.split(b"\r\n")[0]:  # the lag probe: not found
            writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}")
        else:
            requests.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            row = b'{"seq":7,"id":"a","changes":[{"rev":"1-x"}],"doc":{"_id":"a"}}\n'
            writer.write(b"%x\r\n%s\r\n" % (len(row), row))
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writer.drain()
            await asyncio.sleep(10)  # then silence
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(hung, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        follower = ChangesFollower(f"http://127.0.0.1:{port}/db", since="0", heartbeat_ms=100,
                                   backoff_initial=0.05, backoff_max=0.1)
        consumer = Consumer(follower)
        await consumer.take(2)  # the same row again after the reconnection
        assert follower.status()["last_error"].startswith("ReadTimeout")
        assert follower.status()["reconnects"] >= 1
        await consumer.stop()
        server.close()

    run(main())
    assert b"since=0 " in requests[0] and b"since=7 " in requests[1]  # since is the last param


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- CouchDB 2/3 string seqs: pouchdb-server only speaks integers, so a scripted transport --------

def test_couchdb3_string_seqs_are_passed_back_verbatim_and_give_a_lag() -> None:
    requests: list[httpx.URL] = []
    rows = [b'{"seq":"124-g1AAAAB","id":"a","changes":[{"rev":"1-x"}],"doc":{"_id":"a"}}',
            b'{"seq":"125-g1AAAAC","id":"b","changes":[{"rev":"1-y"}],"doc":{"_id":"b"}}']

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url)
        if request.url.path.endswith("/_changes"):
            return httpx.Response(200, content=b"\n".join(rows) + b"\n\n")  # then the feed ends
        return httpx.Response(200, json={"db_name": "cdrs", "update_seq": "130-g1AAAAZ"})

    async def main() -> list[tuple[bytes, str]]:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        follower = ChangesFollower("http://u:p@couch:5984/cdrs", since='"123-g1AAAAA"',
                                   client=client, **FAST)
        assert follower.status()["position"] == "123-g1AAAAA"
        got = []
        async with contextlib.aclosing(follower.rows()) as stream:
            async for row in stream:
                got.append(row)
                if len(got) == 3:
                    break
            await until(lambda: follower.status()["lag"] is not None, what="lag")
            # holding the 3rd row (a repeat of 124): the position is still the 2nd's, 125
            assert follower.status()["lag"] == 130 - 125
        await client.aclose()
        return got

    got = run(main())
    assert got[:2] == [(rows[0], '"124-g1AAAAB"'), (rows[1], '"125-g1AAAAC"')]
    changes = [url for url in requests if url.path.endswith("/_changes")]
    assert changes[0].params["since"] == "123-g1AAAAA"  # the string, not its JSON
    assert changes[0].params["feed"] == "continuous" and changes[0].params["include_docs"] == "true"
    assert changes[0].params["heartbeat"] == "200"
    assert changes[1].params["since"] == "125-g1AAAAC"  # reconnected from the last row
    assert all(url.userinfo == b"" for url in requests)  # credentials go in the header


def test_seq_numbers_and_redaction() -> None:
    assert [_seq_number(s) for s in (42, "42", "42-g1AA", [42, "g1"], "now", None, True)] == \
        [42, 42, 42, 42, None, None, None]
    assert redact("http://admin:s3cret@127.0.0.1:5984/cdrs") == "http://***@127.0.0.1:5984/cdrs"
    assert redact("https://user@host/db") == "https://***@host/db"
    assert redact("http://host:5984/cdrs") == "http://host:5984/cdrs"
    assert redact("http://a:p%40ss@host/db") == "http://***@host/db"


def test_a_row_nested_too_deep_to_parse_is_handed_on_without_killing_the_feed():
    line = b'{"seq":7,"id":"x","doc":' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert ChangesFollower._parse(line) == {}


def _parse_fully(line: bytes) -> dict:
    """The follower's row parse as it was: the whole row through orjson (json for NaN, big
    numbers), then only the keys the follower reads."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            return {}
    return {k: row[k] for k in ("seq", "id", "last_seq", "error") if k in row} \
        if isinstance(row, dict) else {}


json_values = st.recursive(  # (64-bit integers: beyond, orjson made floats; msgspec keeps them)
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=400)
@given(row=st.dictionaries(st.sampled_from(["seq", "id", "last_seq", "error", "doc", "changes",
                                            "deleted", "pending", "x"]), json_values, max_size=6),
       nan=st.booleans(), spaced=st.booleans())
def test_a_row_is_read_as_a_whole_parse_would_read_it(row, nan, spaced):
    line = json.dumps(row, separators=(", ", ": ") if spaced else (",", ":")).encode()
    if nan:  # FreeSWITCH's bare nan, inside the document
        line = line[:-1] + (b', "doc": {"callStats": {"mos": nan}}}' if row else b'"doc": nan}')
    assert ChangesFollower._parse(line) == _parse_fully(line)


@pytest.mark.parametrize("line", [b'[1, 2]', b'"text"', b'{"seq": 1, "id": "x"', b"not json",
                                  b'{"seq": 18446744073709551616, "id": "big"}',
                                  b'{"seq": 1, "seq": 2, "id": "repeated"}'])
def test_odd_rows_are_read_as_a_whole_parse_would_read_them(line):
    assert ChangesFollower._parse(line) == _parse_fully(line)


def test_a_row_whose_document_is_not_utf8_still_gives_its_seq():
    line = b'{"seq":"5-a","id":"x","doc":{"variables":{"caller":"\xff\xfe"}}}'
    assert ChangesFollower._parse(line) == {"seq": "5-a", "id": "x"}
    engine = Engine()
    assert engine.feed(line, "couchdb") == "bad_json"  # counted once, not again after a restart


def test_the_url_query_goes_to_changes_and_its_heartbeat_sets_the_silence_allowed() -> None:
    """`--couchdb http://couch/db?heartbeat=150&style=all_docs`: an operator tunes the feed in
    its URL; the follower's own parameters (feed, include_docs, since) cannot be overridden."""
    heads: list[bytes] = []

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # keep-alive: GET <db> (to resolve "now"), then maybe _changes
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head.split(b"\r\n")[0])
                if b"/_changes" in heads[-1]:
                    break
                body = b'{"db_name":"db","update_seq":7}'
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(body), body))
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")  # then silence
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writer.drain()
            await asyncio.sleep(10)
        writer.close()

    async def main() -> dict:
        listening = await asyncio.start_server(server, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/db/?heartbeat=150&style=all_docs&feed=normal&since=99"
        follower = ChangesFollower(url, backoff_initial=0.05, backoff_max=0.1)
        consumer = Consumer(follower)
        await until(lambda: follower.status()["last_error"] is not None, what="a read timeout")
        status = follower.status()
        await consumer.stop()
        listening.close()
        return status

    started = time.monotonic()
    status = run(main())
    assert time.monotonic() - started < 3  # two heartbeats of 150 ms, not the default 20 s
    assert status["last_error"] == "ReadTimeout: not a byte (not even a heartbeat) in 0.3 s"
    assert status["last_error_at"] > time.time() - 10
    assert heads[0] == b"GET /db HTTP/1.1"  # the query is for _changes only
    assert heads[1] == (b"GET /db/_changes?style=all_docs&feed=continuous&include_docs=true"
                        b"&heartbeat=150&since=7 HTTP/1.1")


def test_a_heartbeat_in_the_url_that_is_not_a_positive_integer_keeps_the_default() -> None:
    for query in ("heartbeat=soon", "heartbeat=0", "heartbeat=-5", "heartbeat="):
        follower = ChangesFollower(f"http://couch:5984/cdrs?{query}", heartbeat_ms=4000)
        assert follower._params()["heartbeat"] == "4000", query


def test_the_position_covers_a_row_only_once_the_caller_asks_for_the_next(
        pouchdb: PouchServer) -> None:
    """The service awaits a SQLite write between receiving a row and counting it; a snapshot
    taken meanwhile saves ``position``: it must not cover the row yet, or a kill -9 right
    then would lose it."""
    db = pouchdb.new_db()
    pouchdb.post_many(db, docs(3))

    async def main() -> None:
        follower = ChangesFollower(f"{pouchdb.url}/{db}", since="0", **FAST)
        rows = follower.rows()
        _, first = await anext(rows)
        assert orjson.loads(first) == 1 and follower.position == "0"
        await asyncio.sleep(0.1)  # the caller busy with row 1: still not covered
        assert follower.position == "0" and follower.status()["position"] == 0
        _, second = await anext(rows)
        assert follower.position == first and second != first
        await rows.aclose()  # stopped while holding row 2: a restart reads it again
        assert follower.position == first

    run(main())


def test_the_feed_url_loses_its_credentials_and_query_but_keeps_an_encoded_database_name() -> None:
    follower = ChangesFollower("http://admin:p%40ss@Couch.example:5984/cdrs%2F2026/?heartbeat=500&style=all_docs&since=9")
    assert follower._db_url == "http://couch.example:5984/cdrs%2F2026"
    assert follower._extra == {"style": "all_docs"} and follower._heartbeat_ms == 500
    assert (follower._auth._auth_header if follower._auth else None) == httpx.BasicAuth("admin", "p@ss")._auth_header
    assert set(follower._secrets) == {"admin:p%40ss", "p%40ss", "p@ss"}
    assert follower.status()["url"] == "http://***@couch.example:5984/cdrs%2F2026/?heartbeat=500&style=all_docs&since=9"
    assert redact("http://[::1") == "***"  # not a URL: nothing of it shown
