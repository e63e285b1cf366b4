"""The CouchDB source under faults, with `sixminutes serve` as a real subprocess and a real
pouchdb-server: the server restarted mid-stream, a connection cut in the middle of a row,
HTTP errors (500, 401, 404), a server that accepts and never answers, one that sends its
headers and then falls silent. Each time the service must report the fault in
/6minutes/status (state, last error) while it lasts, reconnect by itself once it is over,
and end with every series of every window equal to the engine counting the same documents
offline: no document lost, none counted twice (a row read twice would show as `duplicate`).

The follower URL carries ``?heartbeat=`` (passed to _changes), so a silent socket is noticed
within two heartbeats instead of the default 20 s.
"""
from __future__ import annotations

import random

import pytest

from faulty_proxy import FaultyProxy
from service_process import (Realistic, ServiceProcess, config_toml, data_differences,
                             reference_data)


@pytest.fixture
def proxy(pouchdb):
    """A FaultyProxy in front of the session's pouchdb-server, passing everything through."""
    proxy = FaultyProxy(pouchdb.port).start()
    yield proxy
    proxy.close()


def assert_exact(service: ServiceProcess, docs: list[dict], what: str) -> None:
    """Every document counted once: the totals, the outcomes and every series."""
    status = service.status()
    assert status["accepted"] == len(docs), (what, status["accepted"], len(docs))
    assert status["rejected"] == {}, (what, status["rejected"])  # `duplicate` if read twice
    differences = data_differences(service.data(), reference_data(docs))
    assert not differences, f"{what}: {differences}"


def observe(service: ServiceProcess, check, what: str, timeout: float = 15.0) -> dict:
    """Poll the CouchDB source's status until ``check(source)``; return that source."""
    return service.wait(lambda: (lambda s: s if check(s) else None)(service.source()),
                        timeout, what)


def down(source: dict) -> bool:
    return not source["connected"] and source["state"] in ("connecting", "backoff") \
        and bool(source["last_error"])


def test_server_stopped_and_restarted_5_times_mid_stream(pouchdb_factory, serve):
    server = pouchdb_factory(on_disk=True)
    db = server.new_db()
    docs = Realistic(seed=501).docs(6 * 30)
    service = serve(couchdb=[f"{server.url}/{db}?heartbeat=1000"], since="0",
                    config=config_toml())
    written = 0
    seen_down = []
    for restart in range(1, 6):
        for i in range(written, written + 30, 5):  # small writes, as a cluster's arrive
            server.post_many(db, docs[i:i + 5])
        written += 30
        service.wait(lambda: service.total() > written - 30, 15,
                     f"a document of batch {restart} counted")
        server.stop()  # mid-stream: the service may still be reading this batch
        seen_down.append(observe(service, down, f"the source reported down #{restart}"))
        server.start()
        observe(service, lambda s: s["connected"], f"the source connected after #{restart}")
    server.post_many(db, docs[written:])
    service.wait_caught_up(server, db, timeout=20)

    for source in seen_down:
        assert source["last_error"] and source["last_error_at"], source
    source = service.source()
    assert source["state"] == "connected" and source["reconnects"] >= 5, source
    assert source["position"] == server.info(db)["update_seq"]
    assert_exact(service, docs, "after 5 server restarts")


def test_connection_cut_in_the_middle_of_a_changes_row(pouchdb, proxy, serve):
    db = pouchdb.new_db()
    generator = Realistic(seed=502)
    docs = generator.docs(150)  # ~10 KB each: the backfill is ~1.5 MB
    pouchdb.post_many(db, docs)
    rng = random.Random(502)
    proxy.cut_changes_after(*(rng.randrange(1_000, 200_000) for _ in range(3)))
    service = serve(couchdb=[f"{proxy.url}/{db}?heartbeat=1000"], since="0",
                    config=config_toml())
    service.wait(lambda: len(proxy.cuts) == 3, 20, "3 cuts during the backfill")
    # then cuts of the live feed, while documents keep arriving one batch at a time
    proxy.cut_changes_after(*(rng.randrange(100, 30_000) for _ in range(3)))
    while proxy.cuts_pending or len(proxy.cuts) < 6:
        more = generator.docs(5)
        pouchdb.post_many(db, more)
        docs += more
        service.wait(lambda: service.total() >= len(docs) - 5 or len(proxy.cuts) == 6, 20,
                     "the live feed to move on")
        assert len(docs) < 600, f"the proxy cut {len(proxy.cuts)} times, not 6"
    service.wait_caught_up(pouchdb, db, timeout=20)

    for cut in proxy.cuts:  # each cut left part of a row: a document without its end
        assert b'"doc":' in cut.tail and not cut.tail.endswith(b"\n"), cut
    source = service.source()
    assert source["reconnects"] >= 6, source
    assert "RemoteProtocolError" in source["last_error"] or "ended" in source["last_error"], \
        source
    assert_exact(service, docs, f"after {len(proxy.cuts)} cuts mid-row")


