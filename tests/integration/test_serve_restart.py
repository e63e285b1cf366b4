"""Restarts: the service stopped with SIGTERM resumes from its checkpoint; the CouchDB server
restarting under the service is a state that passes, not a loss."""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import orjson

from service_process import Realistic, config_toml, small_cdr


def test_sigterm_restart_resumes_from_the_checkpoint_without_loss_or_double_count(
        pouchdb, serve):
    db = pouchdb.new_db()
    docs = Realistic(seed=201)
    pouchdb.post_many(db, docs.docs(20))
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], since="0", config=config_toml())
    # One CDR over HTTP with an unexpected SIP code: an alert that must survive the restart.
    alert_cdr = orjson.dumps(small_cdr(profile="restart-carrier", sip_term_status="503"))
    assert service.post_cdr(alert_cdr).json() == {"ok": True, "outcome": "accepted"}
    service.wait_total(21)
    service.wait_caught_up(pouchdb, db)
    alerts = service.wait(lambda: service.alerts(), what="the alert")
    assert [a["msg"] for a in alerts if a["profile"] == "restart-carrier"] == \
        ["restart-carrier (egress): unexpected SIP 503"]

    assert service.stop() in (0, -15)  # uvicorn re-raises the SIGTERM it handled
    assert "Application shutdown complete" in service.stderr_text()
    pouchdb.post_many(db, docs.docs(15))  # while the service is down
    service.start()

    service.wait_total(36)
    service.wait_caught_up(pouchdb, db)
    pouchdb.post_many(db, docs.docs(4))  # and live again
    service.wait_total(40)
    service.wait_caught_up(pouchdb, db)
    assert service.total() == 40
    status = service.status()
    assert status["accepted"] == 40
    assert status["rejected"] == {}  # nothing read twice: no duplicate
    assert status["by_source"] == {service.source()["name"]: {"accepted": 39},
                                   "http": {"accepted": 1}}
    after = {a["id"]: a for a in service.alerts()}
    for alert in alerts:  # the generator's CDRs raise alerts of their own, and may add counts
        kept = after[alert["id"]]
        assert {k: v for k, v in kept.items() if k != "count"} == \
            {k: v for k, v in alert.items() if k != "count"}
        assert kept["count"] >= alert["count"]
    ours = [a for a in after.values() if a["profile"] == "restart-carrier"]
    assert [(a["msg"], a["count"]) for a in ours] == [("restart-carrier (egress): unexpected SIP 503", 1)]
    # The HTTP CDR is in the saved windows, not replayed from the journal a second time.
    assert service.post_cdr(alert_cdr).json() == {"ok": True, "outcome": "duplicate"}
    assert service.total() == 40


def test_restart_twice_keeps_totals_exact(pouchdb, serve):
    db = pouchdb.new_db()
    docs = Realistic(seed=202)
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], since="0", config=config_toml())
    expected = 0
    for _ in range(3):
        pouchdb.post_many(db, docs.docs(7))
        expected += 7
        for _ in range(3):
            assert service.post_cdr(orjson.dumps(small_cdr())).status_code == 200
            expected += 1
        service.wait_total(expected)
        service.wait_caught_up(pouchdb, db)
        service.restart()
        service.wait_total(expected)
    assert service.status()["rejected"] == {}
    assert service.starts == 4


def test_restart_before_any_change_arrived_does_not_lose_docs_written_while_down(
        pouchdb, serve):
    """--since now applies to a feed with no saved position; once the service has followed
    the feed, a restart must resume from where it was, not from a new "now" — or a quiet
    feed (no CDR yet since the first start) loses what is written while the service is
    restarted. (pouchdb-server answers a since=now feed's headers only with the first row or
    heartbeat, 10 s later, so the source says "connecting" here where a CouchDB would say
    "connected"; the request has reached the server and the feed is open.)"""
    db = pouchdb.new_db()
    docs = Realistic(seed=203)
    pouchdb.post_many(db, docs.docs(3))  # before the first start: not counted (--since now)
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], config=config_toml())
    service.wait(lambda: service.source()["state"] in ("connecting", "connected"),
                 what="the feed to start")
    time.sleep(0.5)  # the feed's request is at the server
    assert service.source()["position"] == 3 and service.total() == 0  # "now" resolved
    service.stop()
    pouchdb.post_many(db, docs.docs(5))  # while the service is down
    service.start()
    service.wait_feed_live(pouchdb, db)
    pouchdb.post_many(db, docs.docs(2))
    service.wait_caught_up(pouchdb, db)
    assert service.total() == 7, (
        f"{service.total()} calls counted, expected 7: the 5 CDRs written to CouchDB while the "
        "service was down were skipped, the feed restarted from a new 'now' (no position was "
        "saved for a feed that had delivered no row yet)")


def test_couchdb_server_restart_mid_stream_reconnects_and_totals_stay_exact(
        pouchdb_factory, serve):
    server = pouchdb_factory(on_disk=True)
    db = server.new_db()
    docs = Realistic(seed=204)
    server.post_many(db, docs.docs(10))
    service = serve(couchdb=[f"{server.url}/{db}"], since="0", config=config_toml())
    service.wait_total(10)
    service.wait_caught_up(server, db)
    seen_states = {service.source()["state"]}
    assert seen_states == {"connected"}

    server.stop()

    def disconnected() -> bool:
        source = service.source()
        seen_states.add(source["state"])
        return not source["connected"]

    service.wait(disconnected, what="the source to show it is disconnected")
    down = service.source()
    assert down["state"] in ("connecting", "backoff") and down["last_error"]
    server.start()  # same port, same folder: the database and its sequence are back
    # (pouchdb-server sends a feed's headers with its first row or heartbeat: add rows now)
    server.post_many(db, docs.docs(10))
    for doc in docs.docs(5):
        server.put(db, doc)
    service.wait(lambda: service.source()["connected"], timeout=10,
                 what="the source to connect again")
    assert service.source()["reconnects"] >= 1
    service.wait_total(25)
    service.wait_caught_up(server, db)
    assert service.total() == 25
    status = service.status()
    assert status["accepted"] == 25 and status["rejected"] == {}
    assert "backoff" in seen_states or "connecting" in seen_states


