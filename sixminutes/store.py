"""Window → series key → Stat, fast to update now and compact to keep for 24 hours.

A window being filled holds each Stat as a five-item list ``[sum, count, squares,
min, max]``, which Python updates quickly. Once the engine has moved on, the window
is compacted: its Stats are packed five doubles apiece into one ``array('d')``,
found through a dict from series key to offset, so a kept (window, series) cell
costs a dict entry plus 40 bytes (``bench/engine.py`` prints the figure). A late CDR
still updates a compacted window, through the slower packed path.
"""
from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator

import numpy as np

from .stats import SeriesKeyError, Stat, parsed_key

__all__ = ["Store"]

_OFFSETS: list[int] = list(range(0, 5 * 4096, 5))


def _offset(n: int) -> int:
    """The shared int object for the n-th packed Stat (Python caches no int above 256)."""
    while n >= len(_OFFSETS):
        _OFFSETS.extend(range(5 * len(_OFFSETS), 10 * len(_OFFSETS), 5))
    return _OFFSETS[n]


class Cells:
    """The Stats of one window: live lists in ``live``, packed ones in ``offsets``/``values``.

    ``changed`` holds the keys updated since the owner last drained it (live events,
    snapshots); restoring with :meth:`merge` does not mark anything changed.
    """

    __slots__ = ("live", "offsets", "values", "changed")

    def __init__(self) -> None:
        self.live: dict[str, list] = {}
        self.offsets: dict[str, int] = {}
        self.values = array("d")
        self.changed: set[str] = set()

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
        values = self.values
        values[i] += value
        values[i + 1] += 1.0
        values[i + 2] += value * value
        if value < values[i + 3]:
            values[i + 3] = value
        if value > values[i + 4]:
            values[i + 4] = value

    def add_stat(self, key: str, total: float, count: int, squares: float, low: float,
                 high: float) -> None:
        """Fold a batch's Stat of a series into its cell (exact for the counts a batch adds)."""
        self.changed.add(key)
        cell = self.live.get(key)
        if cell is None:
            i = self.offsets.get(key)
            if i is None:
                self.live[key] = [total, count, squares, low, high]
                return
            values = self.values
            cell = [values[i], int(values[i + 1]), values[i + 2], values[i + 3], values[i + 4]]
            cell[0] += total
            cell[1] += count
            cell[2] += squares
            values[i:i + 5] = array("d", (cell[0], float(cell[1]), cell[2],
                                          min(cell[3], low), max(cell[4], high)))
            return
        cell[0] += total
        cell[1] += count
        cell[2] += squares
        if low < cell[3]:
            cell[3] = low
        if high > cell[4]:
            cell[4] = high

    def stat_row(self, key: str) -> tuple[float, int, float, float, float] | None:
        """A cell as (sum, count, squares, min, max), or None when it holds nothing yet."""
        cell = self.live.get(key)
        if cell is not None:
            return cell[0], cell[1], cell[2], cell[3], cell[4]
        i = self.offsets.get(key)
        if i is None:
            return None
        s, count, squares, low, high = self.values[i:i + 5]
        return s, int(count), squares, low, high

    def set_stat(self, key: str, total: float, count: int, squares: float, low: float,
                 high: float) -> None:
        """Replace a cell's Stat (one computed from it and a batch's values)."""
        self.changed.add(key)
        i = self.offsets.get(key)
        if i is not None:
            self.values[i:i + 5] = array("d", (total, float(count), squares, low, high))
            return
        cell = self.live.get(key)
        if cell is None:
            self.live[key] = [total, count, squares, low, high]
        else:
            cell[:] = (total, count, squares, low, high)

    def merge(self, key: str, stat: Stat) -> None:
        current = self.get(key)
        merged = stat if current is None else current.merge(stat)
        i = self.offsets.get(key)
        if i is not None:
            self.values[i : i + 5] = array("d", _row(merged))
        else:
            self.live[sys.intern(key)] = [merged.sum, merged.count, merged.squares,
                                          merged.min, merged.max]

    def get(self, key: str) -> Stat | None:
        cell = self.live.get(key)
        if cell is not None:
            return Stat(float(cell[0]), cell[1], float(cell[2]), float(cell[3]), float(cell[4]))
        i = self.offsets.get(key)
        if i is None:
            return None
        s, count, squares, low, high = self.values[i : i + 5]
        return Stat(s, int(count), squares, low, high)

    def sum_count(self, key: str) -> tuple[float, int]:
        """Sum and count of a series, (0, 0) when absent: what threshold rules need, cheaply."""
        cell = self.live.get(key)
        if cell is not None:
            return cell[0], cell[1]
        i = self.offsets.get(key)
        if i is None:
            return 0.0, 0
        return self.values[i], int(self.values[i + 1])

    def keys(self) -> list[str]:
        return [*self.offsets, *self.live]

    def __len__(self) -> int:
        return len(self.offsets) + len(self.live)

    def compact(self) -> None:
        """Pack the live Stats into the array: slower to update, a third of the memory."""
        live = self.live
        if not live:
            return
        start = len(self.offsets)
        _offset(start + len(live))  # make sure the shared offsets exist
        self.offsets.update(zip(live, _OFFSETS[start:start + len(live)]))
        append = self.values.fromlist  # per cell: twice as fast as extend() over a chain
        for cell in live.values():
            append(cell)
        self.live = {}


