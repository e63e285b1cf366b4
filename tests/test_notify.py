"""Notifications: Alertmanager items, webhook signing, bounded coalescing queues, retries.

Deliveries go to a real HTTP server in the test (tests/receiver.py)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import time

import httpx
import orjson
import pytest

from helpers import WINDOW, raw
from receiver import Receiver
from sixminutes import notify
from sixminutes.alerts import Alerts
from sixminutes.call import decode
from sixminutes.lifecycle import Lifecycle
from sixminutes.notify import Notifier, Target, alert_labels, alertmanager_item, sign

CARRIER = {"ccnq_profile": "carrier1", "ccnq_direction": "egress", "ccnq_account": "acct1"}
_ids = itertools.count()


def plugin_alert(alerts: Alerts, code: str = "503", timestamp: int = WINDOW):
    sample = decode(raw(_id=f"s{next(_ids)}", **CARRIER))
    return alerts.raise_alert("unexpected_sip", f"carrier1 (egress): unexpected SIP {code}",
                              ["carrier1", "egress", code], timestamp, sample,
                              {"code": code, "profile": "carrier1", "direction": "egress"})


def rule_alert(alerts: Alerts, timestamp: int = WINDOW):
    sample = decode(raw(_id=f"s{next(_ids)}", **CARRIER))
    labels = {"direction": "egress", "profile": "carrier1"}
    return alerts.raise_alert("asr", "carrier1 (egress): answered/calls 5% < 20%",
                              list(labels.values()), timestamp, sample,
                              {"rule": "asr", "labels": labels, "value": 0.05, "severity": "critical"})


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


# --- what Alertmanager gets ------------------------------------------------------------------

def test_a_rule_alert_is_labelled_by_its_rule_and_labels():
    alert = rule_alert(Alerts())
    assert alert_labels(alert) == {"alertname": "asr", "severity": "critical",
                                   "direction": "egress", "profile": "carrier1"}


def test_a_plugin_alert_is_labelled_by_its_key_and_scalar_fields():
    alert = plugin_alert(Alerts())
    assert alert_labels(alert) == {"alertname": "unexpected_sip", "severity": "warning",
                                   "profile": "carrier1", "direction": "egress",
                                   "key": '["carrier1","egress","503"]', "code": "503"}


def test_firing_items_end_four_resends_ahead_and_resolved_ones_at_their_end():
    alerts = Alerts(lifecycle=Lifecycle(1, 0))
    alert = rule_alert(alerts)
    item = alertmanager_item(alert, now=WINDOW + 400, resend=60, public_url="http://six:8360")
    assert item["startsAt"] == notify._iso(WINDOW)
    assert item["endsAt"] == notify._iso(WINDOW + 400 + 240)
    assert item["generatorURL"] == f"http://six:8360/6minutes/alerts/{alert.id}"
    assert item["annotations"]["summary"] == alert.msg
    assert item["annotations"]["window"] == notify._iso(WINDOW)
    alerts.resolve(WINDOW + 360 * 3, lambda condition, window: False)
    item = alertmanager_item(alert, now=WINDOW + 5000, resend=60, public_url="http://six:8360")
    assert item["endsAt"] == notify._iso(WINDOW + 360)


def test_sign_is_the_hex_hmac_sha256_of_the_body():
    body = b'{"id":"x"}'
    assert sign("s3cret", body, "1796000000") == "sha256=" + hmac.new(
        b"s3cret", b"1796000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body, "1796000001") != sign("s3cret", body, "1796000000")


# --- queues ----------------------------------------------------------------------------------

def test_a_full_queue_drops_the_oldest_and_counts_it():
    alerts = Alerts()
    target = Target("webhook", "http://x", max_queue=2)
    a, b, c = (plugin_alert(alerts, code) for code in ("501", "502", "503"))
    for alert in (a, b, c):
        target.put(alert.id, alert)
    assert list(target.queue.values()) == [b, c] and target.dropped == 1


def test_the_newest_version_of_a_key_replaces_the_queued_one_and_wins_over_a_failed_batch():
    alerts = Alerts()
    target = Target("alertmanager", "http://x", max_queue=10)
    a, b = plugin_alert(alerts, "501"), plugin_alert(alerts, "502")
    target.put("k1", a)
    target.put("k2", b)
    batch = target.take(10)
    newer = plugin_alert(alerts, "503")
    target.put("k1", newer)  # arrives while the batch is in flight
    target.put_back(batch)  # the batch failed
    assert list(target.queue.items()) == [("k2", b), ("k1", newer)]


def test_only_firing_and_resolving_are_notified_not_a_growing_count():
    alerts = Alerts(lifecycle=Lifecycle(1, 0))
    notifier = Notifier(webhooks=["http://hook"], firing=alerts.lifecycle.firing,
                        incident=alerts.incident)
    alerts.listeners.append(notifier.changed)
    alert = plugin_alert(alerts)
    plugin_alert(alerts)  # the same alert, count 2
    plugin_alert(alerts, timestamp=WINDOW + 360)  # the next window: the same incident
    incident = alerts.incident(alert)
    assert incident.windows == 2 and incident.count == 3
    [target] = notifier.targets
    assert list(target.queue) == [(incident.id, "firing")]
    alerts.resolve(WINDOW + 360 * 4, lambda condition, window: None)
    assert list(target.queue) == [(incident.id, "firing"), (incident.id, "resolved")]
    # Each change is sent as it was: the firing one says firing though the alert resolved since.
    sent = [(state, orjson.loads(body)["state"]) for state, body in target.queue.values()]
    assert sent == [("firing", "firing"), ("resolved", "resolved")]


def test_plugin_alerts_without_a_key_are_told_apart_by_their_message():
    alerts = Alerts()
    sample = decode(raw(_id="m", **CARRIER))
    a = alerts.raise_alert("pdd", "carrier1: PDD over 5 s", None, WINDOW, sample, {})
    b = alerts.raise_alert("pdd", "carrier1: SIP 503 storm", None, WINDOW, sample, {})
    assert alert_labels(a) != alert_labels(b) and alert_labels(a)["msg"] == a.msg


def test_a_target_is_named_without_credentials_path_or_query_and_sends_them_as_auth():
    receiver = Receiver()
    try:
        hook = Target("webhook", receiver.url.replace("//", "//bot:pa%3Ass@") + "/T0/B0/secret?x=1", 5)
        assert hook.name == f"webhook:{receiver.url.split('//')[0]}//{receiver.url.split('//')[1]}/…"
        assert "secret" not in hook.name and "pa" not in hook.name and "@" not in hook.url
        alerts = Alerts()
        notifier = Notifier(firing=alerts.lifecycle.firing)
        notifier.targets = [hook]
        alerts.listeners.append(notifier.changed)
        plugin_alert(alerts)
        run(deliver(notifier, lambda: hook.sent))
        [request] = receiver.received()
        assert request["path"] == "/T0/B0/secret?x=1"
        assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"bot:pa:ss").decode()
    finally:
        receiver.close()


def test_an_alert_that_cannot_be_written_as_json_is_sent_with_a_note_instead_of_its_cdr():
    receiver = Receiver()
    try:
        alerts = Alerts()
        notifier = Notifier(webhooks=[receiver.url], firing=alerts.lifecycle.firing)
        alerts.listeners.append(notifier.changed)
        sample = decode(raw(_id="big", **CARRIER))
        alert = alerts.raise_alert("p", "m", None, WINDOW, sample, {})
        alert.sample = {"variables": {"n": 2**70}}  # a restored sample orjson cannot write
        alerts.resolve(WINDOW + 360 * 9, lambda condition, window: None)
        run(deliver(notifier, lambda: notifier.targets[0].sent == 2))
        docs = [r["json"]["doc"] for r in receiver.received()]
        assert all("cannot be written" in d["unsent"] for d in docs[1:])
    finally:
        receiver.close()


def test_the_backoff_is_capped_after_any_number_of_failures(monkeypatch):
    delays = []

    async def sleep(delay):
        delays.append(delay)
        if len(delays) >= 1100:
            raise asyncio.CancelledError

    monkeypatch.setattr(notify.asyncio, "sleep", sleep)
    alerts = Alerts()
    notifier = Notifier(webhooks=["http://127.0.0.1:9/never"], firing=alerts.lifecycle.firing)
    notifier.targets[0].put(("x", "firing"), ("firing", b"{}"))

    async def post(*args, **kwargs):
        raise notify._Retry("HTTP 503")

    monkeypatch.setattr(notifier, "_post", post)

    async def go():
        async with notify.httpx.AsyncClient() as client:
            try:
                await notifier._send(notifier.targets[0], client)
            except asyncio.CancelledError:
                pass

    asyncio.run(go())
    assert len(delays) == 1100 and max(delays) <= notify.MAX_BACKOFF * 1.2
    assert notifier.targets[0].failed == 1100


def test_resend_sends_the_whole_firing_set_to_alertmanager_past_the_queue_bound():
    receiver = Receiver()
    try:
        alerts = Alerts()
        notifier = Notifier([receiver.url], max_queue=1, firing=alerts.lifecycle.firing)
        for code in ("501", "502", "503"):
            plugin_alert(alerts, code)  # not heard: the queue would have kept only one
        notifier.resend_firing()
        assert notifier.targets[0].resend_due and not notifier.targets[0].queue
        run(deliver(notifier, lambda: notifier.targets[0].sent == 3))
        [request] = receiver.received()
        assert sorted(item["labels"]["code"] for item in request["json"]) == ["501", "502", "503"]
    finally:
        receiver.close()


# --- delivery, against a real HTTP server ----------------------------------------------------

async def deliver(notifier: Notifier, until, timeout: float = 15.0) -> None:
    task = asyncio.create_task(notifier.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not until():
            assert asyncio.get_running_loop().time() < deadline, "not delivered in time"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_webhook_posts_the_incident_item_signed():
    receiver = Receiver()
    try:
        alerts = Alerts()
        notifier = Notifier(webhooks=[receiver.url + "/hook"], secret="s3cret",
                            firing=alerts.lifecycle.firing, incident=alerts.incident)
        alerts.listeners.append(notifier.changed)
        alert = plugin_alert(alerts)
        run(deliver(notifier, lambda: notifier.targets[0].sent))
        [request] = receiver.received()
        assert request["path"] == "/hook"
        incident = alerts.incident(alert).to_json()
        assert request["json"] == orjson.loads(orjson.dumps({**incident, "doc": alert.doc}))
        assert request["json"]["alerts"] == [alert.id] and request["json"]["rule"] == "unexpected_sip"
        assert request["json"]["state"] == "firing" and request["json"]["doc"]["_id"]
        stamp = request["headers"]["X-Sixminutes-Timestamp"]
        assert abs(int(stamp) - time.time()) < 60
        assert request["headers"]["X-Sixminutes-Signature"] == sign("s3cret", request["body"], stamp)
        assert request["headers"]["X-Sixminutes-Event"] == "firing"
        assert notifier.targets[0].status()["sent"] == 1
    finally:
        receiver.close()


def test_a_target_that_fails_is_retried_with_backoff_until_it_accepts(monkeypatch):
    monkeypatch.setattr(notify, "MAX_BACKOFF", 0.2)
    receiver = Receiver(statuses=[503, 500])
    try:
        alerts = Alerts()
        notifier = Notifier(webhooks=[receiver.url], firing=alerts.lifecycle.firing)
        alerts.listeners.append(notifier.changed)
        plugin_alert(alerts)
        run(deliver(notifier, lambda: notifier.targets[0].sent))
        assert [r["status"] for r in receiver.received(accepted_only=False)] == [503, 500, 200]
        status = notifier.targets[0].status()
        assert (status["sent"], status["failed"], status["queued"]) == (1, 2, 0)
    finally:
        receiver.close()


def test_the_first_retry_comes_one_second_after_the_first_failure():
    """The backoff starts at 2**0 = 1 s (within the +-20 % jitter), on the notifier's clock."""
    receiver = Receiver(statuses=[503])
    try:
        alerts = Alerts()
        notifier = Notifier(webhooks=[receiver.url], firing=alerts.lifecycle.firing,
                            clock=lambda: 5000.0)
        alerts.listeners.append(notifier.changed)
        plugin_alert(alerts)
        target = notifier.targets[0]
        run(deliver(notifier, lambda: target.retry_at is not None))
        assert 0.8 <= target.retry_at - 5000.0 <= 1.2
        assert target.status()["failed"] == 1
    finally:
        receiver.close()


