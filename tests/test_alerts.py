"""Alerts: the record, dedup per (plugin, key or msg, window), threshold rules, unexpected SIP."""
from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest

from helpers import END, WINDOW, cdr, raw
from sixminutes.alerts import DEFAULT_RULES, SEED_RULES, Alert, Alerts, Rule, rules_from_config
from sixminutes.call import decode
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.lifecycle import Lifecycle

NOW = END + 120
_ids = itertools.count()


def sample(doc_id: str = "first"):
    """A decoded CDR to raise alerts with; its document is only built when an alert shows it."""
    return decode(raw(_id=doc_id, ccnq_profile="carrier1", ccnq_direction="egress",
                      ccnq_account="acct1", billsec="12", duration="20"))


def raise_(alerts: Alerts, plugin="p", msg="m", key=None, timestamp=WINDOW, doc_id="first",
           **fields):
    decoded = sample(doc_id)
    return alerts.raise_alert(plugin, msg, key, timestamp, decoded, fields), decoded


# --- Alerts ---------------------------------------------------------------------------------

def test_alert_record_fields():
    alerts = Alerts(clock=lambda: 1234.5)
    alert, decoded = raise_(alerts, plugin="unexpected_sip", msg="carrier1: SIP 503",
                            key=("carrier1", "503"), code="503", profile="carrier1",
                            direction="egress", account="acct1")
    assert alert.id.startswith(f"{WINDOW}-") and len(alert.id) == len(str(WINDOW)) + 13
    assert alert.to_json() == {
        "id": alert.id, "timestamp": WINDOW, "time": 1234.5, "msg": "carrier1: SIP 503",
        "plugin": "unexpected_sip", "key": ["carrier1", "503"], "count": 1,
        "profile": "carrier1", "direction": "egress", "account": "acct1",
        "duration": {"billable": 12, "total": 20}, "code": "503", "doc": decoded.doc,
        "state": "firing", "starts_at": WINDOW, "ends_at": None, "resolution": None,
    }
    assert alert.doc["_id"] == "first"
    assert alert.doc["variables"]["ccnq_profile"] == "carrier1"


def test_same_plugin_key_window_increments_count_and_keeps_first_doc():
    ticks = iter([100.0, 200.0, 300.0])
    alerts = Alerts(clock=lambda: next(ticks))
    first, first_cdr = raise_(alerts, key="k", msg="one", doc_id="cdr-1")
    assert first_cdr._doc is None  # the document is built only when the alert is shown
    again, second_cdr = raise_(alerts, key="k", msg="another message", doc_id="cdr-2")
    assert again is first
    assert first.count == 2
    assert first.doc["_id"] == "cdr-1" and first.msg == "one" and first.time == 100.0
    assert second_cdr._doc is None  # the document of a repeat is never built
    assert len(alerts) == 1 and alerts.raised == 1


def test_dedup_by_msg_when_no_key():
    alerts = Alerts()
    raise_(alerts, msg="same")
    raise_(alerts, msg="same")
    raise_(alerts, msg="other")
    assert sorted((a.msg, a.count) for a in alerts.list()) == [("other", 1), ("same", 2)]


def test_list_and_tuple_keys_are_the_same_key():
    alerts = Alerts()
    raise_(alerts, key=["a", "b"])
    raise_(alerts, key=("a", "b"))
    [alert] = alerts.list()
    assert alert.count == 2 and alert.key == ["a", "b"]


def test_unhashable_keys_are_accepted():
    alerts = Alerts()
    raise_(alerts, key={"profile": "x", "codes": ["503"]})
    raise_(alerts, key={"codes": ["503"], "profile": "x"})
    assert [a.count for a in alerts.list()] == [2]


def test_different_plugins_are_separate_rows():
    alerts = Alerts()
    raise_(alerts, plugin="a", key="k")
    raise_(alerts, plugin="b", key="k")
    assert len(alerts) == 2


def test_different_windows_are_separate_rows():
    alerts = Alerts()
    a, _ = raise_(alerts, key="k", timestamp=WINDOW)
    b, _ = raise_(alerts, key="k", timestamp=WINDOW + 360)
    assert a is not b and a.id != b.id
    assert (a.count, b.count) == (1, 1)


