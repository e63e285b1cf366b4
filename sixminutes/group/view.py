"""The group's view: every partition's Stats per window, merged into one store. No I/O.

Each partition's owner writes, per window, the Stats its partition's CDRs make, with the
stream position they hold every CDR up to. A record with a lower position than the one
held is older (an owner that has lost the partition, or a late copy) and is ignored, so
the view never goes back. The merged window is the Stats of every partition added up:
exactly what one instance counting every CDR would hold (the Stats are mergeable).
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np

from ..occupancy import _stats
from ..store import Store
from ..windows import WINDOW

__all__ = ["View"]


class View:
    """Partition records in; merged windows and group-wide outcome counts out."""

    def __init__(self) -> None:
        self.parts: dict[int, dict[int, tuple[int, list[str], np.ndarray, np.ndarray,
                                              dict[str, np.ndarray]]]] = {}
        """window → partition → (position, keys, rows, each key's row in the merged window,
        calls in progress per second of the keys that have them)."""
        self.index: dict[int, dict[str, int]] = {}
        """window → series key → its row in the merged window (keys are never removed)."""
        self.upto: dict[int, int] = {}
        """partition → the highest stream position any of its records holds."""
        self.outcomes: dict[int, tuple[int, dict[tuple[str, str], int]]] = {}
        self.dirty: set[int] = set()

    def put(self, partition: int, window: int, upto: int, keys: list[str],
            table: np.ndarray, seconds: dict[str, np.ndarray] | None = None) -> bool:
        """Take a partition's record of a window; False when it is older than the one held."""
        held = self.parts.setdefault(window, {}).get(partition)
        if held is not None and held[0] > upto:
            return False
        index = self.index.setdefault(window, {})
        at = np.fromiter((index.setdefault(key, len(index)) for key in keys), np.intp, len(keys))
        self.parts[window][partition] = (upto, keys, table, at, seconds or {})
        self.upto[partition] = max(self.upto.get(partition, 0), upto)
        self.dirty.add(window)
        return True

    def held(self, partition: int, window: int) -> Callable[[], int]:
        """The stream position of the partition's record of the window held now (0: none)."""
        return lambda: self.parts.get(window, {}).get(partition, (0,))[0]

    def put_outcomes(self, partition: int, upto: int,
                     outcomes: dict[tuple[str, str], int]) -> Counter[tuple[str, str]] | None:
        """Take a partition's outcome counts; return what they add to the ones held (None
        when the record is older than the one held)."""
        held = self.outcomes.get(partition)
        if held is not None and held[0] > upto:
            return None
        before = Counter(held[1]) if held is not None else Counter()
        self.outcomes[partition] = (upto, outcomes)
        self.upto[partition] = max(self.upto.get(partition, 0), upto)
        change = Counter(outcomes)
        change.subtract(before)
        return change

    def merged(self, window: int) -> tuple[list[str], np.ndarray]:
        """The window's Stats over every partition: sums, counts and squares added, the
        lowest min and the highest max (numpy over rows found when each record came); a
        series of calls in progress (``peak_concurrent``) is the Stat of the partitions'
        per-second counts added up, when every record holding it brought them."""
        parts = self.parts.get(window, {})
        keys = list(self.index.get(window, {}))
        table = np.zeros((len(keys), 5))
        table[:, 3], table[:, 4] = np.inf, -np.inf
        covered = np.zeros(len(keys), bool)
        for _, _, rows, at, _ in parts.values():
            table[at, :3] += rows[:, :3]
            table[at, 3] = np.minimum(table[at, 3], rows[:, 3])
            table[at, 4] = np.maximum(table[at, 4], rows[:, 4])
            covered[at] = True
        spans = {key for part in parts.values() for key in part[4]}
        if spans:
            index, summed = self.index[window], []
            holding = []
            for _, _, _, at, seconds in parts.values():
                holds = np.zeros(len(keys), bool)
                holds[at] = True
                holding.append((holds, seconds))
            for key in spans:
                row, total = index[key], np.zeros(WINDOW, np.int64)
                for holds, seconds in holding:
                    if holds[row]:  # (a partition holding the key must bring its seconds)
                        if key not in seconds:
                            break
                        total += seconds[key]
                else:
                    summed.append((row, total))
            if summed:
                table[[row for row, _ in summed]] = _stats(np.stack([t for _, t in summed]))
        if not covered.all():  # (a key no record holds any more)
            keys = [key for key, kept in zip(keys, covered.tolist()) if kept]
            table = table[covered]
        return keys, table

    def apply(self, store: Store) -> list[int]:
        """Write the windows changed since the last call into ``store``; return them."""
        windows, self.dirty = sorted(self.dirty), set()
        for window in windows:
            keys, table = self.merged(window)
            store.replace(window, keys, table)
        return windows

    def purge(self, before: int) -> None:
        """Forget the windows older than ``before`` (past retention)."""
        for window in [t for t in self.parts if t < before]:
            del self.parts[window]
            self.index.pop(window, None)
        self.dirty = {t for t in self.dirty if t >= before}
