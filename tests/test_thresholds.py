"""Threshold rules fire on evidence: planted worlds of carriers near a bound and one failing.

Each world is hand-built: every carrier's true rates are chosen, its calls drawn from them
with a seeded random generator, 40 calls per carrier and direction in each of 20 windows.
Healthy carriers sit close to each default bound (zero duration 44 % against 50 %, network
failures 16 % against 20 %, ASR 25 % against 20 %, MOS 3.7 against 3.5): the seed's fixed
lines fire on them by noise, the guarded rules must not. The failing carrier is reported on
every rule, in each direction.

"""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import END, WINDOW, raw
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.evidence import mean_interval, t_of, wilson_interval, z_of
from sixminutes.thresholds import DEFAULT_RULES, SEED_RULES, Rule, rules_from_config

HEALTHY = {"asr": 0.58, "dropped": 0.03, "failure": 0.16, "mos": 3.7}
"""Zero duration 1 − 0.58 × 0.97 ≈ 44 % (bound 50 %), network failures 16 % (bound 20 %), MOS
3.7 ± 0.4 (bound 3.5). (No healthy carrier sits near the ASR bound of 20 %: its zero-duration
ratio would be 80 %, a real problem.)"""
FAILING = {"asr": 0.10, "dropped": 0.3, "failure": 0.45, "mos": 3.0}
WINDOWS = 20
PER_WINDOW = 40
DIRECTIONS = ("ingress", "egress")
CARRIERS = [f"healthy{i}" for i in range(8)] + ["failing"]
RULES = ("zero_duration_ratio", "network_failure_ratio", "asr", "mos")


def _call(r: random.Random, rates: dict[str, float], profile: str, direction: str, end: int,
          n: int) -> bytes:
    """One CDR drawn from a carrier's rates: answered (a share of them dropped within the
    second: 0 s billed), a network failure (503), or another failure (486, 487)."""
    variables = {"ccnq_profile": profile, "ccnq_direction": direction, "ccnq_account": f"a{n % 50}",
                 "end_epoch": str(end)}
    u = r.random()
    if u < rates["asr"]:
        billsec = 0 if r.random() < rates["dropped"] else 60
        variables.update(billsec=str(billsec), answer_epoch=str(end - billsec), sip_term_status="200",
                         rtp_audio_in_mos=f"{r.gauss(rates['mos'], 0.4):.2f}")
    elif u < rates["asr"] + rates["failure"]:
        variables.update(billsec="0", sip_term_status="503")
    else:
        variables.update(billsec="0", sip_term_status=r.choice(("486", "487")))
    return raw(_id=f"{profile}-{direction}-{n}", **variables)


def world(seed: int = 7) -> list[bytes]:
    """The planted world's CDRs, in end-time order."""
    r = random.Random(seed)
    docs: list[tuple[int, bytes]] = []
    n = 0
    for w in range(WINDOWS):
        start = WINDOW + w * 360
        for profile in CARRIERS:
            rates = FAILING if profile == "failing" else HEALTHY
            for direction in DIRECTIONS:
                for _ in range(PER_WINDOW):
                    end = start + r.randrange(360)
                    n += 1
                    docs.append((end, _call(r, rates, profile, direction, end, n)))
    docs.sort(key=lambda item: item[0])
    return [doc for _, doc in docs]


def replay(rules: dict | None = None) -> Engine:
    e = Engine(Config(retention_hours=None, rules=rules or {}))
    e.feed_many(world())
    e.flush()
    e.settle()
    return e


def fired(e: Engine) -> dict[str, set[tuple[str, str]]]:
    """Rule → the (profile, direction) it fired for."""
    out: dict[str, set[tuple[str, str]]] = {}
    for alert in e.alerts.list():
        labels = alert.fields.get("labels", {})
        if alert.plugin in RULES:
            out.setdefault(alert.plugin, set()).add((labels["profile"], labels["direction"]))
    return out


@pytest.fixture(scope="module")
def guarded() -> Engine:
    return replay()


def test_the_world_is_planted_near_the_bounds_the_seed_lines_fire_on_healthy_carriers():
    """Without the guard, noise pushes healthy carriers across every bound: the world is hard."""
    seed = fired(replay(SEED_RULES))
    for rule in ("zero_duration_ratio", "network_failure_ratio", "mos"):
        healthy = {p for p, _ in seed.get(rule, ()) if p != "failing"}
        assert healthy, f"{rule}: the planted healthy carriers never cross it by noise"


def test_healthy_carriers_near_a_bound_stay_quiet(guarded):
    named = {p for pairs in fired(guarded).values() for p, _ in pairs}
    assert named == {"failing"}


def test_the_failing_carrier_is_reported_on_every_rule_in_each_direction(guarded):
    found = fired(guarded)
    for rule in RULES:
        assert found.get(rule) == {("failing", d) for d in DIRECTIONS}, rule