def test_list_is_newest_first():
    alerts = Alerts()
    raise_(alerts, msg="old window", timestamp=WINDOW - 360)
    raise_(alerts, msg="first", timestamp=WINDOW)
    raise_(alerts, msg="second", timestamp=WINDOW)
    raise_(alerts, msg="first", timestamp=WINDOW)  # a repeat does not move it
    assert [a.msg for a in alerts.list()] == ["second", "first", "old window"]
    assert [a["msg"] for a in alerts.to_json()] == ["second", "first", "old window"]


def test_ids_are_stable_for_the_same_dedup_key():
    a, _ = raise_(Alerts(), plugin="x", key="k")
    b, _ = raise_(Alerts(), plugin="x", key="k")
    c, _ = raise_(Alerts(), plugin="x", key="other")
    assert a.id == b.id != c.id


def test_listeners_hear_new_and_repeated_alerts():
    alerts = Alerts()
    heard: list[tuple[str, int]] = []
    alerts.listeners.append(lambda alert: heard.append((alert.msg, alert.count)))
    raise_(alerts, msg="m")
    raise_(alerts, msg="m")
    assert heard == [("m", 1), ("m", 2)]


def test_purge_before_and_all():
    alerts = Alerts()
    raise_(alerts, msg="a", timestamp=WINDOW - 720)
    raise_(alerts, msg="b", timestamp=WINDOW - 360)
    raise_(alerts, msg="c", timestamp=WINDOW)
    assert alerts.purge(WINDOW - 360) == 1
    assert [a.msg for a in alerts.list()] == ["c", "b"]
    assert alerts.purge() == 2
    assert len(alerts) == 0 and alerts.list() == []


def test_purged_alert_is_raised_afresh():
    alerts = Alerts()
    raise_(alerts, msg="m")
    raise_(alerts, msg="m")
    alerts.purge()
    alert, _ = raise_(alerts, msg="m")
    assert alert.count == 1


# --- rules ----------------------------------------------------------------------------------

def test_default_rules():
    rules = {r.name: r for r in rules_from_config({})}
    assert set(rules) == {"zero_duration_ratio", "network_failure_ratio", "asr",
                          "account_zero_duration_ratio", "mos"}
    assert rules["zero_duration_ratio"] == Rule("zero_duration_ratio", "zero_duration", "calls",
                                                ">", 0.5, 20)
    assert rules["account_zero_duration_ratio"].labels == ("account", "direction")
    assert rules["mos"].per is None and rules["mos"].op == "<"


def test_rule_crossed():
    above = Rule("r", "s", "calls", ">", 0.5, 1)
    below = Rule("r", "s", "calls", "<", 0.5, 1)
    assert above.crossed(0.6) and not above.crossed(0.5)
    assert below.crossed(0.4) and not below.crossed(0.5)


def test_rules_from_config_overrides_a_default():
    rules = {r.name: r for r in rules_from_config({"zero_duration_ratio": {"bound": 0.6}})}
    assert rules["zero_duration_ratio"] == replace(DEFAULT_RULES["zero_duration_ratio"], bound=0.6)
    assert rules["asr"] == DEFAULT_RULES["asr"]


def test_rules_from_config_adds_a_rule():
    rules = {r.name: r for r in rules_from_config({"short_ratio": {
        "series": "short_calls", "per": "calls", "op": ">", "bound": 0.3, "min_count": 50,
        "labels": ["profile", "direction"], "severity": "critical"}})}
    assert rules["short_ratio"] == Rule("short_ratio", "short_calls", "calls", ">", 0.3, 50,
                                        labels=("profile", "direction"), severity="critical")
    assert len(rules) == len(DEFAULT_RULES) + 1


def test_rules_from_config_disables_with_enabled_false():
    names = [r.name for r in rules_from_config({"asr": {"enabled": False}})]
    assert "asr" not in names and len(names) == len(DEFAULT_RULES) - 1


@pytest.mark.parametrize("table", [
    {"asr": {"op": ">="}},
    {"new": {"series": "x", "per": None, "op": "=", "bound": 1, "min_count": 1}},
])
def test_rules_from_config_bad_op(table):
    with pytest.raises(ValueError, match="op"):
        rules_from_config(table)


