"""Calls in progress at each second: a per-window occupancy, reduced to a Stat per window.

A :class:`Spans` is declared by a batch plugin like a :class:`~sixminutes.series.Series`:
``Spans("peak_concurrent")`` keeps, per carrier and window, how many calls were in progress
(``start_epoch <= t < end_epoch``, whole seconds) at each of its 360 seconds, and writes the
window's Stat of those 360 samples: ``max`` is the peak, ``sum / count`` the mean number of
calls in progress (``sum`` is the call-seconds), ``min`` the quietest second. A call counts in
every window it was in progress in, so a CDR (which arrives at the end of its call, or later)
updates the earlier windows it spans; the Stats of those windows are rewritten, not merged.

A call counts in the windows of its last :data:`HORIZON` (two hours) at most: a call
longer than that (or a broken ``start_epoch``) costs no more. The occupancy is kept in the
:class:`~sixminutes.store.Store` (``store.occupancy``) as long as its window: one ``int32``
per second, 1,440 bytes per carrier and window, so a live service's 24 hours cost 346 KB a
carrier (35 MB for a hundred carriers), and a replay as much per window of the replay (as
much as a carrier's twenty-odd series in a window). So CDRs in any order count exactly; the
shares of a parallel replay (:mod:`sixminutes.parallel`) add theirs up at the join, which
rewrites the Stats; the snapshots save each window's occupancy with its cells
(:mod:`sixminutes.snapshots`), so a restart goes on exactly. A window restored from a state
file written without them keeps its ``peak_concurrent`` as it was (:meth:`Occupancy.freeze`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .batch import LABELS, SMALL, Batch
from .stats import key_maker
from .windows import WINDOW

if TYPE_CHECKING:
    from .store import Store

__all__ = ["Spans", "Occupancy", "HORIZON"]

HORIZON = 2 * 3600
"""A call counts in the windows of its last two hours at most."""
_SQUARES_EXACT = 1 << 26
"""Below it a window's sum of squared counts fits an int64 (360 · 2^52 < 2^63)."""


