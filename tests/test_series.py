"""Declared series counted over batches: the same Stats, bit for bit, as one CDR at a time."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import END, WINDOW, raw
from sixminutes import batch as batch_module
from sixminutes import series as series_module
from sixminutes.batch import Batch
from sixminutes.call import decode
from sixminutes.series import Series, count
from sixminutes.stats import SeriesKeyError, Stat, series_key
from sixminutes.store import Store


def batch_of(*docs: bytes) -> Batch:
    decoded = [decode(d) for d in docs]
    return Batch(decoded, [d.call.end_epoch - d.call.end_epoch % 360 for d in decoded])


cdrs = st.builds(
    lambda dt, profile, direction, billsec, mos, code: raw(
        end_epoch=END + dt, ccnq_profile=profile, ccnq_direction=direction, billsec=billsec,
        rtp_audio_in_mos=mos, sip_term_status=code),
    st.integers(-800, 800), st.sampled_from(["a", "b", 'q"x']), st.sampled_from(["ingress", "egress"]),
    st.integers(0, 90), st.one_of(st.none(), st.floats(1, 5).map(lambda f: f"{f:.2f}"), st.just("nan")),
    st.sampled_from(["200", "503", None]))


def one_by_one(series: list[Series], docs: list[bytes]) -> dict[tuple[int, str], Stat]:
    """The reference: each CDR's value added to its cell in input order, in plain Python."""
    cells: dict[tuple[int, str], Stat] = {}
    for doc in docs:
        call = decode(doc).call
        window = call.end_epoch - call.end_epoch % 360
        for s in series:
            row = batch_of(doc)  # the series' own when/value, on a batch of this one CDR
            if s.when is not None and not bool(np.asarray(
                    row.column(s.when) if isinstance(s.when, str) else s.when(row))[0]):
                continue
            value = 1.0 if s.value is None else float(
                row.column(s.value)[0] if isinstance(s.value, str) else s.value(row)[0])
            if math.isnan(value):
                continue
            labels = {label: getattr(call, column) for label, column in s.pairs}
            cells.setdefault((window, series_key(s.name, labels)), Stat()).add(value)
    return cells


SERIES = [
    Series("calls"),
    Series("billsec", value="billsec", when=lambda b: b.billsec > 0),
    Series("mos", value="mos"),
    Series("mos_all", value="mos", labels=()),  # many values per cell: the order of additions shows
    Series("codes", labels={"code": "sip_code", "profile": "profile"}),
    Series("answered", when="answered", labels=()),
]


@pytest.fixture(params=["numpy", "rows", "as sized"])
def path(request, monkeypatch):
    """Count every batch with numpy, or row by row, or each as its size chooses."""
    small = {"numpy": 0, "rows": 10**9}.get(request.param)
    if small is not None:
        monkeypatch.setattr(batch_module, "SMALL", small)
        monkeypatch.setattr(series_module, "SMALL", small)
    return request.param


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])  # (constant)
@given(docs=st.lists(cdrs, max_size=50), size=st.integers(1, 30))
def test_batches_count_as_one_cdr_at_a_time_bit_for_bit(path, docs, size):
    store = Store()
    for start in range(0, len(docs), size):
        chunk = docs[start:start + size]
        for s in SERIES:
            count(s, batch_of(*chunk), store)
        store.compact(END - END % 360 - 360)  # a late CDR lands in a packed window
    got = {(t, key): stat for t, key, stat in store.items()}
    want = one_by_one(SERIES, docs)
    assert got.keys() == want.keys()
    for cell, stat in want.items():  # (== on floats: the sums must be the same bits)
        assert (got[cell].sum, got[cell].count, got[cell].squares, got[cell].min, got[cell].max) \
            == (stat.sum, stat.count, stat.squares, stat.min, stat.max), cell


def test_a_mos_of_nan_or_none_is_not_counted_and_a_count_is_one_per_cdr():
    store = Store()
    b = batch_of(raw(rtp_audio_in_mos="4.5"), raw(rtp_audio_in_mos="nan"), raw())
    count(Series("mos", value="mos", labels=()), b, store)
    count(Series("calls", labels=()), b, store)
    assert store.get(WINDOW, "mos") == Stat.of(4.5)
    assert store.get(WINDOW, "calls") == Stat.of(1.0, 1.0, 1.0)


def test_a_count_folds_into_a_cell_that_holds_other_values():
    store = Store()
    store.add(WINDOW, "calls", 0.5)  # (a per-CDR plugin's ctx.add on the same series)
    store.add(WINDOW, "calls", 3.0)
    count(Series("calls", labels=()), batch_of(raw(), raw()), store)
    assert store.get(WINDOW, "calls") == Stat.of(0.5, 3.0, 1.0, 1.0)
    store.add(WINDOW, "few", 0.5)
    count(Series("few", labels=()), batch_of(raw()), store)
    assert store.get(WINDOW, "few") == Stat.of(0.5, 1.0)
    store.add(WINDOW, "big", 1.5)
    count(Series("big", labels=()), batch_of(raw()), store)
    assert store.get(WINDOW, "big") == Stat.of(1.5, 1.0)


