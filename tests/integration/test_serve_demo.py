"""`serve --demo`: synthetic FreeSWITCH traffic through the ingest path fills the data."""
from __future__ import annotations

from service_process import config_toml


def test_demo_fills_the_data_within_seconds_and_it_is_kept_exactly(serve):
    service = serve(config=config_toml(), args=["--demo", "--demo-rate", "50"])
    service.wait(lambda: service.total() >= 40, timeout=8, what="40 demo calls")
    status = service.status()
    demo = [s for s in status["sources"] if s["name"] == "demo"]
    assert demo and demo[0]["rate"] == 50 and demo[0]["connected"]
    assert status["by_source"]["demo"]["accepted"] >= 40
    data = service.data()
    assert len({k.split("{")[0] for series in data.values() for k in series}) >= 8
    assert service.wait(lambda: service.status()["rate"] > 5, what="a rate in the status")
    assert service.get("/metrics").text.count('source="demo"') >= 1

    # What the demo counted is kept exactly: restart without --demo, nothing moves.
    service.stop()
    service.command.remove("--demo")
    service.start()
    accepted = service.status()["by_source"]["demo"]["accepted"]
    assert service.total() == accepted
    assert service.total("sip_status") == accepted
    assert service.total("account_calls") == accepted
    assert all(s["name"] != "demo" for s in service.status()["sources"])


def test_the_demo_reports_only_the_carrier_in_trouble(serve):
    """Five minutes of the default demo (4 CDRs a second, 1,200 CDRs), at a higher rate:
    kestrel, in trouble, opens its incidents on evidence; no healthy carrier is named."""
    service = serve(config=config_toml(seed_alerts=False), args=["--demo", "--demo-rate", "150"])
    service.wait(lambda: service.total() >= 1200, timeout=60, what="1,200 demo calls")

    def kestrel_incidents():
        found = service.json("/6minutes/incidents")
        return found if {i["rule"] for i in found if i["profile"] == "kestrel"} >= {
            "network_failure_ratio", "zero_duration_ratio"} else None

    incidents = service.wait(kestrel_incidents, timeout=30, what="kestrel's incidents")
    named = {i["profile"] or i["account"] for i in incidents if i["inhibited_by"] is None}
    assert named == {"kestrel"}, [i for i in incidents if i["profile"] != "kestrel"]
    assert {a["profile"] for a in service.alerts() if a["profile"]} == {"kestrel"}
    # each direction of kestrel is a carrier group, and its network failures (critical) may
    # open a few windows after its zero-duration calls (a warning) on a busy machine
    def critical_groups():
        found = service.json("/6minutes/incidents", group="carrier")
        return found if {g["severity"] for g in found} == {"critical"} else None

    groups = service.wait(critical_groups, timeout=30, what="kestrel's network failures")
    assert {g["profile"] for g in groups} == {"kestrel"}
