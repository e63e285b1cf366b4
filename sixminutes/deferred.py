"""Accepted rows waiting to be counted: several live batches joined into one.

A live group commit is a few dozen POSTs. Their admission (decoded, deduplicated, each
POST's answer) cannot wait, but counting them can: counting a batch costs the event loop
a fixed ~150 us and, below :data:`~sixminutes.batch.SMALL` rows, ~16-23 us a CDR in Python;
a few hundred rows are counted with numpy at ~10 us a CDR (``bench/live_batch.py``). So the
engine keeps the columns of the accepted rows of each admitted batch here, and joins them
into one :class:`~sixminutes.batch.Batch` when it counts (:meth:`Waiting.take`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .batch import Batch
from .columns import TEXTS, Columns, _recode, batch_of

__all__ = ["Waiting"]


class Waiting:
    """The accepted rows of admitted batches, in order, with their windows and positions."""

    __slots__ = ("parts", "rows")

    def __init__(self) -> None:
        self.parts: list[tuple[Columns, np.ndarray, np.ndarray, int]] = []
        self.rows = 0
        """Accepted rows waiting, all parts together."""

    def __len__(self) -> int:
        return self.rows

    def add(self, columns: Columns, accepted: np.ndarray, windows: np.ndarray, read: int) -> None:
        """Keep a batch's accepted rows (``accepted``: their rows in ``columns``, ``read``:
        the position of its first document)."""
        if len(accepted):
            self.parts.append((columns, accepted, windows, read))
            self.rows += len(accepted)

    def take(self) -> tuple[Batch, list[int]] | None:
        """Every row waiting as one Batch, with each row's position; None when none wait."""
        parts, self.parts, self.rows = self.parts, [], 0
        if not parts:
            return None
        if len(parts) == 1:
            columns, accepted, windows, read = parts[0]
            return batch_of(columns, accepted, windows), (accepted + read).tolist()
        joined = _join(parts)
        windows = np.concatenate([windows for _, _, windows, _ in parts])
        positions = np.concatenate([accepted + read for _, accepted, _, read in parts]).tolist()
        return batch_of(joined, np.arange(len(joined.items)), windows), positions


def _join(parts: list[tuple[Columns, np.ndarray, np.ndarray, int]]) -> Columns:
    """The accepted rows of every part as the columns of one batch (every row accepted):
    each text column's values in one dictionary, the codes renumbered into it."""
    items: list[Any] = []
    ints, floats = [], []
    codes: list[list[np.ndarray]] = [[] for _ in TEXTS]
    index: list[dict[Any, int]] = [{} for _ in TEXTS]
    outcome: dict[int, Any] = {}
    for columns, accepted, _, _ in parts:
        whole = len(accepted) == len(columns.items)
        rows = accepted.tolist()
        if columns.outcome:  # (rows decoded in Python: their Decoded, at their new row)
            for i, row in enumerate(rows):
                found = columns.outcome.get(row)
                if found is not None:
                    outcome[len(items) + i] = found
        items += columns.items if whole else [columns.items[row] for row in rows]
        ints.append(columns.ints if whole else columns.ints[:, accepted])
        floats.append(columns.floats if whole else columns.floats[:, accepted])
        some = np.count_nonzero(columns.ok) > len(accepted)  # (rows decoded, left out)
        for i, values in enumerate(columns.values):
            part = columns.codes[i] if whole else columns.codes[i, accepted]
            if some:  # (their values: only those used are kept, as batch_of does)
                part, values = _recode(part, values)
            into = index[i]
            table = np.fromiter([into.setdefault(value, len(into)) for value in values],
                                np.int64, len(values))
            codes[i].append(table[part])
    n = len(items)
    return Columns(items, np.ones(n, np.bool_), np.concatenate(ints, axis=1),
                   np.concatenate(floats, axis=1),
                   np.stack([np.concatenate(column) for column in codes]),
                   [list(values) for values in index], outcome)
