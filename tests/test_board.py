"""The carrier board: per window and profile × direction, the KPIs derived from built-in series."""
from __future__ import annotations

import pytest

from helpers import END, WINDOW, raw
from sixminutes.board import ERROR_CODE_MIN, carrier_rows
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.stats import series_key
from sixminutes.store import Store

W2 = WINDOW + 360


def add(store: Store, t: int, name: str, values, **labels) -> None:
    key = series_key(name, labels)
    for v in values:
        store.add(t, key, v)


def crafted() -> Store:
    store = Store()
    c1 = {"direction": "egress", "profile": "carrier1"}
    add(store, WINDOW, "calls", [1] * 10, **c1)
    add(store, WINDOW, "answered", [1] * 6, **c1)
    add(store, WINDOW, "zero_duration", [1] * 4, **c1)
    add(store, WINDOW, "billsec", [30, 60, 90, 20, 40, 60], **c1)
    add(store, WINDOW, "short_calls", [1], **c1)
    add(store, WINDOW, "pdd_ms", [1000, 3000], **c1)
    add(store, WINDOW, "network_failures", [1, 1], **c1)
    add(store, WINDOW, "mos", [4.0, 3.0], **c1)
    for code, n in {"200": 6, "503": 2, "404": 2, "486": 1, "183": 3, "none": 1, "abc": 5}.items():
        add(store, WINDOW, "sip_status", [1] * n, code=code, **c1)
    c2 = {"direction": "ingress", "profile": "carrier2"}
    add(store, WINDOW, "calls", [1] * 3, **c2)
    add(store, WINDOW, "zero_duration", [1] * 3, **c2)
    add(store, WINDOW, "sip_status", [1] * 3, code="487", **c2)
    # Series without carrier labels never make a row of their own.
    add(store, WINDOW, "account_calls", [1] * 7, account="acct1", direction="egress")
    add(store, WINDOW, "hangup_cause", [1], cause="NORMAL_CLEARING", **c1)
    add(store, W2, "calls", [1] * 2, **c1)
    return store


def row(rows, t, profile, direction):
    [match] = [r for r in rows if (r.timestamp, r.profile, r.direction) == (t, profile, direction)]
    return match


def test_rows_are_one_per_window_and_carrier():
    rows = carrier_rows(crafted())
    assert [(r.timestamp, r.profile, r.direction) for r in rows] == [
        (WINDOW, "carrier1", "egress"), (WINDOW, "carrier2", "ingress"),
        (W2, "carrier1", "egress")]


def test_calls_asr_ner_zero_duration():
    r = row(carrier_rows(crafted()), WINDOW, "carrier1", "egress")
    assert r.calls == 10
    assert r.asr == pytest.approx(0.6)
    assert r.ner == pytest.approx(0.8)
    assert r.zero_duration == pytest.approx(0.4)
    assert r.ratio("short_calls") == pytest.approx(0.1)


def test_acd_pdd_in_seconds_and_mos():
    r = row(carrier_rows(crafted()), WINDOW, "carrier1", "egress")
    assert r.acd == pytest.approx(50.0)
    assert r.pdd == pytest.approx(2.0)
    assert r.mos == pytest.approx(3.5)


def test_top_codes_exclude_below_300_and_none():
    r = row(carrier_rows(crafted()), WINDOW, "carrier1", "egress")
    assert r.codes["200"] == 6 and r.codes["none"] == 1
    assert r.top_codes() == [("404", 2), ("503", 2), ("486", 1)]
    assert r.top_codes(1) == [("404", 2)]
    assert ERROR_CODE_MIN == 300


def test_row_without_measures():
    r = row(carrier_rows(crafted()), WINDOW, "carrier2", "ingress")
    assert r.calls == 3
    assert r.asr == 0.0
    assert r.ner == 1.0
    assert r.zero_duration == 1.0
    assert r.acd is None and r.pdd is None and r.mos is None
    assert r.top_codes() == [("487", 3)]


def test_row_without_calls_has_no_ratios():
    store = Store()
    add(store, WINDOW, "sip_status", [1], code="503", direction="egress", profile="p")
    [r] = carrier_rows(store)
    assert r.calls == 0
    assert r.asr is None and r.ner is None and r.zero_duration is None
    assert r.top_codes() == [("503", 1)]


def test_rows_sorted_by_window_then_calls_descending():
    store = Store()
    add(store, W2, "calls", [1], direction="egress", profile="a")
    add(store, WINDOW, "calls", [1], direction="egress", profile="small")
    add(store, WINDOW, "calls", [1] * 5, direction="egress", profile="big")
    add(store, WINDOW, "calls", [1] * 5, direction="ingress", profile="big")
    assert [(r.timestamp, r.profile, r.direction) for r in carrier_rows(store)] == [
        (WINDOW, "big", "egress"), (WINDOW, "big", "ingress"), (WINDOW, "small", "egress"),
        (W2, "a", "egress")]


def test_start_and_end_select_windows():
    store = crafted()
    assert {r.timestamp for r in carrier_rows(store, start=W2)} == {W2}
    assert {r.timestamp for r in carrier_rows(store, end=WINDOW)} == {WINDOW}
    assert carrier_rows(store, start=W2 + 360) == []


def test_empty_store_has_no_rows():
    assert carrier_rows(Store()) == []


def test_board_of_engine_counts():
    engine = Engine(Config(), clock=lambda: END + 60)
    carrier = {"ccnq_profile": "carrier1", "ccnq_direction": "egress"}
    engine.feed(raw(_id="1", billsec="30", sip_term_status="200", progress_mediamsec="2000",
                    rtp_audio_in_mos="4.0", **carrier))
    engine.feed(raw(_id="2", billsec="90", sip_term_status="200", progressmsec="4000",
                    rtp_audio_in_mos="3.0", **carrier))
    engine.feed(raw(_id="3", billsec="0", sip_term_status="503", **carrier))
    engine.feed(raw(_id="4", billsec="0", sip_term_status="486", **carrier))
    [r] = carrier_rows(engine.store)
    assert (r.timestamp, r.profile, r.direction, r.calls) == (WINDOW, "carrier1", "egress", 4)
    assert r.asr == 0.5 and r.ner == 0.75 and r.zero_duration == 0.5
    assert r.acd == 60.0 and r.pdd == 3.0 and r.mos == 3.5
    assert r.top_codes() == [("486", 1), ("503", 1)]


def test_top_codes_are_three_by_default_and_300_is_an_error_code():
    from sixminutes.board import CarrierRow
    r = CarrierRow(WINDOW, "c", "egress")
    r.codes = {"300": 1, "299": 9, "404": 5, "486": 4, "503": 3, "502": 2}
    assert r.top_codes() == [("404", 5), ("486", 4), ("503", 3)]
    assert r.top_codes(10)[-1] == ("300", 1)


def test_series_without_the_carrier_labels_are_filed_under_unknown():
    """A site plugin may count the built-in names without labels: its row is "unknown", and a
    SIP status without a code counts as "none"."""
    store = Store()
    add(store, WINDOW, "calls", [1] * 2)
    add(store, WINDOW, "sip_status", [1] * 2, direction="egress", profile="kestrel")
    rows = carrier_rows(store)
    assert row(rows, WINDOW, "unknown", "unknown").calls == 2
    assert row(rows, WINDOW, "kestrel", "egress").codes == {"none": 2}
