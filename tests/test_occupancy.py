"""peak_concurrent: the calls in progress per second of a window, against a sweep line."""
from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import END, raw
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.occupancy import HORIZON
from sixminutes.stats import series_key
from sixminutes.store import Store
from sixminutes.windows import WINDOW

BASE = END - END % WINDOW


def sweep(calls: list[tuple[int, int, str]], window: int, profile: str) -> list[int]:
    """Calls in progress at each second of the window, by a sweep line over start and end events."""
    events = sorted([(s, 1) for s, e, p in calls if p == profile and e > s] +
                    [(e, -1) for s, e, p in calls if p == profile and e > s])
    busy, i, out = 0, 0, []
    for t in range(window, window + WINDOW):
        while i < len(events) and events[i][0] <= t:
            busy += events[i][1]
            i += 1
        out.append(busy)
    return out


def doc(i: int, start: int, end: int, profile: str) -> bytes:
    return raw(_id=f"c{i}", start_epoch=start, end_epoch=end, duration=end - start,
               ccnq_profile=profile, ccnq_direction="egress")


def peaks(store: Store, windows, profiles) -> dict:
    out = {}
    for t in windows:
        for p in profiles:
            stat = store.get(t, series_key("peak_concurrent", {"direction": "egress", "profile": p}))
            out[(t, p)] = None if stat is None else (stat.max, stat.sum, stat.min, stat.count)
    return out


def expected(calls, windows, profiles) -> dict:
    out = {}
    for t in windows:
        for p in profiles:
            busy = sweep(calls, t, p)
            out[(t, p)] = (max(busy), sum(busy), min(busy), WINDOW) if any(busy) else None
    return out


calls_strategy = st.lists(st.tuples(st.integers(0, 8 * WINDOW), st.integers(0, 3 * WINDOW),
                                    st.sampled_from(["a", "b"])), max_size=60)


@settings(max_examples=150, deadline=None)
@given(calls=calls_strategy, seed=st.integers(0, 2**32), size=st.integers(1, 80))
def test_peak_concurrent_equals_a_sweep_line_in_every_window(calls, seed, size):
    calls = [(BASE + s, BASE + s + d, p) for s, d, p in calls]
    docs = [doc(i, s, e, p) for i, (s, e, p) in enumerate(calls)]
    random.Random(seed).shuffle(docs)  # late CDRs: any order updates the windows they span
    engine = Engine(Config(retention_hours=None))
    for start in range(0, len(docs), size):
        engine.feed_batch(docs[start:start + size])
    windows = range(BASE, BASE + 12 * WINDOW, WINDOW)
    assert peaks(engine.store, windows, "ab") == expected(calls, windows, "ab")


@settings(max_examples=40, deadline=None)
@given(calls=calls_strategy, seed=st.integers(0, 2**32))
def test_occupancies_of_two_stores_join_into_the_whole(calls, seed):
    """Two engines counting any split of the calls (a parallel replay's shares, pickled from
    one process to the other) join into the Stats of one engine counting them all; calls
    counted after the join add to the seconds joined."""
    calls = [(BASE + s, BASE + s + d, p) for s, d, p in calls]
    rng = random.Random(seed)
    left, right = Engine(Config(retention_hours=None)), Engine(Config(retention_hours=None))
    after = []
    for i, (s, e, p) in enumerate(calls):
        side = rng.random()
        if side < 0.2:
            after.append(doc(i, s, e, p))
        else:
            (left if side < 0.6 else right).feed(doc(i, s, e, p))
    left.absorb(pickle.loads(pickle.dumps(right.share())))
    for item in after:
        left.feed(item)
    windows = range(BASE, BASE + 12 * WINDOW, WINDOW)
    assert peaks(left.store, windows, "ab") == expected(calls, windows, "ab")


def restored(engine: Engine, with_seconds: bool) -> Engine:
    """A new engine restored from what a snapshot of ``engine`` saves (its occupancy too, or
    not: a state file of an older version)."""
    store = engine.store
    cells = [(t, key, s.sum, s.count, s.squares, s.min, s.max) for t, key, s in store.items()]
    seconds = [(t, key, store.occupancy.saved(t, key)) for t, key, _ in store.items()
               if store.occupancy.saved(t, key) is not None] if with_seconds else []
    again = Engine(Config(retention_hours=None))
    again.restore(cells, [], [], {}, seconds)
    return again


