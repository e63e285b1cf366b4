"""The dedup memory: a set per open window, sorted (quotient-compressed) 56-bit hashes once frozen."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sixminutes import dedup
from sixminutes.dedup import QUOTIENT_FROM, Packed, SeenIds, from_v2, id_hash, id_hash_v2

W = 1_700_000_000 - 1_700_000_000 % 360


def test_id_hash_is_stable_56_bit_the_top_of_schema_2s_and_tells_ids_apart():
    assert id_hash_v2("a") == 3405396810240292928  # the same in every process and release
    assert id_hash("a") == 3405396810240292928 >> 8
    assert id_hash_v2("uuid-0") < 0 and id_hash("uuid-0") == (id_hash_v2("uuid-0") + 2**64) >> 8
    values = {id_hash(f"uuid-{i}") for i in range(10_000)}
    assert len(values) == 10_000
    assert all(0 <= v < 2**56 for v in values) and max(values) >= 2**55
    assert id_hash(42) == id_hash("42")
    assert id_hash("\udcff") == id_hash("\udcff")  # a lone surrogate (from a lax decoder) hashes


def test_id_hash_does_not_depend_on_the_process():
    import subprocess
    import sys
    code = "from sixminutes.dedup import id_hash; print(id_hash('x-1'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == id_hash("x-1")


def test_an_id_is_new_once_per_window():
    seen = SeenIds()
    assert seen.add(W, 1) and not seen.add(W, 1)
    assert seen.add(W + 360, 1)  # another window
    seen.freeze(W + 360)
    assert not seen.add(W, 1)  # still known once packed
    assert seen.add(W, 2) and not seen.add(W, 2)  # a late id in a packed window
    seen.freeze()
    assert (W, 2) in seen and (W, 3) not in seen and len(seen) == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6), st.booleans()), max_size=80),
       st.sampled_from([2, 3, dedup.SPILL]))
def test_add_answers_as_a_set_of_window_and_hash_whatever_is_frozen_when(ops, spill):
    """Freezing at any moment, and an open window's set joining its table every ``spill``
    ids, never change what counts as already seen."""
    seen, reference = SeenIds(), set()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dedup, "SPILL", spill)
        for n, digest, freeze in ops:
            window = W + 360 * n
            assert seen.add(window, digest) == ((window, digest) not in reference)
            reference.add((window, digest))
            if freeze:
                seen.freeze(window)
    assert len(seen) == len(reference)
    assert all(item in seen for item in reference)


def test_an_open_windows_set_joins_its_table_every_spill_ids_and_is_still_saved_packed(monkeypatch):
    monkeypatch.setattr(dedup, "SPILL", 4)
    seen = SeenIds()
    for digest in range(10):
        assert seen.add(W, digest)
    assert len(seen._open[W]) == 2 and len(seen._frozen[W]) == 8 and len(seen) == 10
    assert not seen.add(W, 3) and not seen.add(W, 9) and seen.take_packed() == {}
    for digest in range(10, 12):
        seen.add(W, digest)  # (a spill that leaves the set empty)
    seen.freeze()
    assert list(seen.take_packed()[W]) == list(range(12)) and W not in seen._open


def test_restore_then_add_and_purge():
    seen = SeenIds()
    seen.restore(W, [5, 3, 9])
    assert not seen.add(W, 3) and seen.add(W, 4)
    seen.restore(W + 360, [1])
    seen.purge(W + 360)
    assert list(seen.windows()) == [W + 360] and seen.add(W, 5)


def test_a_frozen_id_of_a_window_at_1000_cdr_s_takes_under_6_bytes():
    seen = SeenIds()
    ids = [id_hash(f"id-{i}") for i in range(360_000)]
    for digest in ids:
        seen.add(W, digest)
    seen.freeze()
    packed = seen._frozen[W]
    assert packed.values is None and len(packed) == 360_000
    assert packed.nbytes == 4 * 65_537 + 5 * 360_000 < 5.8 * 360_000
    assert packed.hashes().tolist() == sorted(ids)
    assert all((W, digest) in seen for digest in ids[::997])


def test_a_small_window_stays_a_plain_array_at_8_bytes_an_id():
    seen = SeenIds()
    for i in range(QUOTIENT_FROM - 1):
        seen.add(W, id_hash(f"id-{i}"))
    seen.freeze()
    assert seen._frozen[W].values is not None and seen.nbytes == 8 * (QUOTIENT_FROM - 1)
    assert Packed.of(np.arange(QUOTIENT_FROM, dtype=np.uint64)).values is None


def test_restore_keeps_a_packed_table_as_it_is():
    packed = Packed.of(np.array([1, 5, 7], np.uint64))
    seen = SeenIds()
    seen.restore(W, packed)
    assert seen._frozen[W] is packed and not seen.add(W, 7) and seen.add(W, 6)


def test_hashes_beyond_56_bits_are_refused():
    with pytest.raises(ValueError, match="56-bit"):
        SeenIds().restore(W, [2**56])
    with pytest.raises(ValueError, match="56-bit"):
        SeenIds().restore(W, [-1])


_HASHES = st.lists(st.one_of(st.integers(0, 2**56 - 1),  # and crowded buckets, bucket edges:
                             st.integers(0, 3).map(lambda b: (b << 40) | 7),
                             st.sampled_from([0, 2**40 - 1, 2**40, 2**56 - 1])), max_size=60)


@settings(max_examples=150, deadline=None)
@given(_HASHES, _HASHES, st.booleans())
def test_a_packed_window_answers_exactly_as_a_set_of_its_hashes(kept, asked, quotient):
    """Either form: membership, the sorted hashes and the blob round trip equal the set's."""
    values = np.unique(np.array(kept, np.uint64))
    packed = Packed.of(values, quotient=quotient)  # (either form, whatever the size)
    assert (packed.values is None) == quotient
    assert packed.hashes().tolist() == sorted(set(kept)) and len(packed) == len(set(kept))
    again = Packed.from_bytes(packed.to_bytes())
    assert (again.values is None) == (packed.values is None)
    for digest in [*kept, *asked, 2**56, -1]:
        assert (digest in packed) == (digest in set(kept)) == (digest in again)


