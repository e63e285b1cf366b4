"""A compacted window's Stats, in about a third of the memory of a window being counted.

Once the data has left a window behind (:meth:`sixminutes.store.Store.compact`), its cells
are read, rarely written. A window being counted finds a cell's table row through a dict of
its own (key → row, ~30 bytes a cell beside the row's 40); 240 windows hold mostly the same
series keys. A frozen window keeps instead, in order of key id:

- the key ids of its cells, int32, from one :class:`KeyIds` registry per Store (a key held
  by 240 windows is one string and one dict entry);
- a *counter*'s Stat (every value 1: ``calls``, ``sip_status``, ``account_calls`` ...) as
  its count alone, a uint32: ``sum == squares == count`` and ``min == max == 1`` are implied;
- any other cell's Stat as its row of five doubles.

So a counter costs 8 bytes and another cell 44. Every Stat reads back bit for bit; a write
to a frozen window first turns it back into a window being counted (``Store.window``).
"""
from __future__ import annotations

from array import array
from bisect import bisect_left

import numpy as np

from .stats import Stat

__all__ = ["FrozenCells", "KeyIds"]

_MAX_COUNT = 2**32 - 1


class KeyIds:
    """Series key ↔ int id, shared by the frozen windows of one Store."""

    __slots__ = ("ids", "keys", "kept")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.keys: list[str] = []
        self.kept = 0
        """How many keys the last :meth:`collect` kept."""

    def __len__(self) -> int:
        return len(self.keys)

    def of(self, keys: list[str]) -> np.ndarray:
        """The ids of these keys (int32), new keys getting the next ids."""
        ids = self.ids
        found = [ids.get(key) for key in keys]
        if None in found:
            for i, key in enumerate(keys):
                if found[i] is None:
                    found[i] = ids.get(key)
                    if found[i] is None:
                        found[i] = ids[key] = len(self.keys)
                        self.keys.append(key)
        return np.array(found, np.int32)

    def collect(self, windows: list[FrozenCells]) -> None:
        """Forget the keys none of these windows (all the frozen ones) holds: the series of
        purged windows. Ids are renumbered in their order, so each window's stay sorted."""
        used = np.zeros(len(self.keys), np.bool_)
        for cells in windows:
            used[cells.ids()] = True
        self.kept = int(used.sum())
        if self.kept == len(self.keys):
            return
        renumbered = (np.cumsum(used) - 1).astype(np.int32)
        self.keys = [key for key, kept in zip(self.keys, used.tolist()) if kept]
        self.ids = dict(zip(self.keys, range(len(self.keys))))
        for cells in windows:
            cells.full_ids = _ints(renumbered[np.frombuffer(cells.full_ids, np.int32)])
            cells.counter_ids = _ints(renumbered[np.frombuffer(cells.counter_ids, np.int32)])


def _ints(values: np.ndarray, typecode: str = "i") -> array:
    """An array of C ints: bisection on it costs no numpy scalar per step."""
    out = array(typecode)
    out.frombytes(np.ascontiguousarray(values, np.int32 if typecode == "i" else np.uint32).tobytes())
    return out


class FrozenCells:
    """The Stats of a compacted window: the read side of :class:`~sixminutes.store.Cells`."""

    __slots__ = ("registry", "full_ids", "table", "counter_ids", "counts", "changed")

    def __init__(self, registry: KeyIds, keys: list[str], table: np.ndarray,
                 changed: set[str] | None = None) -> None:
        """A window's cells frozen from its keys and their rows (``Cells.rows_table()``)."""
        self.registry = registry
        self.changed: set[str] = set() if changed is None else changed
        ids = registry.of(keys)
        order = np.argsort(ids, kind="stable")
        ids, table = ids[order], np.asarray(table, np.float64).reshape(-1, 5)[order]
        count = table[:, 1]
        counter = ((count >= 1) & (count <= _MAX_COUNT) & (np.floor(count) == count)
                   & (table[:, 0] == count) & (table[:, 2] == count)
                   & (table[:, 3] == 1) & (table[:, 4] == 1))
        self.counter_ids = _ints(ids[counter])
        self.counts = _ints(count[counter], "I")
        self.full_ids = _ints(ids[~counter])
        self.table = np.ascontiguousarray(table[~counter])

    def _find(self, key: str) -> tuple[bool, int] | None:
        """(a counter?, its position) of a key, None when the window does not hold it."""
        i = self.registry.ids.get(key)
        if i is None:
            return None
        for counter, ids in ((True, self.counter_ids), (False, self.full_ids)):
            at = bisect_left(ids, i)
            if at < len(ids) and ids[at] == i:
                return counter, at
        return None

    def stat_row(self, key: str) -> tuple[float, int, float, float, float] | None:
        """A cell as (sum, count, squares, min, max), or None when it holds nothing."""
        found = self._find(key)
        if found is None:
            return None
        counter, at = found
        if counter:
            n = self.counts[at]
            return float(n), n, float(n), 1.0, 1.0
        s, count, squares, low, high = self.table[at].tolist()
        return s, int(count), squares, low, high

    def get(self, key: str) -> Stat | None:
        row = self.stat_row(key)
        return None if row is None else Stat(row[0], row[1], row[2], row[3], row[4])

    def sum_count(self, key: str) -> tuple[float, int]:
        """Sum and count of a series, (0, 0) when absent."""
        row = self.stat_row(key)
        return (0.0, 0) if row is None else (row[0], row[1])

    def ids(self) -> np.ndarray:
        """The key ids of its cells, in the order of :meth:`rows_table`."""
        return np.sort(np.concatenate([np.frombuffer(self.full_ids, np.int32),
                                       np.frombuffer(self.counter_ids, np.int32)]), kind="stable")

    def keys(self) -> list[str]:
        names = self.registry.keys
        return [names[i] for i in self.ids().tolist()]

    def __len__(self) -> int:
        return len(self.full_ids) + len(self.counter_ids)

    def rows_table(self) -> tuple[list[str], np.ndarray]:
        """Every key, and its Stat as a row of five doubles (a new table), in key id order."""
        full = np.frombuffer(self.full_ids, np.int32)
        ids = np.concatenate([full, np.frombuffer(self.counter_ids, np.int32)])
        table = np.empty((len(ids), 5))
        table[:len(full)] = self.table
        counts = np.frombuffer(self.counts, np.uint32)
        table[len(full):, :3] = counts[:, None]
        table[len(full):, 3:] = 1.0
        order = np.argsort(ids, kind="stable")
        names = self.registry.keys
        return [names[i] for i in ids[order].tolist()], table[order]

    @property
    def nbytes(self) -> int:
        """The bytes of its arrays."""
        return (self.table.nbytes + sum(a.itemsize * len(a) for a in
                                        (self.full_ids, self.counter_ids, self.counts)))
