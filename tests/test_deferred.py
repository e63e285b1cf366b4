"""Rows admitted now and counted later (Engine.admit_batch, count_waiting; deferred.py):
counted together, they leave exactly what each batch counted at once would."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import END, raw
from sixminutes.columns import decode_columns
from sixminutes.deferred import _join
from test_engine import CARRIER, documents, engine, odd_plugin, what_was_counted  # noqa: F401

# documents the compiled decoder leaves to call.decode() (escapes, non-ASCII): their rows
# carry their Decoded into the joined batch
slow = st.builds(lambda i, name: raw(_id=f"slow-{i}", ccnq_profile=name, ccnq_direction="egress",
                                     ccnq_account="acct1"),
                 st.integers(0, 5), st.sampled_from(['car"rier', "carri\u00e9r", "kestrel"]))
groups = st.lists(st.tuples(st.lists(st.one_of(documents, slow), max_size=12), st.booleans()),
                  max_size=8)


@settings(max_examples=80, deadline=None)
@given(groups)
def test_batches_counted_together_later_count_as_each_counted_at_once(odd_plugin, batches):
    """Outcomes and where each was seen, dedup across the batches waiting, plugin errors
    and their positions, alerts and the store: the same. (``counted``: whether the rows
    waiting are counted after that batch, as the service's timer or a read would.)"""
    at_once, later = (engine(plugin_dirs=[str(odd_plugin)]) for _ in range(2))
    for items, counted in batches:
        assert later.admit_batch(items, "http") == at_once.feed_batch(items, "http")
        if counted:
            later.count_waiting()
            assert len(later.waiting) == 0
    later.count_waiting()
    assert what_was_counted(later) == what_was_counted(at_once)


def test_rows_wait_uncounted_until_count_waiting_and_a_duplicate_across_them_is_rejected():
    e = engine()
    assert e.admit_batch([raw(_id="a", **CARRIER), raw(_id="b", **CARRIER)]) == [None, None]
    assert e.admit_batch([raw(_id="a", **CARRIER), raw(_id="c", **CARRIER)]) == ["duplicate", None]
    assert len(e.waiting) == 3 and e.store.to_json() == {} and e.accepted == 3
    assert e.count_waiting() == 3 and len(e.waiting) == 0
    assert sum(s.count for _, _, s in e.store.items(names=["calls"])) == 3


def test_every_read_of_the_engine_counts_the_rows_waiting_first(tmp_path: Path):
    """The engine's own reads and writes: the rules' check, a status, a share, a purge,
    a deletion, a reload, and another source's batch (counted after, in order)."""
    reads = {"flush": lambda e: e.flush(), "status": lambda e: e.status(),
             "share": lambda e: e.share(), "purge": lambda e: e.purge(),
             "reload": lambda e: e.reload(), "feed_batch": lambda e: e.feed_batch([]),
             "feed_many": lambda e: e.feed_many([])}
    for name, read in reads.items():
        e = engine()
        e.admit_batch([raw(_id=f"{name}-{i}", **CARRIER) for i in range(3)])
        read(e)
        assert len(e.waiting) == 0, name
        assert sum(s.count for _, _, s in e.store.items(names=["calls"])) == 3, name
    e = engine()
    e.admit_batch([raw(_id="gone", **CARRIER)])
    e.clear(None)  # (counted, then deleted: nothing of it is left to count later)
    assert len(e.waiting) == 0 and e.store.to_json() == {}


def test_a_raising_batch_plugin_skips_the_joined_batch_and_the_others_count_it(tmp_path: Path):
    (tmp_path / "boom.py").write_text(
        "from sixminutes.series import Series\n"
        "def _fail(b):\n    raise RuntimeError('boom')\n"
        "SERIES = [Series('boom', when=_fail)]\n")
    e = engine(plugin_dirs=[str(tmp_path)])
    for n in range(3):
        e.admit_batch([raw(_id=f"{n}-{i}", **CARRIER) for i in range(4)])
    assert e.count_waiting() == 12
    boom = next(p for p in e.plugins.plugins if p.name == "boom")
    assert boom.errors == 1 and "boom" in boom.last_error
    assert sum(s.count for _, _, s in e.store.items(names=["calls"])) == 12


def test_joined_columns_keep_each_rows_values_and_only_the_accepted_rows():
    first = decode_columns([raw(_id="x", **CARRIER), b"{", raw(_id="y", ccnq_profile="b\u00e9"),
                            raw(_id="x", ccnq_profile="gone")])  # (rejected: a duplicate)
    second = decode_columns([raw(_id="z", ccnq_profile="b\u00e9", end_epoch=END - 1)])

    joined = _join([(first, np.array([0, 2]), np.array([0, 0]), 0),
                    (second, np.array([0]), np.array([0]), 3)])
    profile = 1  # (TEXTS: id, profile, ...)
    rows = [[joined.values[i][joined.codes[i, r]] for i in (0, profile)] for r in range(3)]
    assert rows == [["x", "carrier1"], ["y", "b\u00e9"], ["z", "b\u00e9"]]
    assert joined.values[profile] == ["carrier1", "b\u00e9"]  # (one code per value used)
    assert joined.ints[0].tolist() == [END, END, END - 1]  # end_epoch
    assert sorted(joined.outcome) == [1, 2]  # (the rows decoded in Python, at their new rows)