def test_a_4xx_answer_is_not_retried_and_is_counted_as_rejected():
    receiver = Receiver(statuses=[400])
    try:
        alerts = Alerts()
        notifier = Notifier(webhooks=[receiver.url], firing=alerts.lifecycle.firing)
        alerts.listeners.append(notifier.changed)
        plugin_alert(alerts)

        async def both():  # one event loop: the target's wake-up event belongs to it
            await deliver(notifier, lambda: notifier.targets[0].rejected == 1)
            plugin_alert(alerts, "502")
            await deliver(notifier, lambda: notifier.targets[0].sent)

        run(both())
        assert len(receiver.received(accepted_only=False)) == 2
        assert "HTTP 400" in notifier.targets[0].last_error
    finally:
        receiver.close()


def test_alertmanager_gets_a_batch_on_its_api_path():
    receiver = Receiver()
    try:
        alerts = Alerts()
        notifier = Notifier([receiver.url], firing=alerts.lifecycle.firing, public_url="http://six/")
        alerts.listeners.append(notifier.changed)
        rule_alert(alerts)
        plugin_alert(alerts)
        run(deliver(notifier, lambda: notifier.targets[0].sent == 2))
        request = receiver.received()[0]
        assert request["path"] == "/api/v2/alerts"
        names = sorted(item["labels"]["alertname"] for r in receiver.received() for item in r["json"])
        assert names == ["asr", "unexpected_sip"]
    finally:
        receiver.close()