def test_rules_from_config_unknown_field_names_it():
    with pytest.raises(ValueError, match="bund"):
        rules_from_config({"asr": {"bund": 0.3}})


def test_rules_from_config_new_rule_missing_fields():
    with pytest.raises(ValueError, match="new_rule"):
        rules_from_config({"new_rule": {"series": "x"}})


def test_rule_describe_names_labels_value_bound_and_samples():
    rule = DEFAULT_RULES["zero_duration_ratio"]
    text = rule.describe({"direction": "egress", "profile": "carrier1"}, 0.55, 20)
    for part in ("carrier1", "egress", "zero_duration/calls 55% > 50%", "20 samples"):
        assert part in text
    text = DEFAULT_RULES["mos"].describe({"direction": "ingress", "profile": "c"}, 2.5, 10)
    for part in ("c", "ingress", "mean mos 2.50 < 3.5", "10 samples"):
        assert part in text


# --- thresholds through the engine ----------------------------------------------------------

def engine(seed: bool = True, **config) -> Engine:
    """An engine whose rules fire as the seed's did (on the point value, in one window) unless
    ``seed`` is false: these tests are of the plumbing; the guard is tested in test_thresholds.py."""
    rules = {name: dict(table) for name, table in (SEED_RULES if seed else {}).items()}
    for name, table in config.pop("rules", {}).items():
        rules.setdefault(name, {}).update(table)
    return Engine(Config(rules=rules, **config), clock=lambda: NOW)


def feed(e: Engine, n: int, end_epoch: int = END, **variables) -> None:
    base = {"ccnq_profile": "carrier1", "ccnq_direction": "egress", "ccnq_account": "acct1"}
    base.update(variables)
    for _ in range(n):
        assert e.feed(raw(_id=f"cdr-{next(_ids)}", end_epoch=end_epoch, **base)) is None


ANSWERED = {"billsec": "60", "answer_epoch": str(END - 60), "sip_term_status": "200"}
ZERO = {"billsec": "0", "sip_term_status": "486"}


def rule_alerts(e: Engine, name: str | None = None) -> list[Alert]:
    rules = {r.name for r in e.thresholds.rules}
    return [a for a in e.alerts.list() if a.plugin in rules and (name is None or a.plugin == name)]


def test_zero_duration_ratio_fires_once_per_carrier_window():
    e = engine()
    feed(e, 9, **ANSWERED)
    feed(e, 11, **ZERO)
    e.flush()
    [alert] = rule_alerts(e)
    assert alert.plugin == "zero_duration_ratio"
    assert alert.timestamp == WINDOW
    assert alert.key == ["egress", "carrier1"]
    assert alert.msg == DEFAULT_RULES["zero_duration_ratio"].describe(
        {"direction": "egress", "profile": "carrier1"}, 0.55, 20)
    assert alert.fields == {"rule": "zero_duration_ratio",
                            "labels": {"direction": "egress", "profile": "carrier1"},
                            "value": 0.55, "bound": 0.5, "samples": 20, "severity": "warning"}
    assert (alert.profile, alert.direction, alert.time) == ("carrier1", "egress", NOW)
    assert alert.doc["variables"]["ccnq_profile"] == "carrier1"
    feed(e, 20, **ZERO)
    e.flush()
    e.flush()
    [again] = rule_alerts(e, "zero_duration_ratio")
    assert again is alert and again.count == 1


def test_threshold_check_reads_a_compacted_window():
    e = engine()
    feed(e, 20, **ZERO)
    feed(e, 1, end_epoch=END + 1800, **ANSWERED)  # the engine moves on and packs WINDOW
    assert not e.store.window(WINDOW).live
    e.flush()
    assert [a.timestamp for a in rule_alerts(e, "zero_duration_ratio")] == [WINDOW]


def test_zero_duration_ratio_fires_again_in_another_window():
    e = engine()
    feed(e, 20, **ZERO)
    feed(e, 20, end_epoch=END + 360, **ZERO)
    e.flush()
    alerts = rule_alerts(e, "zero_duration_ratio")
    assert sorted(a.timestamp for a in alerts) == [WINDOW, WINDOW + 360]