def test_a_restart_goes_on_counting_calls_in_progress_exactly():
    calls = [(BASE + 10, BASE + 100, "a"), (BASE + 50, BASE + WINDOW + 30, "a"),
             (BASE + 20, BASE + 90, "a"), (BASE + 300, BASE + 2 * WINDOW, "a")]
    whole = Engine(Config(retention_hours=None))
    before = Engine(Config(retention_hours=None))
    for i, (s, e, p) in enumerate(calls):
        whole.feed(doc(i, s, e, p))
        if i < 2:
            before.feed(doc(i, s, e, p))
    after = restored(before, with_seconds=True)
    for i, (s, e, p) in enumerate(calls[2:], 2):
        after.feed(doc(i, s, e, p))
    windows = range(BASE, BASE + 3 * WINDOW, WINDOW)
    assert peaks(after.store, windows, "a") == peaks(whole.store, windows, "a") == \
        expected(calls, windows, "a")


def test_a_window_restored_without_its_seconds_keeps_its_stat():
    before = Engine(Config(retention_hours=None))
    before.feed(doc(1, BASE + 10, BASE + 100, "a"))
    after = restored(before, with_seconds=False)
    after.feed(doc(2, BASE + 20, BASE + WINDOW + 5, "a"))  # spans the restored window and the next
    key = series_key("peak_concurrent", {"direction": "egress", "profile": "a"})
    assert after.store.get(BASE, key) == before.store.get(BASE, key)  # (frozen: as restored)
    assert after.store.get(BASE + WINDOW, key).sum == 5
    assert after.store.get(BASE, series_key("calls", {"direction": "egress", "profile": "a"})).count == 1


def test_the_occupancy_goes_with_its_window_at_purge():
    engine = Engine(Config(retention_hours=None))
    engine.feed(doc(1, BASE + 10, BASE + 100, "a"))
    engine.feed(doc(2, BASE + 3 * WINDOW, BASE + 3 * WINDOW + 50, "a"))
    engine.store.purge(BASE + WINDOW)
    assert BASE not in engine.store.occupancy.windows
    engine.feed(doc(3, BASE + 5, BASE + 2 * WINDOW + 10, "a"))  # (its purged part counts nowhere)
    assert BASE not in engine.store.windows()
    assert engine.store.occupancy.bytes == 4 * WINDOW * len(
        [k for keys in engine.store.occupancy.windows.values() for k in keys])


def test_a_replay_keeps_every_occupancy():
    engine = Engine(Config(retention_hours=None))
    engine.feed(doc(1, BASE + 10, BASE + 100, "a"))
    engine.feed(doc(2, BASE + HORIZON + 10 * WINDOW, BASE + HORIZON + 10 * WINDOW + 5, "a"))
    engine.feed(doc(3, BASE + 20, BASE + 90, "a"))
    key = series_key("peak_concurrent", {"direction": "egress", "profile": "a"})
    assert engine.store.get(BASE, key).max == 2


def test_a_call_counts_in_its_last_two_hours_at_most():
    engine = Engine(Config(retention_hours=None))
    end = BASE + 5 * HORIZON + 30
    engine.feed(doc(1, BASE, end, "a"))
    key = series_key("peak_concurrent", {"direction": "egress", "profile": "a"})
    held = [t for t in engine.store.windows() if engine.store.get(t, key) is not None]
    last = end - end % WINDOW
    assert held == list(range(last - HORIZON, last + 1, WINDOW))
    assert engine.store.get(last, key).sum == 30 and engine.store.get(last - WINDOW, key).min == 1


@settings(max_examples=60, deadline=None)
@given(calls=st.lists(st.tuples(st.integers(0, 8 * WINDOW),
                                st.integers(0, 3 * WINDOW) | st.integers(0, HORIZON + 3 * WINDOW),
                                st.sampled_from(["a", "b", "c"]), st.booleans()),
                      min_size=65, max_size=150),
       split=st.integers(1, 150))
