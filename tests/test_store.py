"""Store: window → series key → Stat, with live and compacted cells, purge and filters."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sixminutes.stats import Stat
from sixminutes.store import Store

W0, W1, W2 = 1_699_999_920, 1_700_000_280, 1_700_000_640
CALLS_OUT = 'calls{direction="egress",profile="carrier1"}'
CALLS_IN = 'calls{direction="ingress",profile="carrier1"}'
CALLS_C2 = 'calls{direction="egress",profile="carrier2"}'
BILLSEC = 'billsec{direction="egress",profile="carrier1"}'
ACCOUNT = 'account_calls{account="acct1",direction="egress"}'


def test_empty_store():
    store = Store()
    assert store.get(W0, "calls") is None
    assert store.windows() == []
    assert store.cells == 0
    assert list(store.items()) == []
    assert store.to_json() == {}


def test_add_and_get():
    store = Store()
    for v in (3, 5, 1):
        store.add(W0, BILLSEC, v)
    assert store.get(W0, BILLSEC) == Stat.of(3.0, 5.0, 1.0)
    assert store.get(W1, BILLSEC) is None
    assert store.get(W0, "other") is None


def test_get_returns_float_fields_and_int_count():
    store = Store()
    store.add(W0, "x", 2)
    stat = store.get(W0, "x")
    assert type(stat.sum) is float and type(stat.count) is int
    assert type(stat.min) is float and type(stat.max) is float


def test_get_returns_a_copy():
    store = Store()
    store.add(W0, "x", 1)
    store.get(W0, "x").add(100)
    assert store.get(W0, "x") == Stat.of(1.0)


def test_add_decreasing_values_tracks_min():
    store = Store()
    for v in (5, 4, 3, 9, 1):
        store.add(W0, "x", v)
    assert store.get(W0, "x") == Stat.of(5.0, 4.0, 3.0, 9.0, 1.0)


def test_merge_into_empty_and_existing():
    store = Store()
    store.merge(W0, "x", Stat.of(1.0, 2.0))
    assert store.get(W0, "x") == Stat.of(1.0, 2.0)
    store.add(W0, "x", 10)
    store.merge(W0, "x", Stat.of(-1.0))
    assert store.get(W0, "x") == Stat.of(1.0, 2.0, 10.0, -1.0)


def test_merge_into_compacted_window():
    store = Store()
    store.add(W0, "x", 4)
    store.compact()
    store.merge(W0, "x", Stat.of(6.0, 0.5))
    assert store.get(W0, "x") == Stat.of(4.0, 6.0, 0.5)
    store.merge(W0, "y", Stat.of(2.0))
    assert store.get(W0, "y") == Stat.of(2.0)


def test_sum_count():
    store = Store()
    store.add(W0, "x", 2)
    store.add(W0, "x", 3)
    cells = store.window(W0)
    assert cells.sum_count("x") == (5, 2)
    assert cells.sum_count("missing") == (0, 0)
    store.compact()
    assert cells.sum_count("x") == (5.0, 2)
    assert type(cells.sum_count("x")[1]) is int


def test_windows_oldest_first():
    store = Store()
    for t in (W2, W0, W1):
        store.add(t, "x", 1)
    assert store.windows() == [W0, W1, W2]


def test_cells_counts_window_series_pairs():
    store = Store()
    store.add(W0, "a", 1)
    store.add(W0, "a", 1)
    store.add(W0, "b", 1)
    store.add(W1, "a", 1)
    assert store.cells == 3
    store.compact(W1)
    assert store.cells == 3
    store.add(W0, "c", 1)  # a new series in a compacted window
    assert store.cells == 4


def test_compact_keeps_every_stat():
    store = Store()
    store.add(W0, "x", 1.5)
    store.add(W0, "x", -2)
    store.add(W0, "y", 7)
    before = {(t, k): s for t, k, s in store.items()}
    store.compact()
    assert {(t, k): s for t, k, s in store.items()} == before


def test_compact_before_only_packs_older_windows():
    store = Store()
    store.add(W0, "x", 1)
    store.add(W1, "x", 1)
    store.compact(W1)
    assert not store.window(W0).live and "x" in store.window(W0).offsets
    assert "x" in store.window(W1).live


def test_late_add_into_compacted_window():
    store = Store()
    store.add(W0, "x", 5)
    store.add(W0, "x", 7)
    store.compact()
    store.add(W0, "x", 1)   # a new min
    store.add(W0, "x", 10)  # a new max
    assert store.get(W0, "x") == Stat.of(5.0, 7.0, 1.0, 10.0)


def test_compact_twice_appends_new_series():
    store = Store()
    store.add(W0, "a", 1)
    store.compact()
    store.add(W0, "b", 2)
    store.add(W0, "a", 3)
    store.compact()
    assert store.get(W0, "a") == Stat.of(1.0, 3.0)
    assert store.get(W0, "b") == Stat.of(2.0)
    assert sorted(store.window(W0).keys()) == ["a", "b"]


windows = st.sampled_from([W0, W1, W2])
series = st.sampled_from(["a", "b", 'c{x="1"}', 'c{x="2"}'])
values = st.one_of(st.integers(min_value=-1000, max_value=1000),
                   st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
ops = st.lists(st.one_of(
    st.tuples(st.just("add"), windows, series, values),
    st.tuples(st.just("merge"), windows, series, st.lists(values, min_size=1, max_size=3)),
    st.tuples(st.just("compact"), st.one_of(st.none(), windows)),
), max_size=60)


@settings(max_examples=200)
@given(ops)
def test_store_equals_a_dict_of_stats(operations):
    store = Store()
    model: dict[tuple[int, str], Stat] = {}
    for op in operations:
        if op[0] == "add":
            _, t, key, v = op
            store.add(t, key, v)
            model.setdefault((t, key), Stat()).add(float(v))
        elif op[0] == "merge":
            _, t, key, vs = op
            incoming = Stat.of(*map(float, vs))
            store.merge(t, key, incoming)
            model[(t, key)] = model.get((t, key), Stat()).merge(incoming)
        else:
            store.compact(op[1])
    got = {(t, k): s for t, k, s in store.items()}
    assert got.keys() == model.keys()
    for cell, stat in model.items():
        s = got[cell]
        assert (s.count, s.min, s.max) == (stat.count, stat.min, stat.max)
        assert abs(s.sum - stat.sum) <= 1e-6 * max(1.0, abs(stat.sum))
        assert abs(s.squares - stat.squares) <= 1e-6 * max(1.0, abs(stat.squares))
    assert store.cells == len(model)


@settings(max_examples=200)
@given(st.lists(st.tuples(windows, series, st.integers(-1000, 1000)), max_size=40),
       st.integers(min_value=0, max_value=40), st.one_of(st.none(), windows))
def test_compact_at_any_point_changes_nothing(adds, at, before):
    plain, compacted = Store(), Store()
    for i, (t, key, v) in enumerate(adds):
        if i == at:
            compacted.compact(before)
        plain.add(t, key, v)
        compacted.add(t, key, v)
    def by_cell(store):
        return sorted(store.items(), key=lambda item: item[:2])
    assert by_cell(compacted) == by_cell(plain)  # every Stat identical, exactly


def test_purge_before():
    store = Store()
    for t in (W0, W1, W2):
        store.add(t, "x", 1)
    assert store.purge(W1) == [W0]
    assert store.windows() == [W1, W2]
    assert store.get(W0, "x") is None


def test_purge_all():
    store = Store()
    for t in (W2, W0):
        store.add(t, "x", 1)
    assert store.purge() == [W0, W2]
    assert store.windows() == [] and store.cells == 0


def test_purge_nothing_to_drop():
    store = Store()
    store.add(W1, "x", 1)
    assert store.purge(W0) == []
    assert store.windows() == [W1]


def filled() -> Store:
    store = Store()
    store.add(W0, CALLS_OUT, 1)
    store.add(W0, CALLS_IN, 1)
    store.add(W0, ACCOUNT, 1)
    store.add(W1, CALLS_OUT, 1)
    store.add(W1, CALLS_C2, 1)
    store.add(W1, BILLSEC, 30)
    store.add(W2, CALLS_OUT, 1)
    store.add(W2, "plain", 2)
    store.compact(W1)  # filters see compacted and live windows alike
    return store


def keys(store: Store, **filters) -> set[tuple[int, str]]:
    return {(t, k) for t, k, _ in store.items(**filters)}


def test_items_unfiltered():
    assert len(keys(filled())) == 8


def test_items_by_start_and_end_inclusive():
    store = filled()
    assert {t for t, _ in keys(store, start=W1)} == {W1, W2}
    assert {t for t, _ in keys(store, end=W1)} == {W0, W1}
    assert {t for t, _ in keys(store, start=W1, end=W1)} == {W1}
    assert keys(store, start=W2 + 1) == set()


def test_items_windows_in_order():
    assert [t for t, _, _ in filled().items()] == sorted(t for t, _, _ in filled().items())


def test_items_by_names():
    store = filled()
    assert keys(store, names=["calls"]) == {
        (W0, CALLS_OUT), (W0, CALLS_IN), (W1, CALLS_OUT), (W1, CALLS_C2), (W2, CALLS_OUT)}
    assert keys(store, names=["billsec", "plain"]) == {(W1, BILLSEC), (W2, "plain")}
    assert keys(store, names=[]) == set()


def test_items_by_labels_exact_value():
    store = filled()
    assert keys(store, labels={"profile": "carrier2"}) == {(W1, CALLS_C2)}
    assert keys(store, labels={"profile": "carrier"}) == set()  # no prefix match
    assert keys(store, labels={"direction": "ingress", "profile": "carrier1"}) == {(W0, CALLS_IN)}


def test_items_label_missing_is_excluded():
    store = filled()
    got = keys(store, labels={"account": "acct1"})
    assert got == {(W0, ACCOUNT)}
    assert (W2, "plain") not in keys(store, labels={"direction": "egress"})


def test_items_by_names_and_labels_and_range():
    store = filled()
    assert keys(store, start=W1, names=["calls"], labels={"profile": "carrier1"}) == {
        (W1, CALLS_OUT), (W2, CALLS_OUT)}


def test_to_json_shape():
    store = Store()
    store.add(W0, CALLS_OUT, 1)
    store.add(W0, CALLS_OUT, 1)
    store.add(W1, BILLSEC, 2.5)
    assert store.to_json() == {
        str(W0): {CALLS_OUT: {"sum": 2, "count": 2, "squares": 2, "min": 1, "max": 1}},
        str(W1): {BILLSEC: {"sum": 2.5, "count": 1, "squares": 6.25, "min": 2.5, "max": 2.5}},
    }


def test_to_json_filters():
    store = filled()
    assert set(store.to_json(start=W2)) == {str(W2)}
    assert store.to_json(names=["billsec"]) == {
        str(W1): {BILLSEC: {"sum": 30, "count": 1, "squares": 900, "min": 30, "max": 30}}}
    assert list(store.to_json(labels={"profile": "carrier2"})[str(W1)]) == [CALLS_C2]
    assert store.to_json(end=W0 - 1) == {}


@settings(max_examples=100)
@given(st.lists(st.tuples(st.sampled_from([0, 360, 720]), st.sampled_from(["a", 'b{x="1"}', "c"]),
                          st.floats(allow_nan=False, allow_infinity=False) | st.integers(-2**60, 2**60)),
                max_size=30), st.booleans())
def test_to_json_writes_each_stat_as_stat_to_json_does(adds, compact):
    """The whole-store writer (vectorised) and Stat.to_json agree, packed or live."""
    store = Store()
    for t, key, value in adds:
        store.add(t, key, float(value))
    if compact:
        store.compact(360)
    want: dict = {}
    for t, key, stat in store.items():
        want.setdefault(str(t), {})[key] = stat.to_json()
    got = store.to_json()
    assert got == want
    assert [[type(v) for v in s.values()] for w in got.values() for s in w.values()] == \
        [[type(v) for v in s.values()] for w in want.values() for s in w.values()]


def test_to_json_keeps_the_windows_from_start_to_end_both_included():
    store = Store()
    for k in range(3):
        store.add(W0 + k * 360, "calls", 1.0)
    assert list(store.to_json(start=W0 + 360)) == [str(W0 + 360), str(W0 + 720)]
    assert list(store.to_json(end=W0 + 360)) == [str(W0), str(W0 + 360)]
    assert list(store.to_json(start=W0 + 360, end=W0 + 360)) == [str(W0 + 360)]


def test_a_key_that_is_no_series_key_never_matches_a_filter():
    store = Store()
    store.add(W0, "not a key{", 1.0)  # (as a state file of an older version might hold)
    store.add(W0, 'calls{profile="a"}', 1.0)
    assert store.to_json(names=["calls"]) == {str(W0): {'calls{profile="a"}': store.get(W0, 'calls{profile="a"}').to_json()}}
    assert list(store.to_json(labels={"profile": "a"})[str(W0)]) == ['calls{profile="a"}']


def test_changes_are_recorded_only_when_asked_and_drained_once():
    assert Store().track_changes is False  # (a replay: nobody to tell)
    tracked = Store()
    tracked.track_changes = True
    tracked.add(W0, "calls", 1.0)
    tracked.add(W0 + 360, "calls", 2.0)
    tracked.add(W0 + 360, "answered", 1.0)
    tracked.merge(W0 + 720, "calls", Stat(2.0, 2, 2.0, 1.0, 1.0))  # a restore: no change to tell
    assert tracked.drain_changes() == {W0: {"calls"}, W0 + 360: {"calls", "answered"}}
    assert tracked.drain_changes() == {}


def test_absorb_takes_whole_windows_and_merges_shared_ones_cell_by_cell():
    mine, theirs = Store(), Store()
    mine.add(W0, "calls", 1.0)
    theirs.add(W0, "calls", 3.0)
    theirs.add(W0, "answered", 1.0)
    theirs.add(W0 + 360, "calls", 5.0)
    theirs.add(W0 + 720, "calls", 6.0)
    mine.absorb(theirs)
    assert mine.get(W0, "calls") == Stat(4.0, 2, 10.0, 1.0, 3.0)
    assert mine.get(W0, "answered").count == 1 and mine.get(W0 + 360, "calls").sum == 5.0
    assert mine.windows() == [W0, W0 + 360, W0 + 720]


@settings(max_examples=200)
@given(st.lists(st.tuples(windows, series, values), max_size=30),
       st.lists(st.tuples(windows, series, values), max_size=30),
       st.booleans(), st.booleans())
def test_absorb_equals_merging_each_stat(mine, theirs, compact_mine, compact_theirs):
    """A parallel replay joins its shares a window table at a time: exactly Stat.merge."""
    ours, other, model = Store(), Store(), Store()
    for t, key, v in mine:
        ours.add(t, key, v)
        model.add(t, key, v)
    for t, key, v in theirs:
        other.add(t, key, v)
    if compact_mine:
        ours.compact()
    if compact_theirs:
        other.compact()
    for t, key, stat in list(other.items()):
        model.merge(t, key, stat)
    ours.absorb(other)
    def by_cell(store):
        return sorted(store.items(), key=lambda item: item[:2])
    assert by_cell(ours) == by_cell(model)  # bit for bit, min and max included


json_keys = st.text(min_size=1, max_size=12)
json_values = st.one_of(st.integers(-2**60, 2**60).map(float),
                        st.floats(allow_nan=False, allow_infinity=False),
                        st.sampled_from([0.0, -0.0, 2.0**53, 2.0**53 - 1, 1e-5, 1e16 + 2]))


@settings(max_examples=200)
@given(st.lists(st.tuples(windows, json_keys, json_values), max_size=30), st.booleans(),
       st.booleans())
def test_write_json_reads_back_as_to_json(adds, compact, compiled):
    """A replay's --json: the same values as the dicts of to_json(), from C or without it."""
    import orjson
    import pytest
    from sixminutes import store as store_module
    store = Store()
    for t, key, v in adds:
        store.add(t, key, v)
    if compact:
        store.compact()
    with pytest.MonkeyPatch.context() as patch:
        if not compiled:
            patch.setattr(store_module, "cells_json", None)
        parts = []
        store.write_json(parts.append)
        written = b"".join(parts)
    def typed(document):  # integral values are integers in both, as Stat.to_json writes them
        return {t: {k: {n: (type(v), v) for n, v in stat.items()} for k, stat in cells.items()}
                for t, cells in document.items()}
    assert typed(orjson.loads(written)) == typed(orjson.loads(orjson.dumps(store.to_json())))