class Occupancy:
    """Window → series key → calls in progress at each second of the window (int32[360])."""

    def __init__(self) -> None:
        self.windows: dict[int, dict[str, np.ndarray]] = {}
        self.floor = 0
        """No window before this one is counted any more (it was purged)."""
        self.frozen: set[int] = set()
        """Windows restored without their occupancy: their Stats stay as restored."""

    def __getstate__(self) -> dict[str, Any]:
        """Pickled as one table of seconds (a replay's share holds thousands of occupancies:
        one array each cost as much to pickle as the rest of the store)."""
        pairs = [(t, key) for t, keys in self.windows.items() for key in keys]
        seconds = (np.stack([self.windows[t][key] for t, key in pairs]) if pairs
                   else np.zeros((0, WINDOW), np.int32))
        return {"pairs": pairs, "seconds": seconds, "floor": self.floor, "frozen": self.frozen}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.windows = {}
        for (t, key), seconds in zip(state["pairs"], state["seconds"]):
            self.windows.setdefault(t, {})[key] = seconds
        self.floor, self.frozen = state["floor"], state["frozen"]

    def add(self, keys: list[str], group: np.ndarray, starts: np.ndarray, ends: np.ndarray,
            store: Store) -> None:
        """Count calls [start, end) of the series ``keys[group]`` into the windows they span,
        and rewrite their Stats: one pass over every series and window of a batch."""
        # a call counts in its last HORIZON seconds' windows at most, and in none purged
        starts = np.maximum(np.maximum(starts, ends - ends % WINDOW - HORIZON), self.floor)
        keep = ends > starts
        if not keep.all():
            starts, ends, group = starts[keep], ends[keep], group[keep]
        if not len(starts):
            return
        # each call cut into the windows it spans: (series, window) pieces of [from, to) seconds
        first = starts - starts % WINDOW
        spans = (ends - 1 - first) // WINDOW + 1
        call = np.repeat(np.arange(len(starts)), spans)
        nth = np.arange(len(call)) - np.repeat(np.cumsum(spans) - spans, spans)
        window = first[call] + nth * WINDOW
        begin = np.maximum(starts[call] - window, 0)
        stop = np.minimum(ends[call] - window, WINDOW)
        base = int(first.min())
        pieces, index = np.unique(group[call] * ((int(window.max()) - base) // WINDOW + 1)
                                  + (window - base) // WINDOW, return_inverse=True)
        index = index.reshape(-1)
        size = len(pieces) * (WINDOW + 1)
        delta = np.bincount(index * (WINDOW + 1) + begin, minlength=size)
        delta -= np.bincount(index * (WINDOW + 1) + stop, minlength=size)
        busy = np.cumsum(delta.reshape(-1, WINDOW + 1)[:, :-1], axis=1).astype(np.int32)
        first_piece = np.unique(index, return_index=True)[1]
        piece_group = group[call][first_piece].tolist()
        piece_window = window[first_piece].tolist()
        touched, currents = [], []
        for i, (g, t) in enumerate(zip(piece_group, piece_window)):
            if t in self.frozen:
                continue
            key = keys[g]
            cells = self.windows.setdefault(t, {})
            current = cells.get(key)
            if current is None:
                current = cells[key] = busy[i].copy()
            else:
                current += busy[i]
            touched.append((t, key))
            currents.append(current)
        if touched:
            for (t, key), stat in zip(touched, _stats(np.stack(currents))):
                store.window(t).put(key, stat)

    def add_one(self, key: str, start: int, end: int, touched: dict[tuple[int, str], None]) -> None:
        """:meth:`add` for one call, in Python: a slice of each window it spans, each (window,
        key) noted in ``touched`` for :meth:`rewrite` (once for a batch's calls)."""
        start = max(start, end - end % WINDOW - HORIZON, self.floor)
        if end <= start:
            return  # (never in progress, or only in windows purged)
        t = start - start % WINDOW
        while t < end:
            if t not in self.frozen:
                cells = self.windows.setdefault(t, {})
                current = cells.get(key)
                if current is None:
                    current = cells[key] = np.zeros(WINDOW, np.int32)
                current[max(start, t) - t:min(end, t + WINDOW) - t] += 1
                touched[(t, key)] = None
            t += WINDOW

    def rewrite(self, touched: dict[tuple[int, str], None], store: Store) -> None:
        """Write the Stats of these (window, key) occupancies into the store, all at once."""
        if touched:
            stats = _stats(np.stack([self.windows[t][key] for t, key in touched]))
            for (t, key), stat in zip(touched, stats):
                store.window(t).put(key, stat)

    def restore(self, window: int, key: str, seconds: bytes) -> None:
        """Put back a window's occupancy saved by a snapshot (``seconds``: its int32 bytes)."""
        self.windows.setdefault(window, {})[key] = np.frombuffer(seconds, np.int32).copy()

    def saved(self, window: int, key: str) -> bytes | None:
        """A window's occupancy as a snapshot saves it; None when it has none."""
        found = self.windows.get(window, {}).get(key)
        return None if found is None else found.tobytes()

    def freeze(self, windows: set[int]) -> None:
        """Count nothing more in these windows (restored without their occupancy)."""
        self.frozen |= windows

    def forget(self, before: int | None) -> None:
        """Drop the windows before ``before`` (purged): no call counts in them any more.
        None (every window deleted: DELETE /6minutes/data) drops them all but leaves the
        floor: the calls that come next count as their cells do."""
        if before is None:
            self.windows.clear()
            self.frozen.clear()
            return
        self.floor = max(self.floor, before)
        for t in [t for t in self.windows if t < before]:
            del self.windows[t]
        self.frozen = {t for t in self.frozen if t >= before}

    def absorb(self, other: Occupancy, store: Store) -> None:
        """Add another store's occupancy to this one and rewrite the Stats it touches (the
        cells the stores merged hold sums of partial occupancies, which are no Stat of it)."""
        touched = []  # (only where both counted: elsewhere the merged cell is one's whole Stat)
        for window, keys in other.windows.items():
            mine = self.windows.get(window)
            if mine is None:
                self.windows[window] = keys
                continue
            for key, seconds in keys.items():
                current = mine.get(key)
                if current is None:
                    mine[key] = seconds
                else:
                    mine[key] = current + seconds
                    touched.append((window, key))
        if touched:
            stats = _stats(np.stack([self.windows[window][key] for window, key in touched]))
            for (window, key), stat in zip(touched, stats):
                store.window(window).put(key, stat)
        self.floor = max(self.floor, other.floor)
        self.frozen |= other.frozen

    @property
    def bytes(self) -> int:
        """The memory the per-second counts hold."""
        return sum(a.nbytes for keys in self.windows.values() for a in keys.values())


def _stats(seconds: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """The Stats (sum, count, squares, min, max) of windows' per-second counts, one row of 360
    per window. Summed as integers (exact; no float copy of the whole table, which for the
    thousands of windows of a parallel replay's join was mostly page faults), but for counts
    whose squares an int64 cannot hold (no real carrier's: a test's)."""
    def floats(column: np.ndarray) -> list[float]:
        return column.astype(np.float64).tolist()
    exact = not len(seconds) or int(seconds.max()) < _SQUARES_EXACT
    if not exact:
        seconds = seconds.astype(np.float64)
    kind = np.int64 if exact else np.float64
    return list(zip(floats(seconds.sum(axis=1, dtype=kind)), [float(WINDOW)] * len(seconds),
                    floats(np.einsum("ij,ij->i", seconds, seconds, dtype=kind)),
                    floats(seconds.min(axis=1)), floats(seconds.max(axis=1))))


@dataclass(frozen=True, eq=False)
class Spans:
    """Calls in progress per second, by labels, as the Stat ``name{labels}`` of each window.

    ``labels``: label name → text column (a sequence of names when they are the same), the
    carrier by default; ``when``: a column name or a function of the batch returning a mask
    (every call when None)."""

    name: str
    labels: Any = ("direction", "profile")
    when: Any = None
    pairs: tuple[tuple[str, str], ...] = field(init=False, repr=False)
    columns: tuple[str, ...] = field(init=False, repr=False)
    _keys: dict[tuple, str] = field(init=False, repr=False, default_factory=dict)
    _make: Callable[[tuple], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        labels = self.labels
        pairs = tuple(labels.items()) if isinstance(labels, dict) else tuple((n, n) for n in labels)
        for _, column in pairs:
            if column not in LABELS:
                raise ValueError(f"spans {self.name}: label column {column!r} is not one of "
                                 f"{', '.join(LABELS)}")
        # (names valid, or SeriesKeyError)
        object.__setattr__(self, "_make", key_maker(self.name, tuple(label for label, _ in pairs)))
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "columns", tuple(column for _, column in pairs))

    def key(self, values: tuple) -> str:
        """The series key of label values, in ``pairs``' order (kept: the same few come back)."""
        key = self._keys.get(values)
        if key is None:
            if len(self._keys) > 200_000:  # (label values come and go)
                self._keys.clear()
            key = self._keys[values] = self._make(values)
        return key

    def count(self, batch: Batch, store: Store) -> None:
        """Count a batch's calls into the store's occupancy, and their windows' Stats."""
        occupancy = store.occupancy
        if not batch.n:
            return
        if batch.n <= SMALL:
            return self._count_rows(batch, store)
        starts, ends = batch.start_epoch, batch.end_epoch
        if self.when is not None:
            mask = np.asarray(batch.column(self.when) if isinstance(self.when, str)
                              else self.when(batch), dtype=np.bool_)
        else:
            mask = None
        codes = np.zeros(batch.n, np.int64)
        encoded = [batch.codes(column) for column in self.columns]
        for column_codes, values in encoded:
            codes = codes * max(len(values), 1) + column_codes
        if mask is not None:
            starts, ends, codes = starts[mask], ends[mask], codes[mask]
        _, first, group = np.unique(codes, return_index=True, return_inverse=True)
        if mask is not None:
            first = np.flatnonzero(mask)[first]  # (rows of the batch, not of the masked)
        rows = first.tolist()
        labels = zip(*[[values[code] for code in column_codes[rows].tolist()]
                       for column_codes, values in encoded]) if encoded else [()] * len(rows)
        occupancy.add([self.key(values) for values in labels], group.reshape(-1), starts, ends,
                      store)

    def _count_rows(self, batch: Batch, store: Store) -> None:
        """:meth:`count` for a small batch (a live POST or a few): row by row, each call a
        slice added to the windows it spans (numpy's sorting would cost more than the work)."""
        mask = None
        if self.when is not None:
            mask = np.asarray(batch.column(self.when) if isinstance(self.when, str)
                              else self.when(batch), dtype=np.bool_).tolist()
        labels = (list(zip(*[batch.column(column).tolist() for column in self.columns]))
                  if self.columns else [()] * batch.n)
        starts, ends = batch.start_epoch.tolist(), batch.end_epoch.tolist()
        touched: dict[tuple[int, str], None] = {}
        for row in range(batch.n):
            if mask is not None and not mask[row]:
                continue
            store.occupancy.add_one(self.key(labels[row]), starts[row], ends[row], touched)
        store.occupancy.rewrite(touched, store)
