"""The dedup memory: which document ids each window has counted, in 8 bytes per id.

CouchDB may send a document again (a new ``_rev``, a cluster rewind) and FreeSWITCH retries a
POST, so every id counted is remembered for as long as its window is kept. At 1,000 CDRs a
second that is 86 million ids a day: kept as strings in sets they would take about 10 GiB.
Each id is kept as a 64-bit hash instead, in a set while its window is current and in a sorted
``array('q')`` once the window is past (a late CDR for it is looked up by bisection).

Two different ids share a hash with a chance of about n²/2⁶⁵ in a window of n ids: 4·10⁻⁹
for 360,000 ids (a window at 1,000 CDR/s). The cost of such a collision is one CDR counted as
a duplicate.
"""
from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

__all__ = ["SeenIds", "id_hash"]


def id_hash(doc_id: Any) -> int:
    """A stable signed 64-bit hash of an id (Python's own hash changes with every process)."""
    text = doc_id if type(doc_id) is str else str(doc_id)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8)
                          .digest(), "little", signed=True)


class SeenIds:
    """Window → the hashes of the ids counted in it."""

    def __init__(self) -> None:
        self._open: dict[int, set[int]] = {}
        self._frozen: dict[int, array] = {}
        self._packed: set[int] = set()  # windows packed since take_packed()

    def add(self, window: int, digest: int) -> bool:
        """Remember an id's hash in its window; False when it was there already."""
        current = self._open.get(window)
        if current is None:
            current = self._open[window] = set()
        elif digest in current:
            return False
        frozen = self._frozen.get(window)
        if frozen is not None:
            i = bisect_left(frozen, digest)
            if i < len(frozen) and frozen[i] == digest:
                return False
        current.add(digest)
        return True

    def freeze(self, before: int | None = None) -> None:
        """Pack the windows older than ``before`` (all when None) into sorted arrays."""
        for window in [w for w in self._open if before is None or w < before]:
            added = self._open.pop(window)
            old = self._frozen.get(window)
            self._frozen[window] = array("q", sorted(added.union(old) if old else added))
            self._packed.add(window)

    def take_packed(self) -> dict[int, array]:
        """The windows packed since the last call, for the state to save as one blob each."""
        packed = {w: self._frozen[w] for w in self._packed if w in self._frozen}
        self._packed.clear()
        return packed

    def repack_later(self, windows: Iterable[int]) -> None:
        """Windows whose blobs were not saved (a failed snapshot): offer them again."""
        self._packed.update(windows)

    def restore(self, window: int, digests: Iterable[int], *, is_sorted: bool = False) -> None:
        """Put back saved hashes of a window (before any id is added to it); a sorted
        ``array('q')`` is kept as it is, not copied."""
        old = self._frozen.get(window)
        if old is None and is_sorted and isinstance(digests, array) and digests.typecode == "q":
            self._frozen[window] = digests
        else:
            self._frozen[window] = array("q", sorted(chain(old, digests) if old else digests))

    def purge(self, before: int | None = None) -> None:
        """Forget the windows older than ``before`` (all when None)."""
        for table in (self._open, self._frozen):
            for window in [w for w in table if before is None or w < before]:
                del table[window]
        self._packed = {w for w in self._packed if before is not None and w >= before}

    def windows(self) -> Iterator[int]:
        return iter(sorted(set(self._open) | set(self._frozen)))

    def __len__(self) -> int:
        return sum(map(len, self._open.values())) + sum(map(len, self._frozen.values()))

    def __contains__(self, item: tuple[int, int]) -> bool:
        window, digest = item
        if digest in self._open.get(window, ()):
            return True
        frozen = self._frozen.get(window)
        if frozen is None:
            return False
        i = bisect_left(frozen, digest)
        return i < len(frozen) and frozen[i] == digest

