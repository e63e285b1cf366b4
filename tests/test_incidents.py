"""Incidents: the records of one condition seen as one row, grouped per carrier, explaining accounts."""
from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from helpers import WINDOW, raw
from sixminutes.alerts import SEED_RULES, Alerts
from sixminutes.call import decode
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.incidents import carriers, incidents_of
from sixminutes.lifecycle import Lifecycle

_ids = itertools.count()


def record(alerts: Alerts, plugin: str, labels: dict, timestamp: int, value: float, bound: float,
           severity: str = "warning"):
    sample = decode(raw(_id=f"s{next(_ids)}", ccnq_profile="someone", ccnq_account="acct"))
    return alerts.raise_alert(plugin, f"{plugin} {value}", list(labels.values()), timestamp,
                              sample, {"rule": plugin, "labels": labels, "value": value,
                                       "bound": bound, "samples": 30, "severity": severity})


CARRIER = {"direction": "egress", "profile": "kestrel"}
ACCOUNT = {"account": "acme", "direction": "egress"}


def test_the_records_of_consecutive_windows_are_one_incident_with_its_peak_and_span():
    alerts = Alerts()
    for k, value in enumerate([0.6, 0.9, 0.7]):
        record(alerts, "zero_duration_ratio", CARRIER, WINDOW + k * 360, value, 0.5)
    [incident] = alerts.incidents()
    assert (incident.first_window, incident.last_window, incident.windows) == (
        WINDOW, WINDOW + 720, 3)
    assert incident.peak == 0.9 and incident.msg == "zero_duration_ratio 0.9"
    assert incident.labels == CARRIER and incident.scope == "carrier"
    assert incident.carrier == "kestrel/egress" and incident.state == "firing"
    assert len(incident.alerts) == 3 and incident.to_json()["alerts"] == [a.id for a in incident.alerts]


def test_the_peak_of_a_lower_bound_is_its_lowest_value():
    alerts = Alerts()
    for k, value in enumerate([0.15, 0.05, 0.1]):
        record(alerts, "asr", CARRIER, WINDOW + k * 360, value, 0.2)
    assert alerts.incidents()[0].peak == 0.05


def test_a_resolved_condition_and_a_later_one_are_two_incidents():
    alerts = Alerts(lifecycle=Lifecycle(1, 0))
    record(alerts, "asr", CARRIER, WINDOW, 0.1, 0.2)
    alerts.resolve(WINDOW + 720, lambda condition, window: False)
    record(alerts, "asr", CARRIER, WINDOW + 1800, 0.1, 0.2)
    later, earlier = alerts.incidents()
    assert (earlier.state, earlier.resolution, earlier.ends_at) == ("resolved", "recovered", WINDOW + 360)
    assert later.state == "firing" and later.first_window == WINDOW + 1800
    assert earlier.id != later.id


def test_a_carrier_incident_explains_the_account_incidents_of_its_direction_and_time():
    alerts = Alerts()
    record(alerts, "network_failure_ratio", CARRIER, WINDOW, 0.5, 0.2, "critical")
    record(alerts, "account_zero_duration_ratio", ACCOUNT, WINDOW, 0.9, 0.8, "info")
    other = {"account": "acme", "direction": "ingress"}
    record(alerts, "account_zero_duration_ratio", other, WINDOW, 0.9, 0.8, "info")
    later = {"account": "zeta", "direction": "egress"}
    record(alerts, "account_zero_duration_ratio", later, WINDOW + 3600, 0.9, 0.8, "info")
    found = {(i.rule, i.labels.get("account"), i.labels["direction"]): i for i in alerts.incidents()}
    assert found[("account_zero_duration_ratio", "acme", "egress")].inhibited_by == "kestrel/egress"
    assert found[("account_zero_duration_ratio", "acme", "ingress")].inhibited_by is None
    assert found[("account_zero_duration_ratio", "zeta", "egress")].inhibited_by is None
    [group] = carriers(alerts.incidents())
    assert group["carrier"] == "kestrel/egress" and group["severity"] == "critical"
    assert group["explains"] == [found[("account_zero_duration_ratio", "acme", "egress")].id]
    # the live view of one record says the same
    [acme] = [a for a in alerts.list() if a.key == ["acme", "egress"]]
    assert alerts.incident(acme).inhibited_by == "kestrel/egress"


