"""End to end: 24 h of synthetic CDRs through the engine equal series computed from the truth.

The expected series come from the generator's Truth records (what it chose, before any
JSON or URL encoding), with DESIGN.md's built-in series table written out again in plain
Python, and keys formatted here too. Nothing below reuses the engine's decoding.
"""
from __future__ import annotations

import math
from collections import defaultdict

import pytest

from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.sources.synthetic import ODD_ACCOUNTS, Generator, Truth, country_of_number

START = 1_699_920_000  # a UTC midnight
SHORT_CALL_SECONDS = 6
NETWORK_SIP = {"408", "500", "502", "503", "504"}
NETWORK_Q850 = {"27", "34", "38", "41", "42", "102"}


def key(name: str, **labels: str) -> str:
    """Prometheus-style series key: labels sorted by name, values escaped."""
    if not labels:
        return name
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return name + "{" + ",".join(f'{k}="{esc(labels[k])}"' for k in sorted(labels)) + "}"


def expected_series(truths: list[Truth]) -> dict[int, dict[str, list[float]]]:
    """window → series key → the values counted, straight from DESIGN.md's table."""
    out: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t in truths:
        series = out[t.end_epoch - t.end_epoch % 360]
        carrier = {"direction": t.direction, "profile": t.profile}
        account = {"account": t.account, "direction": t.direction}
        series[key("calls", **carrier)].append(1)
        series[key("sip_status", code=t.sip_code, **carrier)].append(1)
        series[key("hangup_cause", cause=t.hangup_cause, **carrier)].append(1)
        series[key("account_calls", **account)].append(1)
        destination = {"country": country_of_number(t.to), **carrier}  # what the generator meant
        series[key("destination_calls", **destination)].append(1)
        if t.answered and 0 < t.billsec < SHORT_CALL_SECONDS:
            series[key("account_short_calls", **account)].append(1)
        if t.answered:
            series[key("answered", **carrier)].append(1)
            series[key("destination_answered", **destination)].append(1)
        if t.billsec == 0:
            series[key("zero_duration", **carrier)].append(1)
            series[key("account_zero_duration", **account)].append(1)
        else:
            series[key("billsec", **carrier)].append(t.billsec)
            series[key("account_billsec", **account)].append(t.billsec)
            series[key("destination_billsec", **destination)].append(t.billsec)
        if 0 < t.billsec < SHORT_CALL_SECONDS:
            series[key("short_calls", **carrier)].append(1)
        if t.pdd_ms is not None:
            series[key("pdd_ms", **carrier)].append(t.pdd_ms)
        if t.sip_code in NETWORK_SIP or (t.sip_code == "none" and t.q850 in NETWORK_Q850):
            series[key("network_failures", **carrier)].append(1)
        if t.mos is not None:
            series[key("mos", **carrier)].append(t.mos)
    for carrier, seconds in in_progress(truths).items():  # peak_concurrent: a Stat of 360 seconds
        for window in range(min(seconds) - min(seconds) % 360, max(seconds) + 1, 360):
            busy = [seconds.get(t, 0) for t in range(window, window + 360)]
            if any(busy):
                out[window][key("peak_concurrent", **dict(carrier))].extend(busy)
    return out


def in_progress(truths: list[Truth]) -> dict[tuple, dict[int, int]]:
    """Carrier → second → calls in progress then (start <= t < end), each call in its last two
    hours' windows at most, by a sweep over start and end events."""
    events: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for t in truths:
        start = max(t.end_epoch - t.duration, t.end_epoch - t.end_epoch % 360 - 7200)
        if t.end_epoch > start:
            carrier = (("direction", t.direction), ("profile", t.profile))
            events[carrier] += [(start, 1), (t.end_epoch, -1)]
    out = {}
    for carrier, found in events.items():
        found.sort()
        busy, seconds, i = 0, {}, 0
        for t in range(found[0][0], found[-1][0] + 1):
            while i < len(found) and found[i][0] <= t:
                busy += found[i][1]
                i += 1
            if busy:
                seconds[t] = busy
        out[carrier] = seconds
    return out


@pytest.fixture(scope="module")
def replay() -> tuple[list[Truth], dict[str, dict[str, dict]]]:
    engine = Engine(Config(retention_hours=None))
    truths = []
    for raw, truth in Generator(seed=11).corpus(3000, START, 86400):
        assert engine.feed(raw) is None, truth
        truths.append(truth)
    assert engine.accepted == 3000 and not engine.rejected
    return truths, engine.store.to_json()


def test_same_windows_and_same_series_keys(replay):
    truths, got = replay
    want = expected_series(truths)
    assert set(got) == {str(w) for w in want}
    for window, series in want.items():
        missing = set(series) - set(got[str(window)])
        extra = set(got[str(window)]) - set(series)
        assert not missing and not extra, (window, sorted(missing)[:5], sorted(extra)[:5])


def test_every_stat_equals_the_truth(replay):
    truths, got = replay
    checked = 0
    for window, series in expected_series(truths).items():
        for name, values in series.items():
            stat = got[str(window)][name]
            assert stat["count"] == len(values), name
            assert stat["min"] == min(values) and stat["max"] == max(values), name
            if all(isinstance(v, int) for v in values):
                assert stat["sum"] == sum(values) and stat["squares"] == sum(v * v for v in values), name
            else:
                assert math.isclose(stat["sum"], sum(values), rel_tol=1e-12), name
                assert math.isclose(stat["squares"], sum(v * v for v in values), rel_tol=1e-12), name
            checked += 1
    assert checked > 10_000


def test_corpus_covers_what_the_series_must_handle(replay):
    truths, got = replay
    keys = {k for series in got.values() for k in series}
    names = {k.split("{", 1)[0] for k in keys}
    assert names == {"calls", "answered", "zero_duration", "billsec", "short_calls", "pdd_ms",
                     "network_failures", "sip_status", "hangup_cause", "mos", "account_calls",
                     "account_zero_duration", "account_billsec", "destination_calls",
                     "destination_answered", "destination_billsec", "peak_concurrent",
                     "account_short_calls"}
    assert len([t for t in got if START <= int(t) < START + 86400]) == 240  # every window has traffic
    assert {t.direction for t in truths} == {"ingress", "egress"}  # FreeSWITCH's words mapped
    assert {k.split('direction="')[1].split('"')[0] for k in keys} == {"ingress", "egress"}
    assert any(t.account == "unknown" for t in truths)
    assert any(t.sip_code == "none" and t.q850 in NETWORK_Q850 for t in truths)
    odd = {a for a in ODD_ACCOUNTS if any(t.account == a for t in truths)}
    assert {'acme "gold"', "back\\slash", "two\nlines"} <= odd
    assert key("account_calls", account='acme "gold"', direction="egress") in keys or \
        key("account_calls", account='acme "gold"', direction="ingress") in keys