def test_spans_of_any_batch_with_a_condition_equal_a_sweep_line(calls, split):
    """A batch beyond SMALL is counted for every label set and window it spans at once, a
    smaller one row by row; ``when`` keeps only its calls (here: the billed ones), labelled by
    profile alone."""
    from sixminutes.batch import Batch
    from sixminutes.call import decode
    from sixminutes.occupancy import Spans
    calls = [(BASE + s, BASE + s + d, p, billed) for s, d, p, billed in calls]
    decoded = [decode(raw(_id=f"c{i}", start_epoch=s, end_epoch=e, duration=e - s, ccnq_profile=p,
                          billsec=str(max(e - s, 1)) if billed else "0"))
               for i, (s, e, p, billed) in enumerate(calls)]
    spans = Spans("busy", labels=("profile",), when=lambda b: b.billsec > 0)
    store = Store()
    for start in range(0, len(decoded), split):
        part = decoded[start:start + split]
        spans.count(Batch(part, [d.call.end_epoch - d.call.end_epoch % WINDOW for d in part]), store)
    # (a call counts in the windows of its last two hours only)
    billed = [(max(s, e - e % WINDOW - HORIZON), e, p) for s, e, p, b in calls if b]
    for t in range(BASE - 20 * WINDOW, BASE + 32 * WINDOW, WINDOW):
        for p in "abc":
            busy = sweep(billed, t, p)
            stat = store.get(t, series_key("busy", {"profile": p}))
            got = None if stat is None else (stat.max, stat.sum, stat.min, stat.count, stat.squares)
            assert got == ((max(busy), sum(busy), min(busy), WINDOW, sum(b * b for b in busy))
                           if any(busy) else None)


# -- the batch path's edges (what its mutation run showed untested) ---------------------------

def spans_count(store: Store, calls: list[tuple[int, int, str]], first: int = 0) -> None:
    """Count calls (start, end, profile) as one batch of Spans("busy", labels=profile)."""
    from sixminutes.batch import Batch
    from sixminutes.call import decode
    from sixminutes.occupancy import Spans
    decoded = [decode(raw(_id=f"c{first + i}", start_epoch=s, end_epoch=e, duration=e - s,
                          ccnq_profile=p)) for i, (s, e, p) in enumerate(calls)]
    Spans("busy", labels=("profile",)).count(
        Batch(decoded, [d.call.end_epoch - d.call.end_epoch % WINDOW for d in decoded]), store)


def busy(store: Store, t: int, profile: str) -> tuple | None:
    stat = store.get(t, series_key("busy", {"profile": profile}))
    return None if stat is None else (stat.max, stat.sum, stat.min, stat.count)


def swept(calls: list[tuple[int, int, str]], t: int, profile: str) -> tuple | None:
    seconds = sweep(calls, t, profile)
    return (max(seconds), sum(seconds), min(seconds), WINDOW) if any(seconds) else None


def test_a_second_batch_adds_to_the_seconds_of_the_first():
    """Two batches over SMALL into the same windows: the second adds to the first's seconds."""
    one = [(BASE + i, BASE + 100 + i, "a") for i in range(70)]
    two = [(BASE + 50 + i, BASE + WINDOW + 10 + i, "a") for i in range(70)]
    store = Store()
    spans_count(store, one)
    spans_count(store, two, first=100)
    for t in (BASE, BASE + WINDOW):
        assert busy(store, t, "a") == swept(one + two, t, "a")


def test_a_call_never_in_progress_writes_no_stat_and_one_second_past_a_window_counts():
    """A zero-length call (a failed one: start = end) is in progress at no second: alone for
    its carrier in a large batch it writes no Stat, as row by row; a call ending one second
    after a window's start is in progress at that second."""
    calls = [(BASE + 10 + i, BASE + 10 + i, "idle") for i in range(70)]
    calls.append((BASE + 5, BASE + WINDOW + 1, "edge"))
    store = Store()
    spans_count(store, calls)
    assert busy(store, BASE, "idle") is None and busy(store, BASE + WINDOW, "idle") is None
    assert busy(store, BASE + WINDOW, "edge") == (1, 1, 0, WINDOW)


