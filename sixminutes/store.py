"""Window → series key → Stat, counted a batch at a time and compact to keep for 24 hours.

A window's Stats are rows of one table, five doubles apiece (``sum, count, squares,
min, max``), found through a dict from series key to row: a batch of CDRs is folded in
with a few numpy calls over the rows it touches (:mod:`sixminutes.series`): a cell costs
a dict entry plus 40 bytes while its window is counted. One CDR at a time (a live source's
small batches, a per-CDR plugin), Python updates a five-item list in ``live`` faster; the
lists are folded into the table when a batch reaches their keys, or when the window is
compacted. A compacted window is frozen (:mod:`sixminutes.frozen`: key ids shared by the
windows, a counter's Stat as its count; ``bench/engine.py`` prints the bytes a cell), read
as it is, and turned back into ``Cells`` by a write.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import orjson

try:
    from ._cellsjson import cells_json
except ImportError:  # built without a C compiler: write_json() serializes the dicts
    cells_json = None

from .frozen import FrozenCells, KeyIds
from .occupancy import Occupancy
from .stats import Stat, key_matches

__all__ = ["Cells", "Store"]

_ROWS: list[int] = list(range(4096))
_EMPTY_ROW = (0.0, 0.0, 0.0, np.inf, -np.inf)


def _row_ints(n: int) -> list[int]:
    """Shared int objects for rows up to n (Python caches no int above 256): a row number
    kept in a dict then costs no object of its own."""
    while n >= len(_ROWS):
        _ROWS.extend(range(len(_ROWS), 2 * len(_ROWS)))
    return _ROWS


class Cells:
    """The Stats of one window: rows of ``table`` found through ``offsets``, plus the live lists.

    A key is in ``offsets`` or in ``live``, never both. ``changed`` holds the keys updated
    since the owner last drained it (live events, snapshots); restoring with :meth:`merge`
    does not mark anything changed.
    """

    __slots__ = ("live", "offsets", "table", "size", "changed")

    def __init__(self) -> None:
        self.live: dict[str, list] = {}
        self.offsets: dict[str, int] = {}
        self.table = np.empty((0, 5))
        self.size = 0
        self.changed: set[str] = set()

    def __getstate__(self) -> tuple:
        """Pickled (a replay's share) without the table's spare rows."""
        return self.live, self.offsets, self.table[:self.size], self.size, self.changed

    def __setstate__(self, state: tuple) -> None:
        self.live, self.offsets, self.table, self.size, self.changed = state

    def rows(self, keys: list[str]) -> list[int]:
        """The table row of each key: a live list is folded in, a new key gets an empty row."""
        offsets = self.offsets
        rows = [offsets.get(key) for key in keys]
        if None not in rows:
            return rows
        missing = [i for i, row in enumerate(rows) if row is None]
        start = self.size
        self._reserve(len(missing))
        shared = _row_ints(start + len(missing))
        live = self.live
        folded = []
        n = start
        for i in missing:
            key = keys[i]
            row = offsets.get(key)  # (a key asked for twice)
            if row is None:
                row = offsets[key] = shared[n]
                n += 1
                if live and key in live:
                    folded.append((row, live.pop(key)))
            rows[i] = row
        table = self.table
        table[start:n] = _EMPTY_ROW  # (the new rows are consecutive: one assignment)
        for row, cell in folded:
            table[row] = cell
        self.size = n
        return rows

    def _reserve(self, more: int) -> None:
        need = self.size + more
        if need > len(self.table):
            table = np.empty((max(need, 2 * len(self.table), 16), 5))
            table[:self.size] = self.table[:self.size]
            self.table = table

    def add(self, key: str, value: float) -> None:
        """Count one value; callers on the hot path update ``live[key]`` themselves first."""
        self.changed.add(key)
        cell = self.live.get(key)
        if cell is not None:
            cell[0] += value
            cell[1] += 1
            cell[2] += value * value
            if value < cell[3]:
                cell[3] = value
            elif value > cell[4]:
                cell[4] = value
            return
        i = self.offsets.get(key)
        if i is None:
            self.live[key] = [value, 1, value * value, value, value]
            return
        s, count, squares, low, high = self.table[i].tolist()
        self.table[i] = (s + value, count + 1.0, squares + value * value,
                         value if value < low else low, value if value > high else high)

    def put(self, key: str, row: tuple[float, float, float, float, float]) -> None:
        """Replace a cell's Stat (one computed whole, as ``peak_concurrent``'s)."""
        self.changed.add(key)
        cell = self.live.get(key)
        if cell is not None:
            cell[:] = row
            return
        i = self.offsets.get(key)
        if i is None:
            self.live[key] = list(row)
        else:
            self.table[i] = row

    def stat_row(self, key: str) -> tuple[float, int, float, float, float] | None:
        """A cell as (sum, count, squares, min, max), or None when it holds nothing yet."""
        cell = self.live.get(key)
        if cell is not None:
            return cell[0], cell[1], cell[2], cell[3], cell[4]
        i = self.offsets.get(key)
        if i is None:
            return None
        s, count, squares, low, high = self.table[i].tolist()
        return s, int(count), squares, low, high

    def merge(self, key: str, stat: Stat) -> None:
        current = self.get(key)
        merged = stat if current is None else current.merge(stat)
        i = self.offsets.get(key)
        if i is not None:
            self.table[i] = _row(merged)
        else:
            self.live[sys.intern(key)] = [merged.sum, merged.count, merged.squares,
                                          merged.min, merged.max]

    def absorb(self, other: Cells) -> None:
        """Merge another window's cells into these, each as :meth:`merge` would (the shares of
        a parallel replay), a table at a time: a share holds ~100,000 cells."""
        keys, theirs = other.rows_table()
        if not keys:
            return
        self.rows(list(self.live))  # (folded first: a row past ``old`` is then a new cell)
        self.live = {}
        old = self.size
        rows = np.array(self.rows(keys), np.intp)
        table = self.table
        new = rows >= old
        table[rows[new]] = theirs[new]
        rows, theirs = rows[~new], theirs[~new]
        mine = table[rows]
        mine[:, :3] += theirs[:, :3]
        # as Stat.merge's min() and max(): the first operand unless the second is beyond it
        mine[:, 3] = np.where(theirs[:, 3] < mine[:, 3], theirs[:, 3], mine[:, 3])
        mine[:, 4] = np.where(theirs[:, 4] > mine[:, 4], theirs[:, 4], mine[:, 4])
        table[rows] = mine

    def get(self, key: str) -> Stat | None:
        row = self.stat_row(key)
        if row is None:
            return None
        s, count, squares, low, high = row
        return Stat(float(s), count, float(squares), float(low), float(high))

    def sum_count(self, key: str) -> tuple[float, int]:
        """Sum and count of a series, (0, 0) when absent: what threshold rules need, cheaply."""
        cell = self.live.get(key)
        if cell is not None:
            return cell[0], cell[1]
        i = self.offsets.get(key)
        if i is None:
            return 0.0, 0
        return float(self.table[i, 0]), int(self.table[i, 1])

    def keys(self) -> list[str]:
        return [*self.offsets, *self.live]

    def __len__(self) -> int:
        return len(self.offsets) + len(self.live)

    def rows_table(self) -> tuple[list[str], np.ndarray]:
        """Every key, and its Stat as a row of five doubles, in that order."""
        table = self.table[:self.size]
        if self.live:
            table = np.concatenate([table, np.array([*self.live.values()], np.float64)])
        return [*self.offsets, *self.live], table


def _thawed(frozen: FrozenCells) -> Cells:
    """A frozen window's cells as ``Cells`` again, to write to."""
    cells = Cells()
    keys, table = frozen.rows_table()
    cells.offsets = dict(zip(keys, _row_ints(len(keys))))
    cells.table, cells.size, cells.changed = table, len(keys), frozen.changed
    return cells


