"""What every member of a group computes alike: partitions, owners, the wire form, admission."""
from __future__ import annotations

import zlib

import numpy as np
import orjson
import pytest
from hypothesis import given, strategies as st

from helpers import raw
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.group.partitions import (PARTITIONS, Names, admission, assign, decode_outcomes,
                                         decode_window, encode_outcomes, encode_window,
                                         partition_of)

members = st.lists(st.text(st.characters(whitelist_categories=("Ll", "Nd")), min_size=1,
                           max_size=8), min_size=1, max_size=20)


@given(members, st.integers(1, 64))
def test_every_partition_has_exactly_one_owner_and_shares_differ_by_one_at_most(names, n) -> None:
    owned = assign(names, n)
    dealt = sorted(p for ps in owned.values() for p in ps)
    assert dealt == list(range(n))
    sizes = [len(ps) for ps in owned.values()]
    assert max(sizes) - min(sizes) <= 1
    assert set(owned) == set(names)


@given(members)
def test_owners_do_not_depend_on_the_order_members_are_seen_in(names) -> None:
    assert assign(names) == assign(list(reversed(names)))


def test_no_member_no_owner() -> None:
    assert assign([]) == {}


@given(st.text(min_size=1))
def test_a_cdr_id_always_goes_to_the_same_partition(cdr_id) -> None:
    p = partition_of(cdr_id)
    assert 0 <= p < PARTITIONS and partition_of(cdr_id) == p


def test_ids_spread_over_every_partition() -> None:
    counts = np.bincount([partition_of(f"uuid-{i}") for i in range(16_000)], minlength=PARTITIONS)
    assert counts.min() > 800 and counts.max() < 1200


@given(st.integers(0, 2**62), st.lists(st.text(max_size=40), unique=True, max_size=30),
       st.data())
def test_a_window_record_round_trips(upto, keys, data) -> None:
    """Stats, and the calls in progress at each second of the series that have them."""
    rng = np.random.default_rng(len(keys))
    table = rng.normal(size=(len(keys), 5))
    spans = data.draw(st.lists(st.sampled_from(keys), unique=True) if keys else st.just([]))
    seconds = {key: rng.integers(0, 2**31, 360).astype(np.int32) for key in spans}
    got_upto, got_keys, got_table, got_seconds = decode_window(
        encode_window(upto, keys, table, seconds))
    assert (got_upto, got_keys) == (upto, keys)
    assert np.array_equal(got_table, table)
    assert got_seconds.keys() == seconds.keys()
    assert all(np.array_equal(got_seconds[key], seconds[key]) for key in seconds)


@pytest.mark.parametrize("data", [
    b"", b"not zlib", encode_window(1, ["a"], np.zeros((1, 5)))[:-3],
    zlib.compress(zlib.decompress(encode_window(1, ["a"], np.zeros((1, 5)),
                                                {"a": np.zeros(360, np.int32)}))[:-7], 1),
    zlib.compress(zlib.decompress(encode_window(1, ["a"], np.zeros((1, 5)))) + b"\x07", 1)])
def test_a_damaged_window_record_is_a_value_error(data) -> None:
    with pytest.raises(ValueError, match="damaged"):
        decode_window(data)


def test_outcomes_round_trip_and_damage_is_a_value_error() -> None:
    outcomes = {("http", "accepted"): 7, ("demo", "duplicate"): 2}
    assert decode_outcomes(encode_outcomes(42, outcomes)) == (42, outcomes)
    with pytest.raises(ValueError):
        decode_outcomes(b'{"upto": 1}')


@pytest.mark.parametrize("name", ["", "a.b", "a b", "x" * 65, "a*"])
def test_a_group_name_nats_cannot_carry_is_refused(name) -> None:
    with pytest.raises(ValueError):
        Names(name)


def test_names_of_a_group() -> None:
    names = Names("noc-1")
    assert names.stream == "SIXMINUTES_noc-1"
    assert names.subject(3) == "sixminutes.noc-1.cdr.3"


def test_admission_counts_what_cannot_count_and_names_the_rest_by_id() -> None:
    now = 1_800_000_000
    engine = Engine(Config(retention_hours=24), clock=lambda: now)
    good = raw("doc-1", uuid="u-1", end_epoch=now - 60)
    assert admission(engine, good, "http") == (None, "doc-1")
    no_id = orjson.dumps({"variables": {"end_epoch": now - 60}})
    reason, stored_as = admission(engine, no_id, "http")
    assert reason is None and len(stored_as) == 64  # the body's SHA-256: a retry is the same
    assert admission(engine, raw(uuid="u-2", end_epoch=now - 25 * 3600), "http") == ("too_old", "")
    assert admission(engine, raw(uuid="u-3", end_epoch=now + 7200), "http") == ("future", "")
    assert admission(engine, b"{", "http") == ("bad_json", "")
    assert engine.outcomes == {("http", "too_old"): 1, ("http", "future"): 1, ("http", "bad_json"): 1}


def test_the_rules_check_label_sets_a_merged_view_changed() -> None:
    from sixminutes.store import Store
    from sixminutes.thresholds import DEFAULT_RULES, Thresholds

    rules = Thresholds([DEFAULT_RULES["network_failure_ratio"]])
    store = Store()
    keys = ['calls{direction="egress",profile="kestrel"}',
            'network_failures{direction="egress",profile="kestrel"}', 'unrelated']
    store.replace(0, keys, np.array([[60.0, 60, 60, 1, 1], [40.0, 40, 40, 1, 1], [1.0, 1, 1, 1, 1]]))
    rules.touch_keys(0, keys)
    crossed = rules.check(store)
    assert [(r.name, labels, samples) for r, labels, _, samples, _, _ in crossed] == [
        ("network_failure_ratio", {"direction": "egress", "profile": "kestrel"}, 60)]