@pytest.mark.parametrize("quotient", [False, True])
def test_a_damaged_blob_is_refused(quotient):
    blob = Packed.of(np.array([1, 2], np.uint64), quotient=quotient).to_bytes()
    other = b"sixP" if quotient else b"sixQ"
    for bad in (blob[:-1], blob + b"\0", b"sixX" + blob[4:], other + blob[4:]):
        with pytest.raises(ValueError, match="not a packed dedup window"):
            Packed.from_bytes(bad)


def test_a_packed_table_restored_into_a_window_already_packed_keeps_both():
    seen = SeenIds()
    seen.restore(W, [id_hash("a")])
    seen.restore(W, Packed.of(np.array([id_hash("b")], np.uint64)))
    assert (W, id_hash("a")) in seen and (W, id_hash("b")) in seen and len(seen) == 2


def test_schema_2_hashes_convert_to_the_hashes_of_the_same_ids():
    ids = [f"doc-{i}" for i in range(1000)]
    assert from_v2(np.array(sorted(map(id_hash_v2, ids)), np.int64)).tolist() == sorted(map(id_hash, ids))


def test_packed_windows_are_offered_once_and_again_after_a_failed_save():
    seen = SeenIds()
    seen.add(W, 3)
    seen.add(W + 360, 1)
    seen.freeze(W + 360)
    assert {w: list(a) for w, a in seen.take_packed().items()} == {W: [3]}
    assert seen.take_packed() == {}
    seen.repack_later([W])
    assert list(seen.take_packed()) == [W]
    seen.freeze()
    seen.purge(W + 360)
    assert list(seen.take_packed()) == [W + 360]


def test_a_restore_into_a_window_already_packed_keeps_both():
    """A packed window's blob and its late rows are restored one after the other (state.py):
    the ids of both stay known."""
    seen = SeenIds()
    seen.restore(W, [id_hash("a"), id_hash("c")])
    seen.restore(W, [id_hash("b")])
    assert all((W, id_hash(i)) in seen for i in "abc")
    assert (W, id_hash("d")) not in seen and (W + 360, id_hash("a")) not in seen
    assert not seen.add(W, id_hash("a")) and seen.add(W, id_hash("d"))


def test_purging_everything_also_forgets_the_windows_waiting_to_be_saved_packed():
    seen = SeenIds()
    seen.add(W, id_hash("a"))
    seen.freeze()
    seen.purge()
    assert seen.take_packed() == {} and list(seen.windows()) == []


def test_repeated_hashes_are_kept_once_whatever_their_order():
    """A restore may repeat hashes (a blob and late rows of one window; schema 2's hashes that
    differ only in the 8 bits a 56-bit hash drops): each is kept, and counted, once."""
    seen = SeenIds()
    seen.restore(W, [9, 3, 9, 1, 3, 3])
    assert list(seen._frozen[W]) == [1, 3, 9] and len(seen) == 3
    assert from_v2(np.array([7 << 8, (5 << 8) | 1, (5 << 8) | 2, 5 << 8], np.int64)).tolist() == [5, 7]
