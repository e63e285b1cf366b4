"""The traffic rules in the configuration: their keys, their checks, and what they change."""
from __future__ import annotations

import pytest

from helpers import raw
from sixminutes.cli import main
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.traffic_rules import TRAFFIC_RULES, traffic_rules_from_config
from sixminutes.windows import WINDOW

START = 1_699_963_200
DAY = 86400


def config(tmp_path, text: str) -> Config:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return Config.load(str(path), env={})


def test_each_key_of_a_traffic_rule_is_set_in_its_rules_table(tmp_path):
    engine = Engine(config(tmp_path, """
[rules.traffic_drop]
ratio = 0.25
min_count = 50
confidence = 0.9
strong_confidence = 0.99
for_windows = 3
severity = "warning"
[rules.traffic_spike]
enabled = false
[rules.zero_duration_ratio]
bound = 0.6
"""))
    rules = {rule.name: rule for rule in engine.traffic.rules}
    assert set(rules) == {"traffic_drop", "account_volume_spike"}  # the spike is disabled
    drop = rules["traffic_drop"]
    assert (drop.ratio, drop.min_count, drop.confidence, drop.strong_confidence,
            drop.for_windows, drop.severity) == (0.25, 50, 0.9, 0.99, 3, "warning")
    assert (drop.series, drop.labels, drop.op) == ("calls", ("direction", "profile"), "<")
    assert rules["account_volume_spike"] == TRAFFIC_RULES[2]  # untouched: the default
    thresholds = {rule.name: rule for rule in engine.thresholds.rules}
    assert thresholds["zero_duration_ratio"].bound == 0.6
    assert not set(thresholds) & {"traffic_drop", "traffic_spike"}  # (no threshold rule made)


@pytest.mark.parametrize("table, message", [
    ("ratio = 1.5", r"rule traffic_drop: ratio must be below 1 for a drop"),
    ("ratio = 0", r"rule traffic_drop: ratio must be a number above 0, got 0"),
    ('ratio = "half"', r"rule traffic_drop: ratio must be a number above 0, got 'half'"),
    ("min_count = 0", r"rule traffic_drop: min_count must be a whole number ≥ 1, got 0"),
    ("min_count = 2.5", r"rule traffic_drop: min_count must be a whole number ≥ 1, got 2.5"),
    ("for_windows = true", r"rule traffic_drop: for_windows must be a whole number ≥ 1"),
    ("confidence = 1.0", r"rule traffic_drop: confidence must be a number in \[0, 1\), got 1.0"),
    ("strong_confidence = -0.1", r"rule traffic_drop: strong_confidence must be a number in"),
    ('severity = "page"', r"rule traffic_drop: severity must be one of critical, warning, info"),
    ("enabled = 1", r"rule traffic_drop: enabled must be true or false, got 1"),
    ("bound = 0.3", r"rule traffic_drop: unknown key 'bound' \(a traffic rule takes ratio,"),
])
def test_a_bad_value_is_refused_naming_the_rule_and_the_key(table, message):
    import tomllib

    with pytest.raises(ValueError, match=message):
        traffic_rules_from_config({"traffic_drop": tomllib.loads(table)})


def test_a_spike_ratio_must_be_above_one():
    with pytest.raises(ValueError, match=r"rule account_volume_spike: ratio must be above 1"):
        traffic_rules_from_config({"account_volume_spike": {"ratio": 0.8}})


def test_the_cli_reports_a_bad_traffic_rule_as_a_configuration_error(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[rules.traffic_spike]\nratio = 0.5\n")
    cdrs = tmp_path / "cdrs.json"
    cdrs.write_bytes(raw(_id="x"))
    assert main(["replay", "--config", str(path), str(cdrs)]) == 2
    assert "rule traffic_spike: ratio must be above 1 for a spike" in capsys.readouterr().err


def fall(calls_then: int, calls_now: int) -> list[bytes]:
    """A carrier with ``calls_then`` calls in each of two windows a day ago, ``calls_now`` in
    the same two windows now, and data time going on after them."""
    docs = []
    for day, calls in ((0, calls_then), (1, calls_now)):
        for window in (START + day * DAY, START + day * DAY + WINDOW):
            docs += [raw(_id=f"{window}-{i}", end_epoch=window + i, ccnq_profile="fall",
                         ccnq_direction="egress") for i in range(calls)]
    docs.append(raw(_id="later", end_epoch=START + DAY + 4 * WINDOW, ccnq_profile="other",
                    ccnq_direction="egress"))
    return docs


@pytest.mark.parametrize("table, fires", [
    ("", True),                              # the default: below half of the baseline
    ("ratio = 0.1", False),                  # a fifth is not below a tenth
    ("min_count = 200", False),              # 60 calls in the baseline are too few
    ("enabled = false", False),
    ("ratio = 0.4\nfor_windows = 1", True),  # each window alone is evident below 40 %
    ("ratio = 0.3\nfor_windows = 1", False),  # ... not below 30 % (12 of 72: too few)
])
def test_the_configured_values_decide_what_fires(tmp_path, table, fires):
    engine = Engine(config(tmp_path, f"retention_hours = 1000000\n[rules.traffic_drop]\n{table}\n"),
                    clock=lambda: START + 2 * DAY)
    engine.hold_resolution = True  # (judged at the end, as a replay)
    engine.feed_many(fall(60, 12))
    engine.settle()
    drops = {(a.profile, a.timestamp) for a in engine.alerts.list() if a.plugin == "traffic_drop"}
    assert drops == ({("fall", START + DAY), ("fall", START + DAY + WINDOW)} if fires else set())