def test_zero_duration_ratio_is_per_carrier():
    e = engine()
    feed(e, 20, **ZERO)
    feed(e, 20, ccnq_profile="carrier2", **ANSWERED)
    e.flush()
    assert [a.key for a in rule_alerts(e, "zero_duration_ratio")] == [["egress", "carrier1"]]


def test_no_alert_below_min_count():
    e = engine()
    feed(e, 19, **ZERO)
    e.flush()
    assert rule_alerts(e) == []


def test_no_alert_before_flush():
    e = engine()
    feed(e, 30, **ZERO)
    assert rule_alerts(e) == []
    e.flush()
    assert rule_alerts(e, "zero_duration_ratio") != []


def test_check_every_triggers_the_check():
    e = engine()
    e.check_every = 25
    feed(e, 25, **ZERO)
    assert len(rule_alerts(e, "zero_duration_ratio")) == 1


def test_healthy_traffic_raises_no_rule_alert():
    e = engine()
    feed(e, 40, rtp_audio_in_mos="4.3", progress_mediamsec="1500", **ANSWERED)
    feed(e, 10, **ZERO)
    e.flush()
    assert rule_alerts(e) == []


def test_asr_fires_on_low_answer_ratio():
    e = engine()
    feed(e, 3, **ANSWERED)
    feed(e, 17, billsec="0", sip_term_status="487")
    e.flush()
    [alert] = rule_alerts(e, "asr")
    assert alert.fields["value"] == pytest.approx(0.15)
    assert alert.key == ["egress", "carrier1"]


def test_asr_quiet_when_enough_calls_answered():
    e = engine()
    feed(e, 5, **ANSWERED)
    feed(e, 15, billsec="0", sip_term_status="487")
    e.flush()
    assert rule_alerts(e, "asr") == []  # 25% >= 20%


def test_network_failure_ratio_fires_on_sip_5xx():
    e = engine()
    feed(e, 15, **ANSWERED)
    feed(e, 5, billsec="0", sip_term_status="503")
    e.flush()
    [alert] = rule_alerts(e)
    assert alert.plugin == "network_failure_ratio"
    assert alert.fields["severity"] == "critical"
    assert alert.fields["value"] == 0.25


def test_network_failure_ratio_fires_on_q850_without_sip_code():
    e = engine()
    feed(e, 15, **ANSWERED)
    feed(e, 5, billsec="0", hangup_cause_q850="34")
    e.flush()
    assert [a.plugin for a in rule_alerts(e)] == ["network_failure_ratio"]


def test_network_failure_ratio_quiet_at_the_bound():
    e = engine()
    feed(e, 16, **ANSWERED)
    feed(e, 4, billsec="0", sip_term_status="503")  # 20%, not above
    e.flush()
    assert rule_alerts(e) == []


def test_account_zero_duration_ratio_fires_per_account():
    e = engine()
    # Spread over carriers so that no carrier reaches min_count: only the account rule can fire.
    for i in range(20):
        feed(e, 1, ccnq_profile=f"carrier{i % 4}", **(ANSWERED if i < 3 else ZERO))
    e.flush()
    [alert] = rule_alerts(e)
    assert alert.plugin == "account_zero_duration_ratio"
    assert alert.key == ["acct1", "egress"]
    assert alert.fields["labels"] == {"account": "acct1", "direction": "egress"}
    assert alert.fields["value"] == 0.85


def test_account_zero_duration_ratio_quiet_for_a_healthy_account():
    e = engine()
    for i in range(20):
        feed(e, 1, ccnq_profile=f"carrier{i % 4}", **(ANSWERED if i < 5 else ZERO))
    e.flush()
    assert rule_alerts(e) == []  # 75% <= 80%


def test_mos_rule_fires_on_low_mean_mos():
    e = engine()
    feed(e, 10, rtp_audio_in_mos="2.5", **ANSWERED)
    e.flush()
    [alert] = rule_alerts(e)
    assert alert.plugin == "mos"
    assert alert.fields["value"] == 2.5 and alert.fields["samples"] == 10


