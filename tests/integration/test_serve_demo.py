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