def _row(stat: Stat) -> tuple[float, float, float, float, float]:
    return (stat.sum, float(stat.count), stat.squares, stat.min, stat.max)


class Store:
    """All windows kept, each mapping series keys to Stats."""

    def __init__(self) -> None:
        self._windows: dict[int, Cells] = {}
        self._touched: set[int] = set()
        self.track_changes = False
        """Set by a consumer of :meth:`drain_changes`; otherwise compaction forgets the changes."""

    def window(self, window: int) -> Cells:
        """The cells of one window, created when first needed (and then watched for changes)."""
        self._touched.add(window)
        cells = self._windows.get(window)
        if cells is None:
            cells = self._windows[window] = Cells()
        return cells

    def peek(self, window: int) -> Cells | None:
        """The cells of a window if it exists, without creating or watching it."""
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
                self._windows[t] = cells
                continue
            for key in cells.keys():
                stat = cells.get(key)
                assert stat is not None
                mine.merge(key, stat)

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
        for t, cells in self._windows.items():
            if before is None or t < before:
                cells.compact()
                if not self.track_changes:
                    cells.changed.clear()

    def purge(self, before: int | None = None) -> list[int]:
        """Drop the windows older than ``before`` (all when None); return those dropped."""
        dropped = [t for t in self._windows if before is None or t < before]
        for t in dropped:
            del self._windows[t]
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
            cells = self._windows[t]
            for key in cells.keys():
                if (wanted is not None or labels) and not _matches(key, wanted, labels):
                    continue
                stat = cells.get(key)
                assert stat is not None
                yield t, key, stat

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
            cells = self._windows[t]
            keys = [*cells.offsets, *cells.live]
            if not keys:
                continue
            table = np.frombuffer(cells.values, np.float64)[[i + j for i in cells.offsets.values()
                                                             for j in range(5)]]
            if cells.live:
                table = np.concatenate([table, np.array([*cells.live.values()], np.float64).ravel()])
            numbers = iter(_plain(table))
            out = {}
            for key, total, count, squares, low, high in zip(keys, *[numbers] * 5):
                if (wanted is not None or labels) and not _matches(key, wanted, labels):
                    continue
                out[key] = {"sum": total, "count": count, "squares": squares, "min": low, "max": high}
            if out:
                data[str(t)] = out
        return data


def _plain(values: np.ndarray) -> list[float | int]:
    """The values as Python numbers, integral ones as ints (as :meth:`Stat.to_json` writes
    them), converted in C: a replay's --json holds hundreds of thousands of Stats."""
    integral = (np.trunc(values) == values) & (np.abs(values) < 2.0**53)
    out = values.astype(object)
    out[integral] = values[integral].astype(np.int64).astype(object)
    return out.tolist()


def _matches(key: str, names: set[str] | None, labels: dict[str, str] | None) -> bool:
    try:
        name, have = parsed_key(key)
    except SeriesKeyError:  # restored from an older state file, say: never matches a filter
        return False
    if names is not None and name not in names:
        return False
    return not labels or all(have.get(k) == v for k, v in labels.items())
