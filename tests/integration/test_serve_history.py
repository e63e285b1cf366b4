"""What `sixminutes serve` remembers beyond its 24 hours of windows, across a `kill -9`: the
hourly history the baselines read (yesterday, the 7-day median) and the fraud plugin's memory
of the countries each account called.

Three runs on one state file. The first keeps 48 hours, so it takes yesterday's traffic (a
carrier's 100 calls in the window a day before the one judged) and an account's calls to FR
and DE 13 hours ago. The second keeps 24 hours: at start yesterday's window leaves the store
for the hourly history, and a snapshot saves it; the carrier now has 10 calls in that window;
then it is killed (-9). The third must still see yesterday (the drop fires, against 100), and
must still know the account's countries (calls to DE are not new, calls to ER are).
"""
from __future__ import annotations

import sqlite3
import time

import orjson

from receiver import Receiver
from service_process import ServiceProcess, config_toml, small_cdr, unique, window_of

DAY = 86400
FR, DE, ER = "+3361234", "+4915112", "+2917123"


def config(retention_hours: int, drop: bool = True) -> str:
    """Snapshots every 0.2 s; the drop rule off in the first two runs, so that it judges
    nothing before the kill (the third run judges the window, on the history it restored)."""
    rules = "" if drop else "[rules.traffic_drop]\nenabled = false\n"
    return f"retention_hours = {retention_hours}\n{rules}[serve]\nsnapshot_seconds = 0.2\n"


def post(service: ServiceProcess, ends: list[int], **variables: str) -> None:
    for end in ends:
        body = orjson.dumps(small_cdr(end, **variables))
        assert service.post_cdr(body).json() == {"ok": True, "outcome": "accepted"}


def calls_to(number: str, end: int, n: int, account: str) -> dict[str, object]:
    return {"ends": [end - i for i in range(n)], "profile": "bravo", "account": account,
            "ccnq_to_e164": number + f"{n:04d}", "billsec": "60",
            "answer_epoch": str(end - 60), "sip_term_status": "200"}


def post_calls(service: ServiceProcess, number: str, end: int, n: int, account: str) -> None:
    spec = calls_to(number, end, n, account)
    post(service, spec.pop("ends"), **spec)  # type: ignore[arg-type]


def yesterday_of(service: ServiceProcess, window: int, profile: str) -> dict:
    rows = service.json("/6minutes/baselines", window=window, profile=profile)["series"]
    assert len(rows) == 1, rows
    return rows[0]


def test_yesterdays_baseline_and_an_accounts_countries_survive_kill_9(serve):
    judged = window_of(time.time()) - 2 * 360  # a complete window, well within 24 hours
    carrier, account = unique("fall"), unique("acct")
    service = serve(config=config(48, drop=False))
    post(service, [judged - DAY + 3 * i for i in range(100)], profile=carrier)  # yesterday: 100
    early = judged - 13 * 3600  # the account called FR and DE 13 hours ago (12 are needed)
    post_calls(service, FR, early, 3, account)
    post_calls(service, DE, early, 3, account)
    service.wait_total(100, profile=carrier)
    service.stop()

    service.config_path.write_text(config(24, drop=False))
    service.start()
    assert yesterday_of(service, judged, carrier)["yesterday"] == 100  # from the hourly history
    assert service.total(profile=carrier) == 0  # (its window left the store at start)
    post(service, [judged + 3 * i for i in range(10)], profile=carrier)  # a tenth today
    service.wait_total(10, profile=carrier)
    saved = service.status()["snapshots"]["count"]
    service.wait(lambda: service.status()["snapshots"]["count"] >= saved + 2, what="snapshots")
    service.kill()

    service.config_path.write_text(config(24))
    service.start()
    found = yesterday_of(service, judged, carrier)
    assert (found["value"], found["yesterday"]) == (10, 100)
    assert service.status()["history_hours"] >= 1
    drops = service.wait(lambda: [a for a in service.alerts() if a["plugin"] == "traffic_drop"
                                  and a["profile"] == carrier], what="the traffic drop")
    found = {a["timestamp"]: (a["value"], a["baseline"]) for a in drops}
    # (only that window: the hour's other windows were never folded, the service held nothing
    # then, so yesterday is no evidence there, not the hour's mean)
    assert found == {judged: (10, 100)}

    now = int(time.time()) - 5
    post_calls(service, DE, now, 5, account)  # a country it called before the kill: not new
    post_calls(service, ER, now, 5, account)  # one it never called
    fraud = service.wait(lambda: [a for a in service.alerts() if a["plugin"] == "fraud"
                                  and a["account"] == account], what="the new country alert")
    assert {(a["country"], a["profile"]) for a in fraud} == {("ER", "bravo")}
    assert all("never called" in a["msg"] for a in fraud)

    service.stop()
    db = sqlite3.connect(service.state)
    try:
        hours = {hour for (hour,) in db.execute("SELECT hour FROM history_hours")}
        [(data,)] = db.execute("SELECT data FROM plugin_state WHERE name = 'fraud'").fetchall()
    finally:
        db.close()
    assert judged - DAY - (judged - DAY) % 3600 in hours
    accounts = {entry[0]: entry for entry in orjson.loads(data)["accounts"]}
    assert sorted(c[0] for c in accounts[account][4]) == ["DE", "ER", "FR"]


