"""Window → series key → Stat, compact enough to hold 24 hours of every carrier and account.

Each window keeps its Stats packed five doubles apiece in one ``array('d')``, found
through a dict from series key to offset. Keys are shared between windows and the
offsets are shared int objects, so a (window, series) cell costs a dict entry plus
40 bytes (``bench/engine.py`` prints the figure).
"""
from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator

from .stats import Stat, parse_series_key

__all__ = ["Store"]

_OFFSETS: list[int] = list(range(0, 5 * 4096, 5))
_PARSED: dict[str, tuple[str, dict[str, str]]] = {}


def _offset(n: int) -> int:
    """The shared int object for the n-th cell's offset (ints above 256 are not cached by Python)."""
    while n >= len(_OFFSETS):
        _OFFSETS.extend(range(5 * len(_OFFSETS), 10 * len(_OFFSETS), 5))
    return _OFFSETS[n]


class _Window:
    __slots__ = ("offsets", "values")

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}
        self.values = array("d")

    def add(self, key: str, value: float) -> None:
        i = self.offsets.get(key)
        values = self.values
        if i is None:
            self.offsets[key] = _offset(len(self.offsets))
            values.extend((value, 1.0, value * value, value, value))
            return
        values[i] += value
        values[i + 1] += 1.0
        values[i + 2] += value * value
        if value < values[i + 3]:
            values[i + 3] = value
        if value > values[i + 4]:
            values[i + 4] = value

    def merge(self, key: str, stat: Stat) -> None:
        i = self.offsets.get(key)
        if i is None:
            self.offsets[sys.intern(key)] = _offset(len(self.offsets))
            self.values.extend((stat.sum, float(stat.count), stat.squares, stat.min, stat.max))
            return
        merged = self.stat(i).merge(stat)
        self.values[i : i + 5] = array(
            "d", (merged.sum, float(merged.count), merged.squares, merged.min, merged.max)
        )

    def sum_count(self, key: str) -> tuple[float, int]:
        """Sum and count of a series, (0, 0) when absent: what threshold rules need, cheaply."""
        i = self.offsets.get(key)
        if i is None:
            return 0.0, 0
        return self.values[i], int(self.values[i + 1])

    def stat(self, i: int) -> Stat:
        s, count, squares, low, high = self.values[i : i + 5]
        return Stat(s, int(count), squares, low, high)


class Store:
    """All windows kept, each mapping series keys to Stats."""

    def __init__(self) -> None:
        self._windows: dict[int, _Window] = {}

    def add(self, window: int, key: str, value: float) -> None:
        """Count one value into a series of a window."""
        self.window(window).add(key, value)

    def window(self, window: int) -> _Window:
        """The cells of one window, created when first needed; ``.add(key, value)`` counts."""
        w = self._windows.get(window)
        if w is None:
            w = self._windows[window] = _Window()
        return w

    def merge(self, window: int, key: str, stat: Stat) -> None:
        """Fold a whole Stat into a series of a window (restore, combine)."""
        self.window(window).merge(key, stat)

    def get(self, window: int, key: str) -> Stat | None:
        w = self._windows.get(window)
        if w is None:
            return None
        i = w.offsets.get(key)
        return None if i is None else w.stat(i)

    def windows(self) -> list[int]:
        """The windows held, oldest first."""
        return sorted(self._windows)

    @property
    def cells(self) -> int:
        """How many (window, series) Stats are held."""
        return sum(len(w.offsets) for w in self._windows.values())

    def purge(self, before: int | None = None) -> list[int]:
        """Drop the windows older than ``before`` (all when None); return those dropped."""
        dropped = [t for t in self._windows if before is None or t < before]
        for t in dropped:
            del self._windows[t]
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
            w = self._windows[t]
            for key, i in w.offsets.items():
                if (wanted is not None or labels) and not _matches(key, wanted, labels):
                    continue
                yield t, key, w.stat(i)

    def to_json(
        self,
        start: int | None = None,
        end: int | None = None,
        names: Iterable[str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, dict[str, dict]]:
        """The seed's /6minutes/data document: ``{"<window>": {"<series>": Stat}}``."""
        data: dict[str, dict[str, dict]] = {}
        for t, key, stat in self.items(start, end, names, labels):
            data.setdefault(str(t), {})[key] = stat.to_json()
        return data


def _matches(key: str, names: set[str] | None, labels: dict[str, str] | None) -> bool:
    parsed = _PARSED.get(key)
    if parsed is None:
        if len(_PARSED) > 1_000_000:
            _PARSED.clear()
        parsed = _PARSED[key] = parse_series_key(key)
    name, have = parsed
    if names is not None and name not in names:
        return False
    return not labels or all(have.get(k) == v for k, v in labels.items())