def test_mos_rule_quiet_below_min_count_and_on_good_mos():
    e = engine()
    feed(e, 9, rtp_audio_in_mos="2.0", **ANSWERED)
    feed(e, 10, ccnq_profile="carrier2", rtp_audio_in_mos="4.1", **ANSWERED)
    e.flush()
    assert rule_alerts(e) == []


def test_configured_bound_changes_the_threshold():
    e = engine(rules={"zero_duration_ratio": {"bound": 0.9}})
    feed(e, 3, **ANSWERED)
    feed(e, 17, **ZERO)  # 85%: above the default, below 0.9
    e.flush()
    assert rule_alerts(e, "zero_duration_ratio") == []


def test_configured_new_rule_fires():
    e = engine(rules={"short_ratio": {"series": "short_calls", "per": "calls", "op": ">",
                                      "bound": 0.3, "min_count": 20}})
    feed(e, 20, billsec="2", sip_term_status="200")
    e.flush()
    [alert] = rule_alerts(e, "short_ratio")
    assert alert.fields["value"] == 1.0


def test_disabled_rule_never_fires():
    e = engine(rules={"zero_duration_ratio": {"enabled": False}})
    feed(e, 20, **ZERO)
    e.flush()
    assert rule_alerts(e, "zero_duration_ratio") == []


# --- the unexpected_sip built-in ------------------------------------------------------------

def sip_alerts(e: Engine) -> list[Alert]:
    return [a for a in e.alerts.list() if a.plugin == "unexpected_sip"]


def feed_codes(e: Engine, profile: str, code: str | None, n: int, direction: str = "egress",
               end: int = END, prefix: str = "") -> None:
    for i in range(n):
        e.feed(raw(_id=f"{prefix}{profile}-{direction}-{code}-{end}-{i}", ccnq_profile=profile,
                   ccnq_direction=direction, sip_term_status=code, end_epoch=end))


GUARDED = {"unexpected_sip": {"min_count": 5, "share": 0.05, "min_calls": 1, "confidence": 0.95}}
"""The guard's mechanics on small hand-made windows: at least 5 CDRs, surely (95 %) over 5 % of
the calls, on any number of calls. (The defaults, 20 calls and 99.999 %, are tested below.)"""


def test_without_the_guard_each_unexpected_code_alerts_at_once_as_the_seed_did():
    e = engine(plugin_options={"unexpected_sip": {"min_count": 1, "min_calls": 1, "share": 0}})
    feed_codes(e, "carrier1", "503", 2)
    [alert] = sip_alerts(e)
    assert alert.count == 2 and alert.doc["_id"] == "carrier1-egress-503-1700000000-0"


def test_by_default_a_healthy_carriers_fluke_is_quiet_and_a_failing_carriers_share_alerts():
    """The defaults: 20 calls, 5 CDRs, 99.999 % over 5 %. 6 404s in 27 calls (a healthy
    carrier's 2.7 % on a bad draw) stay quiet; 15 503s in 60 calls alert; in the next window
    the alert goes on while the share stays above 5 % (hysteresis), then stops."""
    e = engine()
    feed_codes(e, "healthy", "200", 21)
    feed_codes(e, "healthy", "404", 6)
    feed_codes(e, "failing", "200", 45)
    feed_codes(e, "failing", "503", 15)
    assert [a.key for a in sip_alerts(e)] == [["failing", "egress", "503"]]
    feed_codes(e, "failing", "200", 30, end=END + 360)
    feed_codes(e, "failing", "503", 3, end=END + 360)  # 9 %: not sure, but above 5 % after a sure window
    assert sorted(a.timestamp for a in sip_alerts(e)) == [WINDOW, WINDOW + 360]
    feed_codes(e, "failing", "200", 30, end=END + 720)
    feed_codes(e, "failing", "503", 3, end=END + 720)  # the window before was not sure: no more
    assert sorted(a.timestamp for a in sip_alerts(e)) == [WINDOW, WINDOW + 360]


def test_a_lone_unexpected_code_is_counted_not_alerted():
    e = engine()  # (the default guard)
    feed_codes(e, "carrier1", "503", 4)
    assert sip_alerts(e) == []
    assert e.store.get(WINDOW, 'sip_status{code="503",direction="egress",profile="carrier1"}').count == 4