def test_a_traffic_drop_is_raised_and_notified_once_across_a_kill_9(serve):
    """A first run takes yesterday's 100 calls of a carrier and today's 10 with the drop rule
    off (on, it would judge the window while the calls still come in). The second run, with
    it on, judges the newest window restored: the drop fires, a webhook hears of it, a
    snapshot saves it; kill -9. The third start restores that window again, and must not
    judge it again: the alert keeps its id and a count of 1, and the webhook hears nothing
    more of it (an alert raised after the start, of another carrier, is notified: anything
    queued before it would have been sent first)."""
    receiver = Receiver()
    try:
        judged = window_of(time.time()) - 2 * 360  # complete, and the newest window with calls
        carrier, marker = unique("once"), unique("marker")
        settings = config_toml(webhook=[receiver.url + "/hook"])
        service = serve(config="retention_hours = 48\n[rules.traffic_drop]\nenabled = false\n"
                        + settings)
        post(service, [judged - DAY + 3 * i for i in range(100)], profile=carrier)
        post(service, [judged + 3 * i for i in range(10)], profile=carrier)
        service.wait_total(110, profile=carrier)
        service.stop()

        def drops() -> list[dict]:
            return [a for a in service.alerts() if a["plugin"] == "traffic_drop"
                    and a["profile"] == carrier]

        def hooked(profile: str, rule: str | None = None):
            return lambda requests: [r["json"] for r in requests if r["path"] == "/hook"
                                     and r["json"]["profile"] == profile
                                     and r["json"]["state"] == "firing"
                                     and (rule is None or r["json"]["rule"] == rule)]

        service.config_path.write_text("retention_hours = 48\n" + settings)
        service.start()
        [drop] = service.wait(drops, what="the traffic drop")
        assert (drop["timestamp"], drop["value"], drop["baseline"], drop["count"]) == (judged, 10, 100, 1)
        [told] = receiver.wait_for(hooked(carrier, "traffic_drop"), what="the drop's webhook")
        saved = service.status()["snapshots"]["count"]
        service.wait(lambda: service.status()["snapshots"]["count"] >= saved + 2, what="snapshots")
        service.kill()

        service.start()
        # (a snapshot runs a tick first: two after the start, the restored windows were judged)
        service.wait(lambda: service.status()["snapshots"]["count"] >= 2, what="snapshots")
        assert [(a["id"], a["count"]) for a in drops()] == [(drop["id"], 1)]
        post(service, [int(time.time()) - 5], profile=marker, billsec="0", sip_term_status="503")
        receiver.wait_for(hooked(marker), what="the marker's webhook")
        assert hooked(carrier, "traffic_drop")(receiver.received()) == [told]
        assert [(a["id"], a["count"]) for a in drops()] == [(drop["id"], 1)]
    finally:
        receiver.close()