def test_cells_json_refuses_a_table_of_the_wrong_shape():
    import numpy as np
    import pytest
    from sixminutes._cellsjson import cells_json
    with pytest.raises(ValueError, match="five doubles per key"):
        cells_json(["a", "b"], np.zeros((1, 5)))


def test_cells_pickle_without_their_spare_rows_and_grow_again():
    import pickle

    from sixminutes.store import Cells

    cells = Cells()
    rows = cells.rows([f"calls{{profile=\"p{i}\"}}" for i in range(10)])
    rows += cells.rows([f"calls{{profile=\"p{i}\"}}" for i in range(10, 20)])
    cells.table[rows, 0] = range(20)
    cells.add("calls{profile=\"live\"}", 4.0)  # (a live list, folded later)
    assert len(cells.table) > cells.size  # (room kept for the next rows)
    again = pickle.loads(pickle.dumps(cells, protocol=pickle.HIGHEST_PROTOCOL))
    assert len(again.table) == again.size == 20  # only the rows in use cross
    assert again.rows_table()[0] == cells.rows_table()[0]
    assert (again.rows_table()[1] == cells.rows_table()[1]).all()
    new = again.rows(["calls{profile=\"new\"}", "calls{profile=\"live\"}"])
    assert new == [20, 21] and again.get("calls{profile=\"live\"}").sum == 4.0
    assert again.get("calls{profile=\"p7\"}").sum == 7.0