def test_unexpected_sip_fires_once_its_share_is_evident_then_counts_each_cdr():
    e = engine(plugin_options=GUARDED)
    feed_codes(e, "carrier1", "503", 5)
    [alert] = sip_alerts(e)
    assert alert.count == 1
    assert alert.key == ["carrier1", "egress", "503"]
    assert "carrier1 (egress)" in alert.msg and "503" in alert.msg
    assert alert.fields == {"code": "503", "profile": "carrier1", "direction": "egress"}
    assert (alert.profile, alert.direction, alert.account) == ("carrier1", "egress", "")
    assert alert.doc["_id"] == "carrier1-egress-503-1700000000-4"  # the CDR that made it evident
    assert alert.to_json()["code"] == "503"
    feed_codes(e, "carrier1", "503", 2, prefix="more-")
    feed_codes(e, "carrier1", "503", 1, direction="ingress")  # one inbound 503: no evidence there
    assert [a.count for a in sip_alerts(e)] == [3]


def test_a_healthy_carrier_with_a_small_share_of_odd_codes_stays_quiet():
    e = engine(plugin_options=GUARDED)
    feed_codes(e, "carrier1", "200", 194)
    feed_codes(e, "carrier1", "403", 6)  # 3 %: the lower bound of its share is under 5 %
    assert sip_alerts(e) == []
    feed_codes(e, "carrier2", "200", 60)
    feed_codes(e, "carrier2", "403", 20)  # 25 %: surely above 5 %
    assert [a.key for a in sip_alerts(e)] == [["carrier2", "egress", "403"]]


def test_the_evidence_bounds_are_options():
    e = engine(plugin_options={"unexpected_sip": {"min_count": 2, "share": 0.5, "min_calls": 1,
                                                  "confidence": 0.95}})
    feed_codes(e, "carrier1", "503", 2)
    assert sip_alerts(e) == []  # 2 of 2: the lower bound is 0.34, not above 0.5
    feed_codes(e, "carrier1", "503", 8, prefix="more-")
    assert len(sip_alerts(e)) == 1


def test_unexpected_sip_separate_rows_per_profile_direction_code_and_window():
    e = engine(plugin_options=GUARDED)
    feed_codes(e, "carrier1", "503", 5)
    feed_codes(e, "carrier2", "503", 5)
    feed_codes(e, "carrier1", "502", 5)
    feed_codes(e, "carrier1", "503", 5, direction="ingress")
    feed_codes(e, "carrier1", "503", 5, end=END + 360)
    assert sorted((a.timestamp, *a.key) for a in sip_alerts(e)) == [
        (WINDOW, "carrier1", "egress", "502"), (WINDOW, "carrier1", "egress", "503"),
        (WINDOW, "carrier1", "ingress", "503"), (WINDOW, "carrier2", "egress", "503"),
        (WINDOW + 360, "carrier1", "egress", "503")]
    assert {(a.profile, a.direction) for a in sip_alerts(e)} == {
        ("carrier1", "egress"), ("carrier1", "ingress"), ("carrier2", "egress")}


@pytest.mark.parametrize("code", ["486", "200", "487", None])
def test_unexpected_sip_quiet_on_expected_codes(code):
    e = engine()
    feed_codes(e, "carrier1", code, 10)
    assert sip_alerts(e) == []


def test_unexpected_sip_expected_set_is_configurable():
    e = engine(plugin_options={"unexpected_sip": {**GUARDED["unexpected_sip"], "expected": ["200", 503]}})
    feed_codes(e, "carrier1", "503", 5)
    feed_codes(e, "carrier1", "486", 5)
    assert [a.key[2] for a in sip_alerts(e)] == ["486"]


def test_dict_input_alert_doc():
    e = engine(plugin_options=GUARDED)
    for i in range(5):
        e.feed(cdr(_id=f"d{i}", ccnq_profile="carrier%201", sip_term_status="503"))
    [alert] = sip_alerts(e)
    assert alert.doc["variables"]["ccnq_profile"] == "carrier 1"
    assert alert.profile == "carrier 1"