def test_http_errors_are_reported_and_retried_until_the_server_answers(pouchdb, proxy, serve):
    db = pouchdb.new_db()
    generator = Realistic(seed=503)
    docs = generator.docs(40)
    pouchdb.post_many(db, docs)
    service = serve(couchdb=[f"{proxy.url}/{db}?heartbeat=1000"], since="0",
                    config=config_toml())
    service.wait_caught_up(pouchdb, db)
    expected = {500: "HTTP 500", 401: "check the credentials", 404: "does not exist"}
    reported = {}
    for code, words in expected.items():  # each fault on its own, then the server is back
        proxy.set_mode("status", code)  # the live feed is dropped; every new request fails
        more = generator.docs(10)
        pouchdb.post_many(db, more)  # written while the feed is failing
        docs += more
        source = observe(service, lambda s, w=words: down(s) and w in s["last_error"],
                         f"HTTP {code} reported")
        reported[code] = source
        if code == 500:  # 5xx: it keeps trying
            before = proxy.requests.get("status", 0)
            service.wait(lambda: proxy.requests.get("status", 0) > before, 10,
                         "another attempt during the 500s")
        proxy.set_mode("pass")
        observe(service, lambda s: s["connected"], f"connected once the {code}s stop")
        service.wait_caught_up(pouchdb, db, timeout=20)
        assert service.total() == len(docs)

    for code, source in reported.items():
        assert source["last_error"].startswith(f"HTTP {code}"), source
        assert source["state"] in ("backoff", "connecting") and source["connected"] is False
    assert "injected by the proxy" in reported[500]["last_error"]  # the server's own words
    assert service.source()["reconnects"] >= 7
    assert_exact(service, docs, "after HTTP 500, 401, 404")


def test_a_server_that_hangs_is_noticed_within_two_heartbeats(pouchdb, proxy, serve):
    db = pouchdb.new_db()
    generator = Realistic(seed=504)
    docs = generator.docs(30)
    pouchdb.post_many(db, docs)
    service = serve(couchdb=[f"{proxy.url}/{db}?heartbeat=500"], since="0",
                    config=config_toml())
    service.wait_caught_up(pouchdb, db)
    timeout_words = "ReadTimeout: not a byte (not even a heartbeat) in 1 s"

    proxy.set_mode("hang")  # accepts, reads the request, never answers a byte
    more = generator.docs(10)
    pouchdb.post_many(db, more)
    docs += more
    hung = observe(service, lambda s: down(s) and s["last_error"] == timeout_words,
                   "the hang reported as a read timeout")
    assert proxy.requests.get("hang", 0) >= 1

    proxy.set_mode("silent")  # the headers of a 200, then nothing: not even heartbeats
    more = generator.docs(10)
    pouchdb.post_many(db, more)
    docs += more
    observe(service, lambda s: s["connected"], "connected on the silent server's headers")
    silent = observe(service, lambda s: down(s) and s["last_error"] == timeout_words
                     and s["last_error_at"] > hung["last_error_at"],
                     "the silence after the headers reported as a read timeout")
    assert service.total() < len(docs)  # nothing came through the silent connection

    proxy.set_mode("pass")
    observe(service, lambda s: s["connected"], "connected once the server answers")
    service.wait_caught_up(pouchdb, db, timeout=20)
    assert service.source()["reconnects"] > silent["reconnects"]
    assert_exact(service, docs, "after a hang and a silent server")