def test_no_account_alert_on_small_samples(guarded):
    """Accounts have a few calls per window (below min_count): never an alert."""
    assert not [a for a in guarded.alerts.list() if a.plugin == "account_zero_duration_ratio"]


# --- the rule's evidence, window by window ------------------------------------------------------

def engine(**rules) -> Engine:
    return Engine(Config(retention_hours=None, rules=rules))


def feed(e: Engine, window: int, zero: int, other: int, profile: str = "c1") -> None:
    docs = []
    for i in range(zero + other):
        variables = {"billsec": "0", "sip_term_status": "486"} if i < zero else \
            {"billsec": "30", "answer_epoch": str(window + 10), "sip_term_status": "200"}
        docs.append(raw(_id=f"{profile}-{window}-{i}", end_epoch=str(window + 50), ccnq_profile=profile,
                        ccnq_direction="egress", **variables))
    e.feed_many(docs)
    e.flush()


def zero_alerts(e: Engine) -> list[int]:
    return sorted(a.timestamp for a in e.alerts.list() if a.plugin == "zero_duration_ratio")


ONLY_ZERO = {name: {"enabled": False} for name in DEFAULT_RULES if name != "zero_duration_ratio"}


def test_a_ratio_just_over_the_bound_does_not_fire():
    e = engine(**ONLY_ZERO)
    feed(e, WINDOW, 13, 7)  # 65 % of 20: the interval reaches down to 43 %
    feed(e, WINDOW + 360, 13, 7)
    assert zero_alerts(e) == []


def test_two_consecutive_windows_surely_over_fire_both():
    e = engine(**ONLY_ZERO)
    feed(e, WINDOW, 52, 28)  # 65 % of 80: surely over 50 % at 95 %, not at 99.9 %
    assert zero_alerts(e) == []  # one window is not enough
    feed(e, WINDOW + 360, 52, 28)
    assert zero_alerts(e) == [WINDOW, WINDOW + 360]


def test_a_window_with_strong_evidence_fires_alone():
    e = engine(**ONLY_ZERO)
    feed(e, WINDOW, 38, 2)  # 95 % of 40: the interval at 99.9 % starts near 72 %
    assert zero_alerts(e) == [WINDOW]


def test_windows_apart_do_not_make_a_run():
    e = engine(**ONLY_ZERO)
    feed(e, WINDOW, 52, 28)
    feed(e, WINDOW + 720, 52, 28)
    assert zero_alerts(e) == []


def test_a_late_window_completes_a_run_with_the_one_after_it():
    e = engine(**ONLY_ZERO)
    feed(e, WINDOW + 360, 52, 28)
    feed(e, WINDOW, 52, 28)  # the earlier window, read later (a late batch)
    assert zero_alerts(e) == [WINDOW, WINDOW + 360]


def test_once_a_run_fired_the_next_crossing_window_fires_at_once():
    e = engine(**ONLY_ZERO)
    feed(e, WINDOW, 52, 28)
    feed(e, WINDOW + 360, 52, 28)
    feed(e, WINDOW + 720, 52, 28)
    assert zero_alerts(e) == [WINDOW, WINDOW + 360, WINDOW + 720]


def test_min_count_holds_even_on_strong_evidence():
    e = engine(**ONLY_ZERO)
    feed(e, WINDOW, 19, 0)
    assert zero_alerts(e) == []


def test_the_seed_rules_fire_on_one_window_over_the_line():
    e = engine(**ONLY_ZERO, zero_duration_ratio=SEED_RULES["zero_duration_ratio"])
    feed(e, WINDOW, 11, 9)
    assert zero_alerts(e) == [WINDOW]


def test_a_mean_rule_needs_its_t_interval_beyond_the_bound():
    rule = Rule("pdd", "pdd_ms", None, ">", 3000, 10)
    spread = [2500.0, 4500.0] * 5  # mean 3500, sd ≈ 1054: 3500 − 2.26 × 333 < 3000
    total, n, squares = sum(spread), len(spread), sum(v * v for v in spread)
    assert not rule.evident((total, n, squares), None)
    tight = [3400.0, 3600.0] * 5  # the same mean, sd ≈ 105: surely above 3000
    assert rule.evident((sum(tight), 10, sum(v * v for v in tight)), None)


def test_a_configured_mean_rule_on_pdd_fires_on_evidence():
    e = engine(**ONLY_ZERO, zero_duration_ratio={"enabled": False},
               pdd={"series": "pdd_ms", "per": None, "op": ">", "bound": 3000, "min_count": 10})
    for w, pdds in ((WINDOW, [2000, 4800] * 10), (WINDOW + 360, [2000, 4800] * 10),
                    (WINDOW + 720, [4400, 4600] * 10), (WINDOW + 1080, [4400, 4600] * 10)):
        e.feed_many([raw(_id=f"p{w}-{i}", end_epoch=str(w + 50), ccnq_profile="c1",
                         ccnq_direction="egress", progressmsec=str(v)) for i, v in enumerate(pdds)])
        e.flush()
    assert sorted(a.timestamp for a in e.alerts.list() if a.plugin == "pdd") == \
        [WINDOW + 720, WINDOW + 1080]