def test_an_alert_keeps_its_sample_compact_and_builds_the_document_when_shown():
    alerts = Alerts(clock=lambda: NOW)
    alert, decoded = raise_(alerts)
    first = alert.to_json()["doc"]
    assert first["_id"] == "first" and first["variables"]["ccnq_profile"] == "carrier1"
    assert alert.sample is decoded and decoded._doc is None  # raw bytes kept, not a dict


def test_a_plugin_alert_with_fields_json_cannot_hold_is_a_plugin_error_not_a_broken_alert(tmp_path):
    (tmp_path / "tagger.py").write_text(
        "def plugin(ctx):\n    ctx.alert('x', key='k', tags={'a', 'b'})\n")
    engine = Engine(Config(retention_hours=None, plugin_dirs=[str(tmp_path)]))
    assert engine.feed(raw(_id="a")) is None
    tagger = next(p for p in engine.plugins.plugins if p.name == "tagger")
    assert tagger.errors == 1 and "JSON" in tagger.last_error
    assert not [a for a in engine.alerts.list() if a.plugin == "tagger"]


@pytest.mark.parametrize("table", [{"min_count": 0}, {"min_count": 2.5}, {"bound": "0.2"},
                                   {"bound": float("inf")}, {"series": 3}])
def test_rules_from_config_refuses_values_that_would_break_every_check(table):
    with pytest.raises(ValueError, match="rule asr"):
        rules_from_config({"asr": table})