@pytest.mark.parametrize("url", ["http://user:pw@127.0.0.1:9/x"])
def test_credentials_in_a_target_url_never_show_in_its_status(url):
    alerts = Alerts()
    notifier = Notifier(webhooks=[url], firing=alerts.lifecycle.firing)
    alerts.listeners.append(notifier.changed)
    plugin_alert(alerts)

    async def fail_once():
        await deliver(notifier, lambda: notifier.targets[0].failed >= 1)

    run(fail_once())
    text = orjson.dumps(notifier.status()).decode()
    assert "pw" not in text and "user" not in text and notifier.targets[0].last_error


def test_an_account_incident_a_failing_carrier_explains_is_not_notified():
    alerts = Alerts()
    notifier = Notifier(webhooks=["http://hook"], alertmanagers=["http://am:9093"],
                        firing=alerts.lifecycle.firing, incident=alerts.incident)
    alerts.listeners.append(notifier.changed)

    def rule(name, labels, timestamp=WINDOW):
        sample = decode(raw(_id=f"s{next(_ids)}", **CARRIER))
        return alerts.raise_alert(name, f"{name} {labels}", list(labels.values()), timestamp, sample,
                                  {"rule": name, "labels": labels, "value": 0.9, "bound": 0.5,
                                   "samples": 40, "severity": "warning"})

    carrier = rule("network_failure_ratio", {"direction": "egress", "profile": "carrier1"})
    rule("account_zero_duration_ratio", {"account": "acme", "direction": "egress"})
    other = rule("account_zero_duration_ratio", {"account": "zeta", "direction": "ingress"})
    webhook = next(t for t in notifier.targets if t.kind == "webhook")
    told = [orjson.loads(body)["rule"] + " " + orjson.loads(body)["direction"]
            for _, body in webhook.queue.values()]
    assert told == ["network_failure_ratio egress", "account_zero_duration_ratio ingress"]
    manager = next(t for t in notifier.targets if t.kind == "alertmanager")
    assert sorted(dict(k)["scope"] for k in manager.queue) == ["account", "carrier"]
    assert {i.id for i in notifier._incidents()} == {alerts.incident(carrier).id,
                                                     alerts.incident(other).id}


def test_a_target_url_is_posted_to_without_its_credentials_and_named_without_its_path():
    from sixminutes.notify import Target
    target = Target("webhook", "https://bot:t%3Aken@Hooks.example/T0/secret?x=1", 10)
    assert target.url == "https://hooks.example/T0/secret?x=1"
    assert target.auth is not None and target.auth._auth_header == httpx.BasicAuth("bot", "t:ken")._auth_header
    assert target.name == "webhook:https://hooks.example/…"
    plain = Target("alertmanager", "http://127.0.0.1:9093", 10)
    assert (plain.url, plain.auth, plain.name) == ("http://127.0.0.1:9093", None, "alertmanager:http://127.0.0.1:9093")
