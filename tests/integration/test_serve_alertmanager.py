"""Alerts reach a real Alertmanager, and through it the operator's receiver; webhooks too.

A carrier in trouble in the window before last makes the threshold rules fire; the same
carrier answering its calls in the last window resolves them. Alertmanager notifies its
webhook receiver (a real HTTP server of the test) of both.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from alertmanager import BINARY, Alertmanager
from receiver import Receiver
from service_process import config_toml, small_cdr, unique, window_of
from sixminutes.notify import sign

pytestmark = pytest.mark.skipif(shutil.which(BINARY) is None,
                                reason="prometheus-alertmanager is not installed (make test installs it)")


def settings(**serve) -> str:
    """Alerts resolve on the first complete clean window (no grace); plugin alerts stay firing."""
    return config_toml(**serve) + "\n[alerts]\nquiet_windows = 20\ngrace_seconds = 0\nclear_windows = 1\n"


def post_calls(service, profile: str, window: int, n: int, answered: bool) -> None:
    for _ in range(n):
        variables = ({"billsec": "60", "sip_term_status": "200"} if answered
                     else {"billsec": "0", "sip_term_status": "503"})
        response = service.post_cdr(orjson.dumps(small_cdr(window + 100, profile=profile, **variables)))
        assert response.status_code == 200, response.text


def notified(receiver: Receiver, status: str, alertname: str, profile: str):
    """The Alertmanager notifications with an alert of this name and carrier in this status."""
    def check(requests):
        return [alert for r in requests if r["json"] for alert in r["json"].get("alerts", [])
                if alert["status"] == status and alert["labels"].get("alertname") == alertname
                and alert["labels"].get("profile") == profile]
    return check


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def alertmanager(tmp_path, receiver):
    manager = Alertmanager(tmp_path / "alertmanager", receiver.url + "/am").start()
    yield manager
    manager.stop()


def test_a_carrier_in_trouble_pages_through_alertmanager_and_resolves_when_it_recovers(
        serve, alertmanager, receiver):
    service = serve(config=settings(alertmanager=[alertmanager.url], alertmanager_resend_seconds=2,
                                    public_url="http://noc.example.net:8360"))
    profile = unique("troubled")
    bad = window_of(time.time()) - 720  # the window before last: its next one is complete
    post_calls(service, profile, bad, 25, answered=False)

    [alert] = receiver.wait_for(notified(receiver, "firing", "network_failure_ratio", profile),
                                what="the firing network_failure_ratio alert")[:1]
    assert alert["labels"]["direction"] == "egress"
    assert alert["labels"]["severity"] == "critical"
    assert alert["generatorURL"].startswith("http://noc.example.net:8360/6minutes/alerts/")
    assert "network_failures/calls 100%" in alert["annotations"]["summary"]
    assert alert["startsAt"][:19] == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(bad))

    post_calls(service, profile, bad + 360, 25, answered=True)
    receiver.wait_for(notified(receiver, "resolved", "network_failure_ratio", profile),
                      what="the resolved network_failure_ratio alert")
    receiver.wait_for(notified(receiver, "resolved", "asr", profile), what="the resolved asr alert")
    ours = [a for a in service.alerts() if a["profile"] == profile and "rule" in a]
    assert ours and all(a["state"] == "resolved" and a["resolution"] == "recovered"
                        and a["starts_at"] == bad and a["ends_at"] == bad + 360 for a in ours)
    # The plugin alert (an unexpected 503) is still firing: 20 quiet windows have not passed.
    sip = [a for a in service.alerts() if a["profile"] == profile and a["plugin"] == "unexpected_sip"]
    assert sip and all(a["state"] == "firing" for a in sip)
    status = service.status()["notifications"]
    assert [(t["kind"], t["failed"], t["dropped"]) for t in status] == [("alertmanager", 0, 0)]
    firing = service.json("/6minutes/alerts", state="firing", doc=0)
    assert {a["state"] for a in firing} == {"firing"} and not any(a["id"] in {o["id"] for o in ours}
                                                                  for a in firing)
    assert service.get("/6minutes/alerts?state=open").status_code == 400
    metrics = service.get("/metrics").text
    assert 'sixminutes_alerts_firing{alertname="unexpected_sip"} ' in metrics
    assert 'sixminutes_alerts_firing{alertname="asr"}' not in metrics
    incidents = [line for line in metrics.splitlines() if line.startswith("sixminutes_incidents_firing{")]
    assert [line for line in incidents if f'profile="{profile}"' in line] == [
        f'sixminutes_incidents_firing{{account="",alertname="unexpected_sip",direction="egress",profile="{profile}",'
        'scope="carrier",severity="warning"} 1.0']


def test_the_contrib_alertmanager_config_is_valid():
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool (from prometheus-alertmanager) is not installed")
    config = Path(__file__).parents[2] / "contrib" / "alertmanager" / "alertmanager.yml"
    checked = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr


def test_with_alertmanager_down_ingest_goes_on_drops_are_counted_and_alerts_arrive_later(
        serve, alertmanager, receiver):
    service = serve(config=settings(alertmanager=[alertmanager.url], alertmanager_resend_seconds=1,
                                    notify_queue=2))
    alertmanager.stop()
    bad = window_of(time.time()) - 720
    profiles = [unique(f"down{i}") for i in range(4)]
    for profile in profiles:
        post_calls(service, profile, bad, 25, answered=False)
    for profile in profiles:  # every CDR counted while Alertmanager is away
        service.wait_total(25, profile=profile)
    target = service.wait(lambda: (t := service.status()["notifications"][0])["failed"] >= 1
                          and t["dropped"] > 0 and t, what="failed deliveries and drops")
    assert target["queued"] <= 2 and target["last_error"]
    metrics = service.get("/metrics").text
    assert f'sixminutes_notifications_dropped_total{{target="{target["name"]}"}} ' in metrics
    dropped = float(next(line.rsplit(" ", 1)[1] for line in metrics.splitlines()
                         if line.startswith("sixminutes_notifications_dropped_total{")))
    assert dropped > 0

    alertmanager.start()  # the same port: the retries and the resend find it
    for profile in profiles:
        receiver.wait_for(notified(receiver, "firing", "network_failure_ratio", profile),
                          timeout=90, what=f"the alert of {profile} after Alertmanager came back")
    held = {a["labels"].get("profile") for a in alertmanager.alerts()
            if a["labels"]["alertname"] == "network_failure_ratio"}
    assert set(profiles) <= held


def test_webhooks_get_each_alert_that_fires_and_resolves_signed(serve, receiver):
    service = serve(config=settings(webhook=[receiver.url + "/hook"], webhook_secret="hook-secret"))
    profile = unique("hooked")
    bad = window_of(time.time()) - 720
    post_calls(service, profile, bad, 25, answered=False)

    def posts(state):
        return lambda requests: [r for r in requests if r["path"] == "/hook"
                                 and r["json"]["profile"] == profile
                                 and r["json"].get("rule") == "asr" and r["json"]["state"] == state]

    [firing] = receiver.wait_for(posts("firing"), what="the asr incident firing")
    assert firing["headers"]["X-Sixminutes-Signature"] == sign(
        "hook-secret", firing["body"], firing["headers"]["X-Sixminutes-Timestamp"])
    assert firing["headers"]["X-Sixminutes-Event"] == "firing"
    item = firing["json"]  # the incident, with its first record's sample CDR
    assert item["windows"] == 1 and item["carrier"] == f"{profile}/egress" and item["doc"]["variables"]
    listed = service.get(f"/6minutes/incidents/{item['id']}").json()
    assert {k: v for k, v in listed.items() if k not in ("state", "ends_at", "resolution", "count", "records")} \
        == {k: v for k, v in item.items() if k not in ("state", "ends_at", "resolution", "count", "doc")}
    [record] = listed["records"]
    assert record["id"] == item["alerts"][0] and record["rule"] == "asr"
    assert any(i["id"] == item["id"] for i in service.json("/6minutes/incidents", state="firing"))
    assert not any(i["id"] == item["id"] for i in service.json("/6minutes/incidents", state="resolved"))
    assert len(service.json("/6minutes/incidents", limit="1")) == 1
    assert service.get("/6minutes/incidents?state=open").status_code == 400
    groups = service.json("/6minutes/incidents", group="carrier")
    [ours] = [g for g in groups if g["profile"] == profile]
    assert {s["rule"] for s in ours["symptoms"]} >= {"asr", "network_failure_ratio"}
    post_calls(service, profile, bad + 360, 25, answered=True)
    [resolved] = receiver.wait_for(posts("resolved"), what="the asr incident resolved")
    assert resolved["json"]["id"] == item["id"] and resolved["json"]["ends_at"] == bad + 360
    assert resolved["headers"]["X-Sixminutes-Signature"] == sign(
        "hook-secret", resolved["body"], resolved["headers"]["X-Sixminutes-Timestamp"])
    assert "hook-secret" not in orjson.dumps(service.status()).decode()
    assert "hook-secret" not in service.stderr_text()
