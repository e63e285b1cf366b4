"""Frozen windows: key ids shared across windows, a counter as its count; read bit for bit."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sixminutes.frozen import FrozenCells, KeyIds
from sixminutes.store import Cells, Store

W0, W1, W2 = 1_699_999_920, 1_700_000_280, 1_700_000_640


def _bits(row) -> bytes:
    return np.array(row, np.float64).tobytes()


def _cells(rows: dict[str, tuple]) -> Cells:
    cells = Cells()
    for key, row in rows.items():
        cells.put(key, row)
    cells.rows(list(cells.live))  # (folded into the table, as a batch folds them)
    return cells


counts = st.integers(1, 2**32 + 1).map(float)
floats = st.floats(allow_nan=True, allow_infinity=True)
rows = st.one_of(
    counts.map(lambda n: (n, n, n, 1.0, 1.0)),  # counters (and counts beyond uint32)
    st.tuples(floats, st.integers(0, 2**53).map(float), floats, floats, floats),  # counts are whole
    st.sampled_from([(0.0, 0.0, 0.0, 1.0, 1.0), (-0.0, 0.0, 0.0, 1.0, 1.0), (2.5, 2.5, 2.5, 1.0, 1.0),
                     (3.0, 3.0, 3.0, 1.0, 2.0), (0.0, 0.0, 0.0, np.inf, -np.inf),
                     # one field short of a counter's each (no Stat is so, but a row may be put)
                     (2.0, 3.0, 3.0, 1.0, 1.0), (3.0, 3.0, 2.0, 1.0, 1.0), (3.0, 3.0, 3.0, 0.5, 1.0),
                     (3.0, 3.0, 3.0, 1.0, 0.5)]))
tables = st.dictionaries(st.text(min_size=1, max_size=6), rows, max_size=25)


@settings(max_examples=200, deadline=None)
@given(tables, tables)
def test_a_frozen_window_reads_exactly_as_its_cells(first, second):
    """Every read of the frozen form equals the Cells it came from, bit for bit; a second
    window shares the registry's ids."""
    registry = KeyIds()
    for rows_of in (first, second):
        cells = _cells(rows_of)
        frozen = FrozenCells(registry, *cells.rows_table())
        assert len(frozen) == len(cells) and sorted(frozen.keys()) == sorted(rows_of)
        keys, table = frozen.rows_table()
        assert {k: _bits(r) for k, r in zip(keys, table)} == {k: _bits(r) for k, r in rows_of.items()}
        assert keys == frozen.keys()
        for key, row in rows_of.items():
            got, want = frozen.stat_row(key), cells.stat_row(key)
            assert _bits(got) == _bits(want) and type(got[1]) is int
            assert _bits(frozen.sum_count(key)) == _bits(cells.sum_count(key))
            assert _bits(tuple(vars_of(frozen.get(key)))) == _bits(tuple(vars_of(cells.get(key))))
        assert frozen.stat_row("absent\n") is None and frozen.sum_count("absent\n") == (0.0, 0)
        assert frozen.get("absent\n") is None and frozen.changed == set()
    assert len(registry) == len(set(first) | set(second))


def vars_of(stat) -> tuple:
    return stat.sum, stat.count, stat.squares, stat.min, stat.max


def test_a_counter_costs_8_bytes_and_any_other_cell_44():
    cells = _cells({**{f"calls{{n=\"{i}\"}}": (7.0, 7.0, 7.0, 1.0, 1.0) for i in range(100)},
                    **{f"billsec{{n=\"{i}\"}}": (9.0, 2.0, 41.0, 4.0, 5.0) for i in range(10)}})
    frozen = FrozenCells(KeyIds(), *cells.rows_table())
    assert len(frozen.counter_ids) == 100 and len(frozen.full_ids) == 10
    assert frozen.nbytes == 100 * 8 + 10 * 44


def test_a_counter_is_a_whole_count_from_1_to_2_to_the_32_minus_1_of_ones():
    rows = {"one": (1.0, 1.0, 1.0, 1.0, 1.0), "most": (2.0**32 - 1,) * 3 + (1.0, 1.0),
            "beyond": (2.0**32,) * 3 + (1.0, 1.0), "none": (0.0, 0.0, 0.0, 1.0, 1.0),
            "half": (1.5, 1.5, 1.5, 1.0, 1.0)}
    registry = KeyIds()
    frozen = FrozenCells(registry, *_cells(rows).rows_table())
    assert sorted(registry.keys[i] for i in frozen.counter_ids) == ["most", "one"]
    assert frozen.stat_row("most") == (2.0**32 - 1, 2**32 - 1, 2.0**32 - 1, 1.0, 1.0)


def test_a_write_to_a_frozen_window_thaws_it_and_keeps_what_changed():
    store = Store()
    store.track_changes = True
    store.add(W0, "calls", 1)
    store.add(W0, "billsec", 30)
    store.add(W1, "calls", 1)
    store.compact(W1)
    assert type(store.peek(W0)) is FrozenCells and type(store.peek(W1)) is Cells
    store.add(W0, "calls", 1)  # a late CDR
    assert type(store.peek(W0)) is Cells
    assert store.get(W0, "calls").count == 2 and store.get(W0, "billsec").sum == 30.0
    assert store.drain_changes() == {W0: {"calls", "billsec"}, W1: {"calls"}}
    store.compact()
    assert type(store.peek(W0)) is FrozenCells and store.get(W0, "calls").count == 2


def test_purged_windows_keys_are_forgotten_and_the_rest_reads_the_same():
    store = Store()
    for i in range(6000):  # keys only the first window holds
        store.add(W0, f"account_calls{{account=\"{i}\"}}", 1)
    for key, value in (("calls", 1), ("billsec", 12), ('account_calls{account="7"}', 1)):
        store.add(W1, key, value)
        store.add(W2, key, value)
    store.compact()
    before = {t: store.peek(t).rows_table() for t in (W1, W2)}
    assert len(store._keys) == 6002
    store.purge(W1)
    assert len(store._keys) == 3 and store._keys.kept == 3
    for t, (keys, table) in before.items():
        again = store.peek(t).rows_table()
        assert again[0] == keys and again[1].tobytes() == table.tobytes()
        assert store.get(t, "billsec").sum == 12.0 and store.get(t, 'account_calls{account="7"}').count == 1
    store.add(W2, "new", 1)  # a window thawed, then frozen again with the renumbered ids
    store.compact()
    assert sorted(store.peek(W2).keys()) == sorted(['account_calls{account="7"}', "billsec", "calls", "new"])


def test_a_frozen_window_from_another_store_gets_this_stores_key_ids():
    mine, theirs = Store(), Store()
    mine.add(W0, "b", 2)
    theirs.add(W0, "a", 1)
    theirs.add(W1, "a", 1)
    mine.compact()
    theirs.compact()
    mine.absorb(theirs)
    assert mine.peek(W1).registry is mine._keys
    assert mine.get(W0, "a").count == 1 and mine.get(W0, "b").sum == 2.0 and mine.get(W1, "a").count == 1