def test_a_carrier_incident_groups_its_overlapping_symptoms_with_the_worst_severity():
    alerts = Alerts(lifecycle=Lifecycle(1, 0))
    record(alerts, "zero_duration_ratio", CARRIER, WINDOW, 0.8, 0.5)
    record(alerts, "network_failure_ratio", CARRIER, WINDOW + 360, 0.5, 0.2, "critical")
    record(alerts, "mos", CARRIER, WINDOW + 720, 3.0, 3.5)
    alerts.resolve(WINDOW + 3600, lambda condition, window: False)  # all recovered
    record(alerts, "mos", CARRIER, WINDOW + 7200, 3.0, 3.5)  # hours later: another incident
    first, second = sorted(carriers(alerts.incidents()), key=lambda g: g["first_window"])
    assert [s["rule"] for s in first["symptoms"]] == ["zero_duration_ratio", "network_failure_ratio", "mos"]
    assert first["severity"] == "critical" and first["windows"] == 3
    assert [s["rule"] for s in second["symptoms"]] == ["mos"] and second["severity"] == "warning"


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 30)), max_size=40))
def test_every_record_is_in_exactly_one_incident_of_its_subject(raised):
    alerts = Alerts(lifecycle=Lifecycle(1, 0))
    for subject, k in raised:
        sample = decode(raw(_id=f"h{next(_ids)}"))
        alerts.raise_alert("p", subject, subject, WINDOW + k * 360, sample, {})
    alerts.resolve(WINDOW + 40 * 360, lambda condition, window: None)
    incidents = alerts.incidents()
    ids = [a.id for i in incidents for a in i.alerts]
    assert sorted(ids) == sorted(a.id for a in alerts.list())
    for incident in incidents:
        assert {a.subject for a in incident.alerts} == {incident.subject}
        assert incident.first_window <= incident.last_window
    assert [i.id for i in incidents] == [i.id for i in incidents_of(reversed(alerts.list()))]


def test_an_engine_reports_a_failing_carrier_as_one_incident_per_rule_and_direction():
    e = Engine(Config(retention_hours=None, rules={
        name: {"enabled": False} for name in SEED_RULES if name != "network_failure_ratio"}))
    docs = []
    for k in range(6):  # six windows of a carrier failing in both directions
        for direction in ("egress", "ingress"):
            for i in range(40):
                docs.append(raw(_id=f"{k}-{direction}-{i}", end_epoch=str(WINDOW + k * 360 + 10 + i),
                                ccnq_profile="kestrel", ccnq_direction=direction,
                                billsec="0", sip_term_status="503" if i % 2 else "486"))
    e.feed_many(docs)
    e.flush()
    incidents = [i for i in e.alerts.incidents() if i.rule == "network_failure_ratio"]
    assert sorted(i.labels["direction"] for i in incidents) == ["egress", "ingress"]
    assert all(i.windows == 6 and i.alerting_windows == 6 for i in incidents)