def _saved_calls_and_accepted(state: Path) -> tuple[int, int]:
    """From a stopped service's state file: calls in the saved windows, CDRs saved as accepted
    (journal rows not yet counted are in neither: a restart replays them into both)."""
    with contextlib.closing(sqlite3.connect(state)) as db:
        calls = db.execute("SELECT coalesce(sum(count), 0) FROM cells "
                           "WHERE key LIKE 'calls{%'").fetchone()[0]
        accepted = db.execute("SELECT coalesce(sum(n), 0) FROM outcomes "
                              "WHERE outcome = 'accepted'").fetchone()[0]
    return int(calls), int(accepted)


def test_sigterm_while_snapshots_are_being_written_loses_nothing(serve):
    """Demo traffic goes through the POST path (journal, then count) until the service stops,
    so the state thread is busy and a snapshot is nearly always in flight when SIGTERM comes:
    the last snapshot must still hold every CDR counted before it. The race is a matter of
    milliseconds, so three services are stopped and started again and again for a few
    seconds; the state file is checked after each stop, the API at the end."""
    demo = ["--demo", "--demo-rate", "100000"]  # back to back
    services = [serve(config=config_toml(snapshot_seconds=0.0005), args=demo, start=False)
                for _ in range(3)]
    found: list[str] = []
    deadline = time.monotonic() + 5

    def cycle(service) -> None:
        service.start()
        stops = 0
        while time.monotonic() < deadline and not found:
            target = service.total() + 30
            service.wait(lambda: service.total() > target, what="demo traffic")
            service.stop()
            stops += 1
            calls, accepted = _saved_calls_and_accepted(service.state)
            if calls != accepted:
                found.append(f"after SIGTERM #{stops} the state file holds {calls} calls in "
                             f"its windows but {accepted} CDRs saved as accepted (and the "
                             f"journal has no row for the difference)")
            service.start()
        service.stop()

    threads = [threading.Thread(target=cycle, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Through the API, with nothing moving (no --demo): the restored totals.
    for service in services:
        service.command = [a for a in service.command if a not in demo]
        service.start()
        accepted = service.status()["by_source"]["demo"]["accepted"]
        got = service.total()
        assert not found and got == accepted, (
            f"{found[:1]}; restored through the API: {got} calls in the windows, but "
            f"{accepted} demo CDRs accepted")


def test_ids_of_past_windows_are_still_known_after_kill_9_and_restart(serve):
    """Windows left behind are saved packed (one blob each); their ids stay duplicates."""
    service = serve(config=config_toml(snapshot_seconds=0.2))
    now = int(time.time())
    docs = [small_cdr(now - age, profile="packed") for age in (3000, 2900, 1500, 1400, 700, 20)]
    for doc in docs:
        assert service.post_cdr(orjson.dumps(doc)).json()["outcome"] == "accepted"
    service.wait_total(len(docs), profile="packed")
    done = service.status()["snapshots"]["count"]
    service.wait(lambda: service.status()["snapshots"]["count"] >= done + 2, what="two snapshots more")
    with sqlite3.connect(service.state) as db:  # the old windows went to blobs, not rows
        # (ages 3000 s and 1500 s are at least two windows, both behind the newest by two)
        assert db.execute("SELECT count(*) FROM seen_packed").fetchone()[0] >= 2
    service.kill()
    service.start()
    for doc in docs:  # FreeSWITCH retrying every one of them: all already counted
        assert service.post_cdr(orjson.dumps(doc)).json()["outcome"] == "duplicate"
    assert service.total(profile="packed") == len(docs)


def test_posts_an_older_version_journaled_in_the_state_file_are_counted_once_after_an_upgrade(
        serve, tmp_path):
    """Before journal.py, POSTed bodies waited in the state file's journal table: a service
    upgraded while some were not yet in a snapshot counts them at start, once, and numbers
    its own journal records after them."""
    service = serve(start=False)
    service.start()  # a state file of this schema, then stopped with nothing journaled
    assert service.stop() in (0, -15)
    bodies = [orjson.dumps(small_cdr(profile="upgraded", uuid=f"old-{n}")) for n in range(3)]
    with contextlib.closing(sqlite3.connect(service.state)) as db, db:
        db.executemany("INSERT INTO journal (received, source, body) VALUES (?, ?, ?)",
                       [(time.time(), "http", body) for body in bodies])
    service.start()
    service.wait(lambda: service.total(profile="upgraded") == 3, what="the old journal counted")
    assert service.source("http")["position"] == 3
    new = orjson.dumps(small_cdr(profile="upgraded", uuid="new-1"))
    assert service.post_cdr(new).json() == {"ok": True, "outcome": "accepted"}
    assert service.source("http")["position"] == 4  # the journal numbers on after them
    assert service.stop() in (0, -15)
    service.start()  # the old rows are in the snapshot now: not counted again
    assert service.total(profile="upgraded") == 4 and service.status()["rejected"] == {}
    with contextlib.closing(sqlite3.connect(service.state)) as db:
        assert db.execute("SELECT count(*) FROM journal").fetchone() == (0,)
