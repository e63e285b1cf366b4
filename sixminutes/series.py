"""Declared series: what a batch plugin counts, and how a batch is counted into the Store.

A :class:`Series` says what to count: a name, a value per CDR (a column or a function of
the batch; 1 when absent, a count), when to count it (a mask) and the labels (columns).
:func:`count` evaluates it over a whole :class:`~sixminutes.batch.Batch`: one group-by of
(window, labels) shared by every series with the same labels, then a handful of numpy
calls, then one pass of the compiled fold (``_fold.c``) over the rows of every window.

Values are added in input order starting from each cell's current Stat, so the sums are
bit for bit those of adding the CDRs one at a time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

import numpy as np

from .batch import LABELS, SMALL, Batch, Groups
from .stats import key_maker

try:
    from ._fold import fold as _fold
except ImportError:  # built without a C compiler: the numpy form below
    _fold = None

if TYPE_CHECKING:
    from .store import Store

__all__ = ["Series", "count", "Column"]

Column = Union[str, Callable[[Batch], Any], None]
"""A column name, or a function of the batch returning one value per row (an array)."""

_CARRIER = (("direction", "direction"), ("profile", "profile"))


@dataclass(frozen=True, eq=False)
class Series:
    """One declared series: ``name{labels}`` += ``value`` for every CDR where ``when`` holds.

    ``value``: a column name or a function of the batch (NaN rows are not counted: an
    unknown measure); None counts 1 per CDR. ``when``: a column name (true or non-zero
    rows) or a function returning a mask; None counts every CDR. ``labels``: label name →
    text column (a sequence of names when they are the same); by default direction and
    profile, the carrier.
    """

    name: str
    value: Column = None
    when: Column = None
    labels: Mapping[str, str] | tuple[str, ...] = ("direction", "profile")
    pairs: tuple[tuple[str, str], ...] = field(init=False, repr=False)
    columns: tuple[str, ...] = field(init=False, repr=False)
    _keys: dict[tuple, str] = field(init=False, repr=False, default_factory=dict)
    _make: Callable[[tuple], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        labels = self.labels
        pairs = tuple(labels.items()) if isinstance(labels, Mapping) else tuple((n, n) for n in labels)
        for _, column in pairs:
            if column not in LABELS:
                raise ValueError(f"series {self.name}: label column {column!r} is not one of "
                                 f"{', '.join(LABELS)}")
        object.__setattr__(self, "_make", key_maker(self.name, tuple(label for label, _ in pairs)))
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "columns", tuple(column for _, column in pairs))

    def key(self, groups: Groups, group: int) -> str:
        """The series key of a group's labels (kept: the same few thousand come back)."""
        values = groups.labels(group)
        key = self._keys.get(values)
        if key is None:
            if len(self._keys) > 200_000:  # accounts come and go
                self._keys.clear()
            key = self._keys[values] = self._make(values)
        return key


def _evaluate(batch: Batch, column: Column, what: str) -> np.ndarray | None:
    if column is None:
        return None
    result = batch.column(column) if isinstance(column, str) else column(batch)
    array = np.asarray(result)
    if array.shape != (batch.n,):
        raise ValueError(f"{what} gave shape {array.shape}, not one value per CDR ({batch.n})")
    return array


def count(series: Series, batch: Batch, store: Store) -> None:
    """Count a batch into the store's cells of this series."""
    groups = batch.groups(series.columns)
    mask = _evaluate(batch, series.when, f"{series.name}: when")
    values = _evaluate(batch, series.value, f"{series.name}: value")
    if batch.n <= SMALL:
        return _count_rows(series, groups, store, mask, values)
    if mask is not None:
        mask = mask.astype(np.bool_, copy=False)
    if values is not None:
        values = values.astype(np.float64, copy=False)
        known = ~np.isnan(values)
        mask = known if mask is None else mask & known
        if mask is not None:
            values = values[mask]
    index = groups.inverse if mask is None else groups.inverse[mask]
    counts = np.bincount(index, minlength=groups.size)
    used = np.flatnonzero(counts)
    if not len(used):
        return
    keys = _keys(series, groups, used.tolist())
    if groups.one_window:
        edges = [0, len(used)]
    else:  # the groups come sorted by window: one run of groups, and of keys, per window
        windows = groups.windows[used]
        edges = [0, *(np.flatnonzero(windows[1:] != windows[:-1]) + 1).tolist(), len(used)]
    group_table = np.zeros(groups.size, np.int64)
    group_row = np.zeros(groups.size, np.int64)
    tables = []
    for start, end in zip(edges, edges[1:]):
        cells = store.window(groups.window_list[used[start]])
        group_row[used[start:end]] = cells.rows(keys[start:end])
        if store.track_changes:
            cells.changed.update(keys[start:end])
        group_table[used[start:end]] = len(tables)
        tables.append(cells)
    # (each window's table is taken only now: rows() may have grown it)
    fold([cells.table for cells in tables], group_table, group_row,
         np.ascontiguousarray(index, np.int64),
         None if values is None else np.ascontiguousarray(values, np.float64))


def _fold_numpy(tables: list[np.ndarray], group_table: np.ndarray, group_row: np.ndarray,
                index: np.ndarray, values: np.ndarray | None) -> None:
    """What ``_fold.fold`` does, for a build without a C compiler: ``np.add.at`` adds in the
    order of ``index``, starting from each cell's current Stat, one window at a time (equal
    values; only a zero's sign in min or max may differ: numpy keeps the later of 0.0 and -0.0)."""
    row_table, target = group_table[index], group_row[index]
    values = np.ones(len(index)) if values is None else values
    for t, table in enumerate(tables):
        mine = row_table == t
        rows, value = target[mine], values[mine]
        np.add.at(table[:, 0], rows, value)
        np.add.at(table[:, 1], rows, 1.0)
        np.add.at(table[:, 2], rows, value * value)
        np.minimum.at(table[:, 3], rows, value)
        np.maximum.at(table[:, 4], rows, value)


fold: Callable[..., None] = _fold if _fold is not None else _fold_numpy
"""Add each row's value to its group's cell, in row order (see ``_fold.c``)."""


def _keys(series: Series, groups: Groups, used: list[int]) -> list[str]:
    known, labels = series._keys, groups.label_list
    keys = [known.get(labels[g]) for g in used]
    if None in keys:
        keys = [k if k is not None else series.key(groups, g) for g, k in zip(used, keys)]
    return keys


def _count_rows(series: Series, groups: Groups, store: Store, mask: np.ndarray | None,
                values: np.ndarray | None) -> None:
    """:func:`count` for a small batch: each row added to its cell as one CDR at a time, in
    Python (numpy's cost per call would outweigh the work)."""
    windows = groups.window_list
    wanted = mask.tolist() if mask is not None else None
    numbers = values.tolist() if values is not None else None
    targets: dict[int, tuple[Any, str]] = {}  # group → its window's cells and its key
    for row, g in enumerate(groups.inverse.tolist()):
        if wanted is not None and not wanted[row]:
            continue
        value = 1.0 if numbers is None else float(numbers[row])
        if value == value:  # (NaN: an unknown measure, not counted)
            target = targets.get(g)
            if target is None:
                target = targets[g] = (store.window(windows[g]), series.key(groups, g))
            target[0].add(target[1], value)