def test_an_incident_and_its_carrier_group_as_json_field_by_field():
    """What GET /6minutes/incidents, the events and the webhooks carry: every field, exactly."""
    alerts = Alerts(lifecycle=Lifecycle(1, 0))
    first = record(alerts, "asr", CARRIER, WINDOW, 0.15, 0.2)
    second = record(alerts, "asr", CARRIER, WINDOW + 360, 0.05, 0.2, severity="critical")
    account = record(alerts, "account_zero_duration_ratio", ACCOUNT, WINDOW + 360, 0.9, 0.8, "info")
    alerts.resolve(WINDOW + 1080, lambda condition, window: False)
    by_rule = {i.rule: i for i in alerts.incidents()}
    assert by_rule["asr"].to_json() == {
        "id": by_rule["asr"].id, "rule": "asr", "labels": CARRIER, "profile": "kestrel",
        "direction": "egress", "account": "", "scope": "carrier", "carrier": "kestrel/egress",
        "severity": "warning", "state": "resolved", "starts_at": WINDOW,
        "ends_at": WINDOW + 720, "resolution": "recovered", "first_window": WINDOW,
        "last_window": WINDOW + 360, "windows": 2, "alerting_windows": 2, "count": 2,
        "peak": 0.05, "bound": 0.2, "msg": "asr 0.05", "inhibited_by": None,
        "alerts": [first.id, second.id]}  # (the severity is the first record's)
    assert by_rule["asr"].id.startswith(f"{WINDOW}-")
    account_json = by_rule["account_zero_duration_ratio"].to_json()
    assert (account_json["scope"], account_json["account"], account_json["profile"],
            account_json["carrier"], account_json["severity"]) == ("account", "acme", "", None, "info")
    assert account_json["inhibited_by"] == "kestrel/egress"  # the carrier's ASR explains it
    [group] = carriers(alerts.incidents())
    assert group == {
        "id": f"{WINDOW}-kestrel/egress", "carrier": "kestrel/egress", "profile": "kestrel",
        "direction": "egress", "state": "resolved", "severity": "warning",
        "starts_at": WINDOW, "ends_at": WINDOW + 720, "first_window": WINDOW,
        "last_window": WINDOW + 360, "windows": 2, "symptoms": [by_rule["asr"].to_json()],
        "explains": [by_rule["account_zero_duration_ratio"].id]}
    assert account.id in account_json["alerts"]


def plugin_record(alerts: Alerts, timestamp: int, msg: str, **fields):
    sample = decode(raw(_id=f"s{next(_ids)}", ccnq_profile="someone", ccnq_account="acct"))
    return alerts.raise_alert("unexpected_sip", msg, ["kestrel", "503"], timestamp, sample, fields)


def test_a_plugin_incident_takes_its_labels_from_what_its_raiser_named_and_its_last_message():
    alerts = Alerts()
    plugin_record(alerts, WINDOW, "kestrel: SIP 503 (12)", profile="kestrel", direction="egress",
                  code=503, share=0.4, flag=True, nested={"a": 1}, labels="odd", severity="loud")
    for _ in range(2):  # raised twice in its window: the peak
        plugin_record(alerts, WINDOW + 360, "kestrel: SIP 503 (30)", profile="kestrel",
                      direction="egress", code=503)
    [incident] = alerts.incidents()
    assert incident.labels == {"profile": "kestrel", "direction": "egress", "code": "503"}
    assert (incident.scope, incident.carrier) == ("carrier", "kestrel/egress")
    assert incident.severity == "warning"  # "loud" is no severity
    assert (incident.peak, incident.bound, incident.msg) == (2.0, None, "kestrel: SIP 503 (30)")
    assert (incident.count, incident.alerting_windows, incident.state) == (3, 2, "firing")
    assert incident.ends_at is None and incident.resolution is None


def test_incidents_of_one_start_come_by_severity_and_carrier_groups_firing_first():
    alerts = Alerts(lifecycle=Lifecycle(1, 0))
    other = {"direction": "ingress", "profile": "osprey"}
    record(alerts, "asr", CARRIER, WINDOW, 0.1, 0.2, severity="info")
    record(alerts, "zero_duration_ratio", CARRIER, WINDOW, 0.9, 0.5, severity="critical")
    record(alerts, "network_failure_ratio", other, WINDOW - 3600, 0.5, 0.2)
    alerts.resolve(WINDOW + 720, lambda condition, window: False)
    found = alerts.incidents()
    assert [i.rule for i in found] == ["zero_duration_ratio", "asr", "network_failure_ratio"]
    assert len({i.id for i in found}) == 3  # two start in the same window: their ids differ
    record(alerts, "asr", CARRIER, WINDOW + 1080, 0.1, 0.2)  # kestrel fires again, osprey does not
    groups = carriers(alerts.incidents())
    assert [(g["carrier"], g["state"]) for g in groups][:1] == [("kestrel/egress", "firing")]
    resolved = [g for g in groups if g["state"] == "resolved"]
    assert [g["carrier"] for g in resolved] == ["kestrel/egress", "osprey/ingress"]  # newest first
    assert resolved[0]["severity"] == "critical" and resolved[0]["profile"] == "kestrel"
    assert resolved[0]["direction"] == "egress" and resolved[0]["ends_at"] == WINDOW + 360
    assert resolved[0]["windows"] == 1 and type(resolved[0]["windows"]) is int