def test_an_alert_keyed_by_an_object_dedups_alike_after_a_restart():
    """The key is kept as the JSON it is saved as: a restored alert is the same alert."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Where:
        profile: str
        code: str

    sample = decode(raw(_id="k1"))
    alerts = Alerts(clock=lambda: NOW)
    first = alerts.raise_alert("p", "m", Where("acme", "503"), WINDOW, sample, {})
    again = Alerts(clock=lambda: NOW)
    again.restore(json.loads(json.dumps(first.to_record())))
    raised = again.raise_alert("p", "m", Where("acme", "503"), WINDOW, sample, {})
    assert len(again) == 1 and raised.count == 2
    assert raised.key == {"profile": "acme", "code": "503"}


# --- attribution: what the raiser names, never the triggering CDR --------------------------------

def test_a_plugin_alert_carries_the_labels_its_plugin_gives_not_the_triggering_cdrs(tmp_path):
    (tmp_path / "watch.py").write_text(
        "def plugin(ctx):\n"
        "    if ctx.profile == 'trigger':\n"
        "        ctx.alert('about another carrier', key='x', profile='other', direction='egress')\n"
        "        ctx.alert('about nobody', key='y')\n"
        "        ctx.alert('by a labels dict', key='z', labels={'account': 'acme', 'direction': 'ingress'})\n")
    e = Engine(Config(retention_hours=None, plugin_dirs=[str(tmp_path)]))
    assert e.feed(raw(_id="t", ccnq_profile="trigger", ccnq_direction="ingress",
                      ccnq_account="acct9")) is None
    found = {a.msg: (a.profile, a.direction, a.account) for a in e.alerts.list() if a.plugin == "watch"}
    assert found == {"about another carrier": ("other", "egress", ""),
                     "about nobody": ("", "", ""),
                     "by a labels dict": ("", "ingress", "acme")}
    [nobody] = [a for a in e.alerts.list() if a.msg == "about nobody"]
    assert nobody.doc["variables"]["ccnq_profile"] == "trigger"  # the CDR is its sample only


def test_a_rule_alert_is_labelled_by_its_rule_labels_not_its_sample():
    e = engine()
    for i in range(20):  # the carrier's zero-duration calls come from many accounts
        e.feed(raw(_id=f"z{i}", ccnq_profile="carrier1", ccnq_direction="egress",
                   ccnq_account=f"acct{i}", billsec="0", sip_term_status="486"))
    e.flush()
    [alert] = rule_alerts(e, "zero_duration_ratio")
    assert (alert.profile, alert.direction, alert.account) == ("carrier1", "egress", "")


def test_a_saved_alert_comes_back_whole_firing_or_resolved():
    """to_record, then JSON (the state file), then restore: the same alert in every field, the
    firing one back in its condition, the resolved one not; the sequence goes on after them."""
    alerts = Alerts(clock=lambda: NOW, lifecycle=Lifecycle(1, 0))
    old, _ = raise_(alerts, plugin="asr", msg="carrier1 (egress): asr", key=["carrier1", "egress"],
                    timestamp=WINDOW, doc_id="old", rule="asr", value=0.1, bound=0.2,
                    labels={"direction": "egress", "profile": "carrier1"})
    alerts.resolve(WINDOW + 720, lambda condition, window: False)
    new, _ = raise_(alerts, plugin="unexpected_sip", msg="carrier1: SIP 503", key=("carrier1", "503"),
                    timestamp=WINDOW + 1800, doc_id="new", code="503", profile="carrier1")
    assert (old.state, new.state) == ("resolved", "firing")
    again = Alerts(clock=lambda: NOW)
    for alert in (old, new):
        again.restore(json.loads(json.dumps(alert.to_record())))
    for alert in (old, new):
        back = again.get(alert.id)
        assert back.to_json() == json.loads(json.dumps(alert.to_json()))
        assert back.to_record() == json.loads(json.dumps(alert.to_record()))
    assert [a.id for a in again.lifecycle.firing()] == [new.id]
    assert [a.id for a in again.list()] == [new.id, old.id]
    assert [i.state for i in again.incidents()] == ["firing", "resolved"]
    later, _ = raise_(again, plugin="p", msg="later", timestamp=WINDOW + 2160)
    assert later.seq > max(old.seq, new.seq)
    assert again.raise_alert("unexpected_sip", "carrier1: SIP 503", ("carrier1", "503"), WINDOW + 1800,
                             sample(), {}).count == 2  # the restored one, counted again


def test_an_alert_saved_before_the_lifecycle_comes_back_resolved():
    alerts = Alerts(clock=lambda: NOW)
    alert, _ = raise_(alerts)
    record = {k: v for k, v in json.loads(json.dumps(alert.to_record())).items()
              if k not in ("state", "starts_at", "ends_at", "resolution", "seq")}
    back = Alerts().restore(record)
    assert (back.state, back.resolution, back.starts_at, back.ends_at, back.seq) == (
        "resolved", "restored", WINDOW, WINDOW + 360, 0)


def test_absorb_takes_the_alerts_of_another_share_and_adds_up_the_same_ones():
    mine, theirs = Alerts(clock=lambda: NOW), Alerts(clock=lambda: NOW)
    shared, _ = raise_(mine, msg="same", timestamp=WINDOW)
    raise_(theirs, msg="same", timestamp=WINDOW)
    raise_(theirs, msg="same", timestamp=WINDOW)
    only_theirs, _ = raise_(theirs, msg="other", timestamp=WINDOW + 360)
    mine.absorb(theirs)
    assert len(mine) == 2 and mine.raised == 2
    assert shared.count == 3 and mine.get(only_theirs.id) is only_theirs
    assert {a.id for a in mine.lifecycle.firing()} == {shared.id, only_theirs.id}
    assert [i.alerts for i in mine.incidents() if i.msg == "other"] == [[only_theirs]]
    assert mine.incident(only_theirs).alerts == [only_theirs]
    assert mine.get("no-such-id") is None


def test_keys_of_any_json_shape_tell_alerts_apart_and_the_same_key_dedups():
    alerts = Alerts(clock=lambda: NOW)
    keys = [["a", {"x": 1}], ["b", {"x": 1}], ["a", {"x": 2}], {"x": [1, 2]}, {"x": [1, 3]},
            ("a", 1), ["a", "1"], 5, "5"]
    raised = [raise_(alerts, key=key)[0] for key in keys]
    assert len(alerts) == len(keys) and len({a.id for a in raised}) == len(keys)
    for key in keys:  # the same key again, rebuilt: counted into the same alert
        assert raise_(alerts, key=json.loads(json.dumps(key)))[0].count == 2
    assert len(alerts) == len(keys)
    with pytest.raises(TypeError, match="an alert's key and fields must be JSON values"):
        raise_(alerts, key=[object()])
