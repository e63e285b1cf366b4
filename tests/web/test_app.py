"""The routes of sixminutes/web/app.py in-process (httpx's ASGITransport, no server, the
service not started): framing, ?limit, gzip, the resync a DELETE sends to open pages, and
the live service's purge on its own clock."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import httpx
import pytest

from helpers import END, WINDOW, raw
from sixminutes.call import decode
from sixminutes.config import Config
from sixminutes.service import Service
from sixminutes.web.app import create_app

TOKEN = "tok-app-7c1e"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def service(**options: Any) -> Service:
    clock = options.pop("clock", lambda: END + 120.0)
    return Service(Config(token=TOKEN, **options), clock=clock)


def request(svc: Service, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(svc))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8360") as c:
            return await c.request(method, path, **kwargs)
    return asyncio.run(send())


def raise_alerts(svc: Service, n: int) -> None:
    decoded = decode(raw(_id="a", ccnq_profile="carrier1", ccnq_direction="egress"))
    for i in range(n):
        svc.engine.alerts.raise_alert("p", f"carrier{i}: trouble", (f"carrier{i}",), WINDOW,
                                      decoded, {"profile": f"carrier{i}"})


def events(sub: Any) -> list[tuple[str, Any]]:
    out = []
    while (message := sub._pop()) is not None:
        fields = dict(line.split(": ", 1) for line in message.decode().strip("\n").split("\n"))
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_the_page_may_not_be_framed():
    svc = service()
    for path in ("/6minutes", "/6minutes/"):
        response = request(svc, "GET", path)
        assert response.status_code == 200
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_limit_cuts_the_alerts_and_incidents_at_exactly_n():
    svc = service()
    raise_alerts(svc, 3)
    for path in ("/6minutes/alerts", "/6minutes/incidents"):
        assert len(request(svc, "GET", path).json()) == 3
        for n in (1, 2, 3, 5):
            assert len(request(svc, "GET", path, params={"limit": n}).json()) == min(n, 3), (path, n)
        assert len(request(svc, "GET", path, params={"limit": ""}).json()) == 3


def test_large_json_is_gzipped_for_a_client_that_takes_it_and_small_json_is_not():
    svc = service()
    svc.engine.feed_batch([raw(_id=f"c{i}", ccnq_profile=f"carrier{i}", ccnq_direction="egress")
                           for i in range(20)], "test")
    big = request(svc, "GET", "/6minutes/data", headers={"Accept-Encoding": "gzip"})
    assert big.headers.get("content-encoding") == "gzip"
    assert len(big.content) > 1024 and str(WINDOW) in big.json()
    plain = request(svc, "GET", "/6minutes/data", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == big.json()
    small = request(svc, "GET", "/6minutes/alerts", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers and small.json() == []


def test_a_delete_tells_open_pages_to_refetch_everything():
    svc = service()
    svc.engine.feed_batch([raw(_id="c1")], "test")
    raise_alerts(svc, 1)
    for path, counted in (("/6minutes/data", "windows_deleted"), ("/6minutes/alerts", "alerts_deleted")):
        with svc.hub.subscribe() as sub:
            assert events(sub) == [("ready", {})]
            response = request(svc, "DELETE", path, headers=BEARER)
            assert response.json() == {"ok": True, counted: 1}
            assert events(sub) == [("resync", {"lost": 0})], path
    assert svc.engine.store.windows() == [] and len(svc.engine.alerts) == 0


def test_the_live_service_purges_past_retention_once_a_minute_on_its_clock():
    now = [float(END)]
    svc = service(retention_hours=1, clock=lambda: now[0])
    svc.engine.feed_batch([raw(_id="c1")], "test")
    raise_alerts(svc, 1)
    svc.tick()
    assert svc.engine.store.windows() == [WINDOW]
    now[0] = END + 2 * 3600  # past retention, and more than a minute after the last purge
    svc.tick()
    assert svc.engine.store.windows() == [] and len(svc.engine.alerts) == 0
    svc.engine.feed_batch([raw(_id="c2", end_epoch=str(int(now[0])))], "test")
    assert svc.engine.store.windows() != []
    now[0] += 2 * 3600 - 30  # the next window is past retention, but no minute since the purge
    svc._purged_at = now[0] - 30
    svc.tick()
    assert svc.engine.store.windows() != []
    now[0] += 30
    svc.tick()
    assert svc.engine.store.windows() == []


def test_deleted_windows_and_alerts_leave_the_state_file_at_the_next_snapshot(tmp_path):
    svc = service(state=str(tmp_path / "s.sqlite"))
    svc.open_state()
    try:
        svc.engine.feed_batch([raw(_id="c1")], "test")
        raise_alerts(svc, 1)
        asyncio.run(svc.snapshot())
        saved = svc.state.load()
        assert {t for t, *_ in saved.cells} == {WINDOW} and len(saved.alerts) == 1
        for path in ("/6minutes/data", "/6minutes/alerts"):
            assert request(svc, "DELETE", path, headers=BEARER).json()["ok"]
        asyncio.run(svc.snapshot())
        saved = svc.state.load()
        assert list(saved.cells) == [] and saved.alerts == []
    finally:
        svc.state.close()


def test_deleting_all_data_erases_the_hourly_history_and_the_plugins_memory_of_it(tmp_path):
    """DELETE /6minutes/data erases what was learned from the windows too: yesterday's calls
    folded into the hourly history (a drop today must not be judged against them) and the
    fraud plugin's memory of the countries each account called, in memory and, from the next
    snapshot on, in the state file a restart reads."""
    from sixminutes.baselines import DAY, baseline
    from sixminutes.stats import series_key

    today = WINDOW + 2 * DAY
    now = [float(today - DAY + 300)]
    path = str(tmp_path / "s.sqlite")
    svc = service(state=path, retention_hours=24, clock=lambda: now[0])
    svc.open_state()
    key = series_key("calls", {"direction": "egress", "profile": "p"})
    svc.engine.feed_batch([raw(_id=f"y{i}", end_epoch=str(today - DAY + i), ccnq_profile="p",
                               ccnq_direction="egress", ccnq_account="acct",
                               ccnq_to_e164="+3361234567") for i in range(100)], "test")
    now[0] = float(today + 360 + 30)  # yesterday's window is past retention: it is hourly history now
    svc._purge()
    assert baseline(svc.engine.store, svc.engine.traffic.history, today, key).yesterday == 100
    fraud = next(p.module for p in svc.engine.plugins.plugins if p.name == "fraud")
    assert ("acct", "egress") in fraud.known
    try:
        asyncio.run(svc.snapshot())
        assert list(svc.state.load().history)  # (what the DELETE must take out of the file)
        assert request(svc, "DELETE", "/6minutes/data", headers=BEARER).json()["ok"]
        assert svc.engine.traffic.history.hours == {}
        assert baseline(svc.engine.store, svc.engine.traffic.history, today, key).yesterday is None
        assert fraud.known == {} and fraud.last_seen == {}
        svc.engine.feed_batch([raw(_id=f"t{i}", end_epoch=str(today + i), ccnq_profile="p",
                                   ccnq_direction="egress") for i in range(10)], "test")
        now[0] = float(today + 360 + 120)  # today's window is complete: judged
        svc.tick()
        assert svc.engine.store.windows() == [today]  # (counted: the clock is in that window)
        assert [a.msg for a in svc.engine.alerts.list() if a.plugin.startswith("traffic")] == []  # no drop against erased calls
        asyncio.run(svc.snapshot())
        saved = svc.state.load()
        assert list(saved.history) == [] and saved.history_hours == {}
        remembered = {entry[0] for entry in json.loads(saved.plugin_state["fraud"])["accounts"]}
        assert remembered == {"unknown"}  # (today's calls, after the DELETE: not acct's)
    finally:
        svc.state.close()

    async def restart() -> Service:
        after = service(state=path, retention_hours=24, clock=lambda: now[0])
        await after.start()
        await after.stop()
        return after

    after = asyncio.run(restart())
    assert after.engine.traffic.history.hours == {}
    fraud = next(p.module for p in after.engine.plugins.plugins if p.name == "fraud")
    assert ("acct", "egress") not in fraud.known and ("unknown", "egress") in fraud.known


def _drop_world(svc: Service, today: int, tag: str, today_calls: int = 10) -> None:
    """Yesterday 100 calls of carrier p in the window; today ``today_calls``."""
    svc.engine.feed_batch([raw(_id=f"{tag}y{i}", end_epoch=str(today - 86400 + i), ccnq_profile="p",
                               ccnq_direction="egress") for i in range(100)], "test")
    svc.engine.feed_batch([raw(_id=f"{tag}t{i}", end_epoch=str(today + i), ccnq_profile="p",
                               ccnq_direction="egress") for i in range(today_calls)], "test")


@pytest.mark.parametrize("judgement", ["saved", "not saved"])
def test_a_restart_after_the_snapshot_raises_no_traffic_alert_again(tmp_path, judgement):
    """A drop fires in the newest window, a snapshot saves it, the process dies (no last
    snapshot: its file is closed as a kill -9 would). The next start judges that window no
    more (the judgement saved), or judges it again without raising what its restored alerts
    say fired (a file of a version that did not save the judgement): the alert keeps its
    count, and no listener (the notifier) hears of it again."""
    today = WINDOW + 2 * 86400
    now = [float(today + 360 + 120)]  # today's window is complete: judged at the next tick
    path = str(tmp_path / "s.sqlite")
    before = service(state=path, retention_hours=48, clock=lambda: now[0])
    before.open_state()
    _drop_world(before, today, "a")
    before.tick()
    [drop] = [a for a in before.engine.alerts.list() if a.plugin == "traffic_drop"]
    assert (drop.timestamp, drop.count) == (today, 1)
    asyncio.run(before.snapshot())
    before.state.close()  # (killed: no stop, no last snapshot)
    if judgement == "not saved":
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM meta WHERE key = 'traffic'")

    after = service(state=path, retention_hours=48, clock=lambda: now[0])
    heard: list[str] = []
    after.engine.alerts.listeners.append(lambda alert: heard.append(alert.plugin))

    async def run() -> int | None:
        await after.start()
        resumed = after.engine.traffic.judged
        after.tick()
        await after.stop()
        return resumed

    resumed = asyncio.run(run())
    # (saved: the next window to judge; else the newest restored, to be judged again)
    assert resumed == (today + 360 if judgement == "saved" else today)
    [again] = [a for a in after.engine.alerts.list() if a.plugin == "traffic_drop"]
    assert (again.id, again.timestamp, again.count) == (drop.id, today, 1)
    assert "traffic_drop" not in heard