def test_many_carriers_over_a_few_windows_each_keep_their_own_seconds():
    """More label sets than windows spanned: each (carrier, window) piece is its own."""
    calls = [(BASE + 300 + 7 * i, BASE + WINDOW + 20 + 11 * i, f"p{i % 5}") for i in range(80)]
    store = Store()
    spans_count(store, calls)
    for t in (BASE, BASE + WINDOW, BASE + 2 * WINDOW):
        for p in (f"p{i}" for i in range(5)):
            assert busy(store, t, p) == swept(calls, t, p), (t, p)


def test_the_seconds_saved_are_int32_and_restore_the_same_stat():
    """What a snapshot saves of the batch path: 360 int32 (1,440 bytes), read back the same;
    a window or key without seconds has none."""
    import numpy as np
    calls = [(BASE + i, BASE + 200 + i, "a") for i in range(70)]
    store = Store()
    spans_count(store, calls)
    key = series_key("busy", {"profile": "a"})
    saved = store.occupancy.saved(BASE, key)
    assert saved is not None and len(saved) == 4 * WINDOW
    assert np.frombuffer(saved, np.int32).tolist() == sweep(calls, BASE, "a")
    assert store.occupancy.saved(BASE + 10 * WINDOW, key) is None
    assert store.occupancy.saved(BASE, series_key("busy", {"profile": "b"})) is None


def test_a_frozen_window_is_skipped_and_the_windows_after_it_counted():
    """A window restored without its seconds (frozen) keeps its Stat; the pieces after it in
    the same batch, of the same carrier and of others, are counted."""
    calls = [(BASE + 300, BASE + 2 * WINDOW + 30, "a")] + \
            [(BASE + WINDOW + i, BASE + WINDOW + 40 + i, "b") for i in range(70)]
    store = Store()
    store.occupancy.freeze({BASE})
    store.occupancy.freeze({BASE + 5 * WINDOW})  # (a second call adds: both stay frozen)
    assert store.occupancy.frozen == {BASE, BASE + 5 * WINDOW}
    spans_count(store, calls)
    assert busy(store, BASE, "a") is None
    for t, p in ((BASE + WINDOW, "a"), (BASE + 2 * WINDOW, "a"), (BASE + WINDOW, "b")):
        assert busy(store, t, p) == swept(calls, t, p), (t, p)


def test_after_a_purge_a_batch_counts_only_in_the_windows_kept():
    """forget(before): the windows before go, the one at ``before`` stays, and so does its
    freeze; a batch then counts nothing before it (a call that ended long before included)."""
    store = Store()
    spans_count(store, [(BASE + i, BASE + WINDOW + 100 + i, "a") for i in range(70)])
    store.occupancy.freeze({BASE + WINDOW, BASE + 3 * WINDOW})
    store.occupancy.forget(BASE + WINDOW)
    assert sorted(store.occupancy.windows) == [BASE + WINDOW]
    assert store.occupancy.floor == BASE + WINDOW
    assert store.occupancy.frozen == {BASE + WINDOW, BASE + 3 * WINDOW}
    late = [(BASE - 3 * WINDOW, BASE - 2 * WINDOW, "b"), (BASE + 10, BASE + 2 * WINDOW + 50, "b")]
    late += [(BASE + 2 * WINDOW + i, BASE + 2 * WINDOW + 60 + i, "c") for i in range(70)]
    spans_count(store, late, first=100)
    assert sorted(store.occupancy.windows) == [BASE + WINDOW, BASE + 2 * WINDOW]
    for t, p in ((BASE + 2 * WINDOW, "b"), (BASE + 2 * WINDOW, "c")):
        assert busy(store, t, p) == swept(late, t, p), (t, p)


def test_absorbing_another_occupancy_keeps_the_higher_floor_and_both_frozen_sets():
    from sixminutes.occupancy import Occupancy
    mine, theirs = Occupancy(), Occupancy()
    mine.forget(BASE)
    theirs.forget(BASE + WINDOW)
    mine.freeze({BASE + 2 * WINDOW})
    theirs.freeze({BASE + 3 * WINDOW})
    mine.absorb(theirs, Store())
    assert mine.floor == BASE + WINDOW
    assert mine.frozen == {BASE + 2 * WINDOW, BASE + 3 * WINDOW}