def test_a_batch_adds_its_values_to_the_cell_one_by_one_not_as_a_subtotal():
    store = Store()
    mos = Series("mos", value="mos", labels=())
    count(mos, batch_of(raw(rtp_audio_in_mos="0.1")), store)
    count(mos, batch_of(raw(rtp_audio_in_mos="0.2"), raw(rtp_audio_in_mos="0.3")), store)
    assert store.get(WINDOW, "mos").sum == (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)


def test_labels_name_columns_and_default_to_the_carrier():
    store = Store()
    b = batch_of(raw(ccnq_profile="p", ccnq_direction="ingress", sip_term_status="503"))
    count(Series("x"), b, store)
    count(Series("y", labels={"code": "sip_code"}), b, store)
    assert store.get(WINDOW, 'x{direction="ingress",profile="p"}') == Stat.of(1.0)
    assert store.get(WINDOW, 'y{code="503"}') == Stat.of(1.0)


def test_a_declaration_with_an_unknown_column_or_a_bad_name_is_refused_at_once():
    with pytest.raises(ValueError, match="label column 'nope'"):
        Series("x", labels={"a": "nope"})
    with pytest.raises(SeriesKeyError):
        Series("bad name")
    with pytest.raises(SeriesKeyError):
        Series("x", labels={"bad-label": "profile"})


def test_a_when_that_gives_the_wrong_shape_is_an_error_not_a_miscount():
    with pytest.raises(ValueError, match="one value per CDR"):
        count(Series("x", when=lambda b: np.ones(3, bool)), batch_of(raw()), Store())


def test_batch_groups_match_a_plain_python_grouping():
    docs = [raw(end_epoch=END + dt, ccnq_profile=p, ccnq_account=a)
            for dt, p, a in [(0, "a", "1"), (400, "a", "1"), (0, "b", "1"), (0, "a", "2"), (1, "a", "1")]]
    b = batch_of(*docs)
    groups = b.groups(("profile", "account"))
    seen = {}
    for row, g in enumerate(groups.inverse.tolist()):
        call = b.decoded[row].call
        seen.setdefault(g, set()).add((call.end_epoch - call.end_epoch % 360, call.profile, call.account))
    assert all(len(v) == 1 for v in seen.values()) and len(seen) == groups.size == 4
    for g in range(groups.size):
        (window, profile, account), = seen[g]
        assert (int(groups.windows[g]), groups.labels(g)) == (window, (profile, account))
        assert groups.first[g] == min(r for r, x in enumerate(groups.inverse.tolist()) if x == g)


def test_batch_columns_hold_unknown_measures_as_nan_and_text_as_codes():
    b = batch_of(raw(progressmsec="120", sip_term_status="503"), raw(sip_term_status="200"))
    assert b.pdd_ms[0] == 120 and math.isnan(b.pdd_ms[1])
    codes, values = b.codes("sip_code")
    assert [values[c] for c in codes.tolist()] == ["503", "200"]
    assert b.isin("sip_code", {"200"}).tolist() == [False, True]
    assert list(b.sip_code) == ["503", "200"]
    with pytest.raises(AttributeError, match="no column"):
        b.column("nope")


def test_every_cell_a_batch_updates_is_marked_changed_for_the_snapshot(path):
    """The snapshot writes only what changed: a cell counted but not marked would be lost."""
    store = Store()
    store.track_changes = True  # (as the service's: a replay drains nothing, marks nothing)
    docs = [raw(end_epoch=END + dt, ccnq_profile=p, billsec=b)
            for dt in (0, 400, 800) for p in ("a", "b") for b in ("0", "20")]
    for s in SERIES:
        count(s, batch_of(*docs), store)
    changes = store.drain_changes()
    assert {(t, key) for t, keys in changes.items() for key in keys} == \
        {(t, key) for t, key, _ in store.items()}
    for s in SERIES:
        count(s, batch_of(*docs), store)  # the same cells again, updated in place
    assert store.drain_changes() == changes
    for s in SERIES:
        count(s, batch_of(*docs[:4]), store)  # one window again: only its cells
    assert store.drain_changes() == {WINDOW: changes[WINDOW]}


def test_a_label_whose_column_is_missing_reads_none():
    store = Store()
    count(Series("q", labels={"q850": "q850"}), batch_of(raw(), raw(hangup_cause_q850="16")), store)
    assert store.get(WINDOW, 'q{q850="none"}') == Stat.of(1.0)
    assert store.get(WINDOW, 'q{q850="16"}') == Stat.of(1.0)


def test_fresh_series_count_a_batch_over_the_small_size_as_one_cdr_at_a_time():
    """New Series objects (their key memory empty) on a batch counted with numpy: the keys of
    the label groups are built as they are met, and the cells are those of one at a time."""
    def fresh() -> list[Series]:
        return [Series("calls"), Series("codes", labels={"code": "sip_code", "profile": "profile"}),
                Series("billsec", value="billsec", when=lambda b: b.billsec > 0)]

    docs = [raw(_id=str(i), end_epoch=END + (i % 3) * 360, ccnq_profile=f"p{i % 5}",
                billsec=str(i % 7), sip_term_status=str(200 + i % 4)) for i in range(3 * batch_module.SMALL)]
    store = Store()
    for s in fresh():
        count(s, batch_of(*docs), store)
    got = {(t, key): stat for t, key, stat in store.items()}
    assert got == one_by_one(fresh(), docs)
    assert len(got) > 3 * 5
