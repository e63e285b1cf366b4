"""The hourly history of the baselines: the windows the live service purges, folded into
hours and kept eight days (:mod:`sixminutes.baselines` reads it; the snapshots save it).

No I/O: :meth:`History.take` hands a snapshot what changed, :meth:`History.restore` takes
back what a state file held.
"""
from __future__ import annotations

from typing import Iterable

from .windows import WINDOW

__all__ = ["History", "DAY", "HOUR", "HISTORY_DAYS", "HISTORY_SERIES", "SLOTS", "ALL"]

DAY = 86400
HOUR = 3600
HISTORY_DAYS = 8
ALL = 2**62
"""A cut-off after every hour: the history forgotten whole."""
SLOTS = HOUR // WINDOW
"""The windows of an hour: a bit each in the history."""
ALL_SLOTS = (1 << SLOTS) - 1
HISTORY_SERIES = ("calls", "answered", "account_calls", "destination_calls")
"""The count series the hourly history keeps (what baselines and the traffic rules read)."""


class History:
    """Hour → series key → calls: the coarse history of the windows the store has purged.

    Beside each hour's calls it keeps which of the hour's ten windows were folded, and per
    key which of them had calls (a bit each, packed with the calls in one int: ``calls <<
    SLOTS | windows``, as cheap as the float it replaced), so that a window reads as 0 when
    the key had no call then, as no evidence when the window was never folded (the service
    held nothing then), and else as the mean of the windows the key had calls in. Hours
    restored from a state file written before the windows were kept (schema 2) read as
    before: the hour's calls spread over its windows folded (``spread``)."""

    def __init__(self, names: tuple[str, ...] = HISTORY_SERIES) -> None:
        self.hours: dict[int, dict[str, int]] = {}
        """Hour → key → ``calls << SLOTS | the windows of the hour it had calls in``."""
        self.folded: dict[int, int] = {}
        """Hour → the windows folded into it, a bit each (an hour is folded a window at a time)."""
        self.spread: dict[int, int] = {}
        """Hour → windows folded, for the hours restored without their windows (schema 2)."""
        self.names = frozenset(names)
        self.changed: set[int] = set()
        """Hours folded into since a snapshot last took them (:meth:`take`)."""
        self.dropped: int | None = None
        """The hours before this were forgotten since a snapshot last took them."""

    def fold(self, window: int, keys: list[str], counts: list[float]) -> None:
        """Add a window's counts (of the series kept) to its hour."""
        start = window - window % HOUR
        bit = 1 << (window - start) // WINDOW
        hour = self.hours.setdefault(start, {})
        self.folded[start] = self.folded.get(start, 0) | bit
        if start in self.spread:
            self.spread[start] += 1
        self.changed.add(start)
        for key, count in zip(keys, counts):
            if count and key.split("{", 1)[0] in self.names:
                hour[key] = (hour.get(key, 0) + (int(count) << SLOTS)) | bit

    def calls(self, hour: int, key: str) -> int:
        """A key's calls in an hour (0 when it had none, or the hour is not held)."""
        return self.hours.get(hour, {}).get(key, 0) >> SLOTS

    def per_window(self, window: int, key: str) -> float | None:
        """A series' count in a window, as far as the hour can tell: None when the window was
        not folded (nothing held then: no evidence), 0 when the key had no call in it, else
        the key's calls over the windows it had calls in."""
        start = window - window % HOUR
        folded = self.folded.get(start)
        if folded is None:
            return None
        packed = self.hours[start].get(key, 0)
        spread = self.spread.get(start)
        if spread is not None:  # (restored without its windows: the hour's mean)
            return (packed >> SLOTS) / spread
        bit = 1 << (window - start) // WINDOW
        if not folded & bit:
            return None
        if not packed & bit:
            return 0.0
        return (packed >> SLOTS) / (packed & ALL_SLOTS).bit_count()

    def purge(self, newest: int) -> None:
        """Forget the hours more than eight days before ``newest``."""
        cutoff = newest - HISTORY_DAYS * DAY
        old = [h for h in self.hours if h < cutoff]
        self._drop(old)
        if old:
            self.dropped = max(cutoff, self.dropped or cutoff)

    def forget(self, before: int | None) -> None:
        """DELETE /6minutes/data: forget the hours that begin before ``before`` (all when
        None), here and, at the next snapshot, in the state file: no baseline may compare
        with counts an operator erased (an hour that straddles ``before`` goes whole)."""
        self._drop([h for h in self.hours if before is None or h < before])
        cutoff = ALL if before is None else before
        self.dropped = max(cutoff, self.dropped or cutoff)

    def _drop(self, hours: list[int]) -> None:
        for hour in hours:
            del self.hours[hour]
            del self.folded[hour]
            self.spread.pop(hour, None)
            self.changed.discard(hour)

    def take(self) -> tuple[list[tuple[int, str, float, int]], dict[int, tuple[int, int | None]],
                            int | None]:
        """What changed since the last take, for a snapshot: the rows (hour, key, calls,
        windows with calls) and (windows folded, which) of each hour folded into, and the
        cut-off of the hours forgotten. (An hour without its windows says None for them.)"""
        rows = [(hour, key, float(packed >> SLOTS), packed & ALL_SLOTS)
                for hour in sorted(self.changed) for key, packed in self.hours[hour].items()]
        folded = {hour: self._folded_row(hour) for hour in self.changed}
        dropped, self.changed, self.dropped = self.dropped, set(), None
        return rows, folded, dropped

    def _folded_row(self, hour: int) -> tuple[int, int | None]:
        if hour in self.spread:
            return self.spread[hour], None
        return self.folded[hour].bit_count(), self.folded[hour]

    def put_back(self, hours: Iterable[int], dropped: int | None) -> None:
        """A snapshot that failed: its hours (still held) and cut-off go in the next one."""
        self.changed.update(h for h in hours if h in self.hours)
        if dropped is not None:
            self.dropped = max(dropped, self.dropped or dropped)

    def restore(self, rows: Iterable[tuple[int, str, float, int | None]],
                folded: dict[int, tuple[int, int | None]]) -> None:
        """Load the hours a state file holds (before anything is folded): a restart keeps the
        baselines of yesterday and the last seven days. An hour saved without its windows
        (schema 2: ``windows`` None) reads as its calls spread over the windows folded."""
        for hour, (count, windows) in folded.items():
            if windows is None:
                self.spread[hour] = count
                windows = (1 << count) - 1  # (which ones is unknown: only their number counts)
            self.folded[hour] = windows
            self.hours.setdefault(hour, {})
        for hour, key, calls, windows in rows:
            if hour in self.folded:  # (rows without their hour's count are no evidence)
                self.hours[hour][key] = int(calls) << SLOTS | (windows or 0)