@pytest.mark.parametrize("table, message", [
    ({"confidence": 1}, "confidence"), ({"confidence": -0.1}, "confidence"),
    ({"strong_confidence": "high"}, "strong_confidence"), ({"for_windows": 0}, "for_windows"),
    ({"severity": "page"}, "severity"),
])
def test_rules_from_config_refuses_bad_guard_settings(table, message):
    with pytest.raises(ValueError, match=message):
        rules_from_config({"asr": table})


# --- the intervals -----------------------------------------------------------------------------

@pytest.mark.parametrize("confidence, df, exact", [
    (0.95, 9, 2.262157), (0.95, 4, 2.776445), (0.95, 29, 2.045230), (0.99, 9, 3.249836),
    (0.999, 19, 3.883406),
])
def test_t_quantiles_match_the_tables(confidence, df, exact):
    assert t_of(z_of(confidence), df) == pytest.approx(exact, rel=5e-3)


def test_a_zero_confidence_is_the_point_estimate():
    assert wilson_interval(11, 20, z_of(0)) == (0.55, 0.55)
    assert mean_interval(35.0, 10, 200.0, z_of(0)) == (3.5, 3.5)


@given(st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=200), st.sampled_from([0.8, 0.95, 0.99]))
def test_the_mean_interval_holds_the_mean(values, confidence):
    total, n, squares = sum(values), len(values), sum(v * v for v in values)
    low, high = mean_interval(total, n, squares, z_of(confidence))
    mean = total / n
    assert low <= mean + 1e-6 * (1 + abs(mean)) and mean - 1e-6 * (1 + abs(mean)) <= high


@given(st.integers(20, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.floats(0.05, 0.95))
def test_a_guarded_rule_fires_only_where_the_seed_line_does(kn, bound):
    """Evidence beyond the bound implies the point value beyond it: the guard only removes alerts."""
    k, n = kn
    for op in (">", "<"):
        guarded = Rule("r", "s", "calls", op, bound, 1)
        if guarded.evident((0.0, n, 0.0), k):
            assert guarded.crossed(k / n)


def test_a_rule_describes_its_crossing_with_labels_value_bound_and_samples():
    ratio, mean = DEFAULT_RULES["network_failure_ratio"], DEFAULT_RULES["mos"]
    labels = {"direction": "egress", "profile": "kestrel"}
    assert ratio.describe(labels, 0.456, 25) == \
        "kestrel (egress): network_failures/calls 46% > 20% over 25 samples"
    assert mean.describe(labels, 3.14159, 12) == "kestrel (egress): mean mos 3.14 < 3.5 over 12 samples"
    assert mean.describe({"direction": "ingress"}, 3.0, 10).startswith("ingress: mean mos 3.00")
    assert mean.describe({"profile": "kestrel"}, 3.0, 10).startswith("kestrel: mean mos")


def test_a_point_rule_fires_on_the_measured_value_and_not_at_the_bound():
    """With confidence 0 (the seed's rules) a window fires when its value is beyond the bound,
    strictly: at the bound it does not. The alert carries the value and its samples."""
    def alerts_for(failures: int, calls: int = 25, mos: list[float] | None = None) -> dict:
        e = Engine(Config(rules=SEED_RULES, retention_hours=None, disabled=["unexpected_sip"]))
        docs = [raw(_id=f"c{i}", ccnq_profile="kestrel", ccnq_direction="egress",
                    sip_term_status="503" if i < failures else "200", billsec="0" if i < failures else "60",
                    rtp_audio_in_mos=str(mos[i]) if mos and i < len(mos) else None,
                    end_epoch=str(END)) for i in range(calls)]
        e.feed_many(docs)
        e.flush()
        return {a.plugin: a.fields for a in e.alerts.list()}
    at_bound = alerts_for(5)  # 5 / 25 = 20 %: not beyond
    assert "network_failure_ratio" not in at_bound
    beyond = alerts_for(6)["network_failure_ratio"]
    assert (beyond["value"], beyond["samples"], beyond["bound"]) == (0.24, 25, 0.2)
    low_mos = alerts_for(0, mos=[3.0] * 10 + [3.2] * 10)["mos"]  # mean 3.1 over 20 samples
    assert low_mos["value"] == pytest.approx(3.1) and low_mos["samples"] == 20
    assert "mos" not in alerts_for(0, mos=[3.5] * 20)
    assert "mos" not in alerts_for(0, mos=[3.0] * 9)  # 9 samples: fewer than the rule's 10