def _row(stat: Stat) -> tuple[float, float, float, float, float]:
    return (stat.sum, float(stat.count), stat.squares, stat.min, stat.max)


class Store:
    """All windows kept, each mapping series keys to Stats."""

    def __init__(self) -> None:
        self._windows: dict[int, Cells | FrozenCells] = {}
        self._keys = KeyIds()
        """The series keys of the frozen windows (:mod:`sixminutes.frozen`)."""
        self._touched: set[int] = set()
        self.occupancy = Occupancy()
        """Calls in progress per second of the recent windows (:mod:`sixminutes.occupancy`)."""
        self.track_changes = False
        """Set by a consumer of :meth:`drain_changes`; otherwise compaction forgets the changes."""
        self.freezes = True
        """Whether :meth:`compact` freezes windows; a replay's store does not (it lives for one
        run, and its windows are joined and written out once: freezing them cost more)."""

    def window(self, window: int) -> Cells:
        """The cells of one window to write to, created when first needed, thawed when
        frozen (and then watched for changes)."""
        self._touched.add(window)
        return self._thaw(window)

    def _thaw(self, window: int) -> Cells:
        """A window's cells as ``Cells`` (new ones when it has none), without watching it."""
        cells = self._windows.get(window)
        if type(cells) is Cells:
            return cells
        thawed = self._windows[window] = Cells() if cells is None else _thawed(cells)
        return thawed

    def peek(self, window: int) -> Cells | FrozenCells | None:
        """The cells of a window if it exists, to read, without creating or watching it."""
        return self._windows.get(window)

    def drain_changes(self) -> dict[int, set[str]]:
        """The keys updated per window since the last drain; the record starts afresh."""
        changes = {}
        for t in self._touched:
            cells = self._windows.get(t)
            if cells is not None and cells.changed:
                changes[t], cells.changed = cells.changed, set()
        self._touched = set()
        return changes

    def replace(self, window: int, keys: list[str], table: np.ndarray) -> None:
        """Set a window's Stats wholesale (a group's merged view: :mod:`sixminutes.group`),
        marking changed the keys whose Stat is new or differs."""
        old = self._windows.get(window)
        cells = Cells()
        cells.offsets = dict(zip(map(sys.intern, keys), _row_ints(len(keys))))
        cells.table = np.array(table, dtype=np.float64).reshape(-1, 5)
        cells.size = len(keys)
        if old is None:
            cells.changed = set(cells.offsets)
        else:
            old_keys, old_table = old.rows_table()
            before = dict(zip(old_keys, range(len(old_keys))))
            at = np.fromiter((before.get(key, -1) for key in keys), np.intp, len(keys))
            same = at >= 0
            same[same] = (old_table[at[same]] == cells.table[same]).all(axis=1)
            cells.changed = old.changed | {key for key, kept in zip(keys, same.tolist()) if not kept}
        self._windows[window] = cells
        self._touched.add(window)

    def add(self, window: int, key: str, value: float) -> None:
        """Count one value into a series of a window."""
        self.window(window).add(key, value)

    def merge(self, window: int, key: str, stat: Stat) -> None:
        """Fold a whole Stat into a series of a window (restore, combine)."""
        self.window(window).merge(key, stat)

    def absorb(self, other: Store) -> None:
        """Take in another store's windows: whole when this one has none of it (the shares
        of a parallel replay hold different windows), else cell by cell."""
        for t, cells in other._windows.items():
            mine = self._windows.get(t)
            if mine is None:
                self._windows[t] = cells if type(cells) is Cells else \
                    FrozenCells(self._keys, *cells.rows_table(), cells.changed)  # (our key ids)
            else:
                mine = self._thaw(t)
                if len(mine) < len(cells):  # the smaller into the larger: the same Stats
                    theirs = cells if type(cells) is Cells else _thawed(cells)
                    theirs.absorb(mine)
                    theirs.changed |= mine.changed
                    self._windows[t] = theirs
                else:
                    mine.absorb(cells)
        self.occupancy.absorb(other.occupancy, self)

    def get(self, window: int, key: str) -> Stat | None:
        cells = self._windows.get(window)
        return None if cells is None else cells.get(key)

    def windows(self) -> list[int]:
        """The windows held, oldest first."""
        return sorted(self._windows)

    @property
    def cells(self) -> int:
        """How many (window, series) Stats are held."""
        return sum(len(w) for w in self._windows.values())

    def compact(self, before: int | None = None) -> None:
        """Pack the windows older than ``before`` (all when None) into their compact form."""
        if not self.freezes:
            return
        for t, cells in self._windows.items():
            if type(cells) is Cells and (before is None or t < before):
                if not self.track_changes:
                    cells.changed.clear()
                self._windows[t] = FrozenCells(self._keys, *cells.rows_table(), cells.changed)

    def purge(self, before: int | None = None) -> list[int]:
        """Drop the windows older than ``before`` (all when None); return those dropped."""
        dropped = [t for t in self._windows if before is None or t < before]
        for t in dropped:
            del self._windows[t]
        if len(self._keys) > 2 * self._keys.kept + 4096:  # (keys of the windows dropped)
            self._keys.collect([c for c in self._windows.values() if type(c) is FrozenCells])
        self.occupancy.forget(before)
        self._touched.difference_update(dropped)
        return sorted(dropped)

    def items(
        self,
        start: int | None = None,
        end: int | None = None,
        names: Iterable[str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> Iterator[tuple[int, str, Stat]]:
        """(window, key, Stat) for windows in [start, end] and series matching the filters.

        ``names`` keeps the series with one of those names; ``labels`` keeps the series
        that carry every given label with that exact value.
        """
        wanted = set(names) if names is not None else None
        for t in sorted(self._windows):
            if (start is not None and t < start) or (end is not None and t > end):
                continue
            keys, table = self._windows[t].rows_table()
            numbers = iter(table.ravel().tolist())
            for key, total, count, squares, low, high in zip(keys, *[numbers] * 5):
                if (wanted is not None or labels) and not key_matches(key, wanted, labels):
                    continue
                yield t, key, Stat(total, int(count), squares, low, high)

    def to_json(
        self,
        start: int | None = None,
        end: int | None = None,
        names: Iterable[str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, dict[str, dict]]:
        """The seed's /6minutes/data document: ``{"<window>": {"<series>": Stat}}``.

        Written straight from the cells (a replay's --json holds hundreds of thousands)."""
        wanted = set(names) if names is not None else None
        data: dict[str, dict[str, dict]] = {}
        for t in sorted(self._windows):
            if (start is not None and t < start) or (end is not None and t > end):
                continue
            keys, table = self._windows[t].rows_table()
            if not keys:
                continue
            numbers = iter(_plain(table.ravel()))
            out = {}
            for key, total, count, squares, low, high in zip(keys, *[numbers] * 5):
                if (wanted is not None or labels) and not key_matches(key, wanted, labels):
                    continue
                out[key] = {"sum": total, "count": count, "squares": squares, "min": low, "max": high}
            if out:
                data[str(t)] = out
        return data


    def write_json(self, write: Callable[[bytes], object]) -> None:
        """:meth:`to_json` of the whole store serialized into ``write`` a window at a time,
        from the tables in C (``_cellsjson.c``); the same JSON values as orjson's."""
        separator = b"{"
        for t in sorted(self._windows):
            keys, table = self._windows[t].rows_table()
            if keys:
                cells = (cells_json(keys, np.ascontiguousarray(table)) if cells_json is not None
                         else orjson.dumps(self.to_json(t, t)[str(t)]))  # (no C compiler)
                write(b'%s"%d":%s' % (separator, t, cells))
                separator = b","
        write(b"{}" if separator == b"{" else b"}")


def _plain(values: np.ndarray) -> list[float | int]:
    """The values as Python numbers, integral ones as ints (as :meth:`Stat.to_json` writes
    them), converted in C: a replay's --json holds hundreds of thousands of Stats."""
    integral = (np.trunc(values) == values) & (np.abs(values) < 2.0**53)
    out = values.astype(object)
    out[integral] = values[integral].astype(np.int64).astype(object)
    return out.tolist()

