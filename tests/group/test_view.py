"""The group's view: partition records merged into what one instance counting all would hold."""
from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings, strategies as st

from helpers import raw
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.group.partitions import partition_of
from sixminutes.group.view import View
from sixminutes.store import Store

calls = st.lists(st.tuples(st.sampled_from(["kestrel", "osprey", "wren"]),
                           st.integers(0, 3), st.integers(0, 400), st.sampled_from(["200", "503"]),
                           st.integers(0, 900)),
                 max_size=60)


BASE = 1_790_000_000 - 1_790_000_000 % 360  # (2026-09: a window of the past)


def _docs(spec):
    """CDRs of calls that last up to 15 minutes: their calls in progress span windows."""
    return [raw(uuid=f"u-{i}", ccnq_profile=profile, end_epoch=BASE + 360 * w + i % 300,
                billsec=billsec, sip_term_status=code, start_epoch=BASE + 360 * w + i % 300 - length)
            for i, (profile, w, billsec, code, length) in enumerate(spec)]


@settings(deadline=None, max_examples=40)
@given(calls, st.integers(1, 5))
def test_merged_partitions_equal_one_engine_counting_everything(spec, partitions) -> None:
    docs = _docs(spec)
    whole = Engine(Config(retention_hours=None))
    whole.feed_batch(docs)
    view = View()
    for p in range(partitions):
        engine = Engine(Config(retention_hours=None))
        engine.feed_batch([d for i, d in enumerate(docs) if partition_of(f"u-{i}", partitions) == p])
        for t in engine.store.windows():
            keys, table = engine.store.peek(t).rows_table()
            view.put(p, t, len(docs), keys, table, engine.store.occupancy.windows.get(t))
    store = Store()
    view.apply(store)
    assert whole.accepted == len(docs)  # (in the past: none is from the future)
    assert store.to_json() == whole.store.to_json()  # peak_concurrent too: the sum's peak


def test_an_older_record_of_a_partition_never_replaces_a_newer_one() -> None:
    view = View()
    assert view.put(0, 360, 10, ["calls"], np.array([[5.0, 5, 5, 1, 1]]))
    assert not view.put(0, 360, 9, ["calls"], np.array([[4.0, 4, 4, 1, 1]]))
    assert view.put(1, 360, 3, ["calls"], np.array([[2.0, 2, 2, 1, 1]]))
    store = Store()
    assert view.apply(store) == [360]
    assert store.get(360, "calls").count == 7
    assert view.upto == {0: 10, 1: 3}
    assert view.apply(store) == []  # nothing new


def test_min_and_max_merge_across_partitions() -> None:
    view = View()
    view.put(0, 0, 1, ["pdd_ms"], np.array([[300.0, 2, 50_000, 100, 200]]))
    view.put(1, 0, 1, ["pdd_ms"], np.array([[90.0, 1, 8_100, 90, 90]]))
    keys, table = view.merged(0)
    assert keys == ["pdd_ms"] and table.tolist() == [[390.0, 3, 58_100, 90, 200]]


def test_outcome_records_give_what_they_add() -> None:
    view = View()
    assert view.put_outcomes(0, 5, {("http", "accepted"): 5}) == Counter({("http", "accepted"): 5})
    change = view.put_outcomes(0, 8, {("http", "accepted"): 7, ("http", "duplicate"): 1})
    assert change == Counter({("http", "accepted"): 2, ("http", "duplicate"): 1})
    assert view.put_outcomes(0, 6, {("http", "accepted"): 6}) is None


def test_purge_forgets_old_windows() -> None:
    view = View()
    view.put(0, 0, 1, ["calls"], np.ones((1, 5)))
    view.put(0, 720, 2, ["calls"], np.ones((1, 5)))
    view.purge(360)
    assert list(view.parts) == [720] and view.dirty == {720}


def test_replacing_a_window_marks_only_the_series_that_changed() -> None:
    store = Store()
    store.track_changes = True
    store.replace(0, ["a", "b"], np.array([[1.0, 1, 1, 1, 1], [2.0, 1, 4, 2, 2]]))
    assert store.drain_changes() == {0: {"a", "b"}}
    store.replace(0, ["a", "b", "c"], np.array([[1.0, 1, 1, 1, 1], [4.0, 2, 8, 2, 2],
                                                [1.0, 1, 1, 1, 1]]))
    assert store.drain_changes() == {0: {"b", "c"}}
    assert store.get(0, "b").count == 2


def test_calls_in_progress_are_added_per_second_unless_a_partition_lacks_them() -> None:
    """Two partitions each with one call at a time, at different seconds: the group's peak is
    still one (a max of maxes would say so too), its mean the sum's; a record without its
    seconds (a partition restored without them) leaves the Stats merged as Stats."""
    key = 'peak_concurrent{direction="egress",profile="wren"}'
    first, second = np.zeros(360, np.int32), np.zeros(360, np.int32)
    first[:100], second[50:150] = 1, 1  # overlapping in 50..99: two calls at a time there
    stat = lambda busy: [float(busy.sum()), 360.0, float((busy * busy).sum()), float(busy.min()),
                         float(busy.max())]
    view = View()
    view.put(0, 360, 1, [key], np.array([stat(first)]), {key: first})
    view.put(1, 360, 1, [key], np.array([stat(second)]), {key: second})
    store = Store()
    view.apply(store)
    assert store.get(360, key).max == 2.0  # the peak of the sum, not the highest peak (1)
    assert store.get(360, key).sum == 200.0 and store.get(360, key).count == 360
    view.put(1, 360, 2, [key], np.array([stat(second)]))  # no seconds in this record
    view.apply(store)
    assert store.get(360, key).max == 1.0 and store.get(360, key).count == 720


def test_a_record_at_the_same_position_replaces_and_the_position_held_never_goes_back() -> None:
    view = View()
    assert view.put(0, 360, 5, ["calls"], np.array([[1.0, 1, 1, 1, 1]]))
    assert view.put(0, 360, 5, ["calls"], np.array([[2.0, 2, 2, 1, 1]]))  # (read again)
    assert view.put(0, 720, 3, ["calls"], np.array([[1.0, 1, 1, 1, 1]]))  # another window
    assert view.put(1, 360, 0, ["calls"], np.array([[1.0, 1, 1, 1, 1]]))
    assert view.upto == {0: 5, 1: 0}
    assert view.put_outcomes(0, 5, {("http", "accepted"): 2}) is not None
    assert view.put_outcomes(0, 5, {("http", "accepted"): 3}) == Counter({("http", "accepted"): 1})
    assert view.put_outcomes(2, 0, {}) is not None and view.upto[2] == 0
    store = Store()
    view.apply(store)
    assert store.get(360, "calls").count == 3


def test_a_key_a_newer_record_no_longer_holds_leaves_the_window() -> None:
    view = View()
    view.put(0, 360, 1, ["a", "b"], np.array([[1.0, 1, 1, 1, 1], [2.0, 1, 4, 2, 2]]))
    view.put(0, 360, 2, ["a"], np.array([[3.0, 2, 5, 1, 2]]))
    keys, table = view.merged(360)
    assert keys == ["a"] and table.tolist() == [[3.0, 2, 5, 1, 2]]


def test_purge_keeps_the_window_it_is_given_and_forgets_those_before() -> None:
    view = View()
    for t in (0, 360, 720):
        view.put(0, t, 1, ["calls"], np.array([[1.0, 1, 1, 1, 1]]))
    view.purge(360)
    assert sorted(view.parts) == sorted(view.index) == [360, 720]
    assert view.dirty == {360, 720}