def test_spans_labels_may_rename_columns_and_bad_ones_are_refused_at_declaration():
    """``labels`` as a dict names each label after a column (``carrier`` from ``profile``); a
    column that is no label column, or a label name a series key cannot hold, is refused
    when the plugin declares it, not at its first batch."""
    from sixminutes.batch import LABELS, Batch
    from sixminutes.call import decode
    from sixminutes.occupancy import Spans
    from sixminutes.stats import SeriesKeyError

    spans = Spans("busy", labels={"carrier": "profile"})
    assert (spans.pairs, spans.columns) == ((("carrier", "profile"),), ("profile",))
    store = Store()
    calls = [(BASE + i, BASE + 100 + i, "a") for i in range(3)]
    decoded = [decode(raw(_id=f"c{i}", start_epoch=s, end_epoch=e, ccnq_profile=p))
               for i, (s, e, p) in enumerate(calls)]
    spans.count(Batch(decoded, [BASE] * 3), store)
    assert store.get(BASE, series_key("busy", {"carrier": "a"})).max == 3
    with pytest.raises(ValueError) as refused:
        Spans("busy", labels=("nope",))
    assert str(refused.value) == f"spans busy: label column 'nope' is not one of {', '.join(LABELS)}"
    with pytest.raises(SeriesKeyError):
        Spans("busy", labels={"bad-name": "profile"})


@pytest.mark.parametrize("n", [90, 30])
def test_a_batch_by_direction_and_carrier_with_a_column_condition_and_missing_labels(n):
    """Both paths (over SMALL, and row by row) with the built-in's labels over three
    directions and two carriers (more direction codes than carriers: each pair is its own
    group), ``when`` as a column name (the answered calls), and a label column that may be
    None (``q850``: named "none")."""
    from sixminutes.batch import Batch
    from sixminutes.call import decode
    from sixminutes.occupancy import Spans
    rows = []
    for i in range(n):
        direction, profile = ("egress", "ingress", "unknown")[i % 3], ("a", "b")[i // 3 % 2]
        rows.append((BASE + i, BASE + 200 + 2 * i, direction, profile, i % 4 != 0))
    decoded = [decode(raw(_id=f"c{i}", start_epoch=s, end_epoch=e, ccnq_direction=d,
                          ccnq_profile=p, answer_epoch=s + 1 if answered else 0,
                          billsec=e - s - 1 if answered else 0))
               for i, (s, e, d, p, answered) in enumerate(rows)]
    batch = Batch(decoded, [BASE] * len(decoded))
    store = Store()
    Spans("busy").count(batch, store)
    Spans("answered_busy", when="answered").count(batch, store)
    Spans("by_cause", labels=("q850",)).count(batch, store)
    for d in ("egress", "ingress", "unknown"):
        for p in ("a", "b"):
            calls = [(s, e, "x") for s, e, dd, pp, _ in rows if (dd, pp) == (d, p)]
            stat = store.get(BASE, series_key("busy", {"direction": d, "profile": p}))
            assert (stat.max, stat.sum) == (max(sweep(calls, BASE, "x")), sum(sweep(calls, BASE, "x")))
            answered = [(s, e, "x") for s, e, dd, pp, a in rows if (dd, pp) == (d, p) and a]
            stat = store.get(BASE, series_key("answered_busy", {"direction": d, "profile": p}))
            assert stat.sum == sum(sweep(answered, BASE, "x"))
    everyone = [(s, e, "x") for s, e, *_ in rows]
    assert store.get(BASE, series_key("by_cause", {"q850": "none"})).sum == sum(sweep(everyone, BASE, "x"))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(st.integers(0, 2**31 - 1), min_size=WINDOW, max_size=WINDOW),
                     min_size=1, max_size=4),
       small=st.booleans())
def test_a_windows_stat_of_its_seconds_is_what_floats_give_at_any_count(rows, small):
    import numpy as np
    from sixminutes.occupancy import _stats
    seconds = np.array(rows, np.int32)
    if small:  # (the counts of real carriers; else absurd ones, whose squares exceed an int64)
        seconds %= 1000
    wide = seconds.astype(np.float64)
    squares = np.einsum("ij,ij->i", wide, wide)
    assert _stats(seconds) == [(float(w.sum()), float(WINDOW), float(q), float(w.min()),
                                float(w.max())) for w, q in zip(wide, squares)]
    assert all(type(v) is float for stat in _stats(seconds) for v in stat)
