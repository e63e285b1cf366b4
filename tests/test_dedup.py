"""The dedup memory: a set per open window, sorted 8-byte hashes once frozen."""
from __future__ import annotations

from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from sixminutes.dedup import SeenIds, id_hash

W = 1_700_000_000 - 1_700_000_000 % 360


def test_id_hash_is_stable_signed_64_bit_and_tells_ids_apart():
    assert id_hash("a") == 3405396810240292928  # the same in every process and release
    values = {id_hash(f"uuid-{i}") for i in range(10_000)}
    assert len(values) == 10_000
    assert all(-2**63 <= v < 2**63 for v in values)
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
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-3, 3), st.booleans()), max_size=80))
def test_add_answers_as_a_set_of_window_and_hash_whatever_is_frozen_when(ops):
    """Freezing at any moment never changes what counts as already seen."""
    seen, reference = SeenIds(), set()
    for n, digest, freeze in ops:
        window = W + 360 * n
        assert seen.add(window, digest) == ((window, digest) not in reference)
        reference.add((window, digest))
        if freeze:
            seen.freeze(window)
    assert len(seen) == len(reference)
    assert all(item in seen for item in reference)


def test_restore_then_add_and_purge():
    seen = SeenIds()
    seen.restore(W, array("q", [5, -3, 9]))
    assert not seen.add(W, -3) and seen.add(W, 4)
    seen.restore(W + 360, [1])
    seen.purge(W + 360)
    assert list(seen.windows()) == [W + 360] and seen.add(W, 5)


def test_a_frozen_id_takes_8_bytes():
    seen = SeenIds()
    for i in range(100_000):
        seen.add(W, id_hash(f"id-{i}"))
    seen.freeze()
    packed = seen._frozen[W]
    assert packed.itemsize == 8 and len(packed) == 100_000
    assert list(packed) == sorted(packed)


def test_restore_keeps_a_sorted_array_as_it_is():
    packed = array("q", [-5, 1, 7])
    seen = SeenIds()
    seen.restore(W, packed, is_sorted=True)
    assert seen._frozen[W] is packed and not seen.add(W, 7)


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
