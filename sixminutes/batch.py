"""A batch of accepted CDRs as columns: what batch plugins read, one array per Call field.

The engine decodes documents a batch at a time; the CDRs it accepts become one
:class:`Batch`. Numbers are numpy arrays (``billsec``, ``end_epoch``, ``window``…; an
unknown ``pdd_ms`` or ``mos`` is NaN), text is dictionary-encoded (:meth:`Batch.codes`:
an integer code per row and the distinct values), so that grouping by carrier, account
or SIP code is integer work done in C. Columns are built on first use and kept.
"""
from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Collection, Sequence

import numpy as np

from .destinations import country_of

if TYPE_CHECKING:
    from .call import Decoded

__all__ = ["Batch", "Groups", "NUMBERS", "TEXTS", "DERIVED", "LABELS"]

NUMBERS = {"start_epoch": np.int64, "end_epoch": np.int64, "billsec": np.int64, "duration": np.int64,
           "answered": np.bool_, "pdd_ms": np.float64, "mos": np.float64}
"""The Call's numeric fields and their column types (NaN stands for an unknown measure)."""
TEXTS = ("id", "profile", "direction", "account", "from_", "to", "sip_code", "hangup_cause", "q850")
"""The Call's text fields (``q850`` and ``id`` may be None)."""
DERIVED: dict[str, tuple[str, Callable[[Any], Any]]] = {"country": ("to", country_of)}
"""Text columns computed from another, once per distinct value of a batch: ``country``
(ISO 3166 alpha-2 of the called number, :mod:`sixminutes.destinations`)."""
LABELS = (*TEXTS, *DERIVED)
"""The text columns a series may be labelled by."""
_KEY_BOUND = 1 << 40  # a group key this large is folded back to dense codes before the next label
SMALL = 64
"""A batch this small (a live CDR or a few) is grouped, and counted, row by row in Python:
numpy's cost per call would outweigh the work."""


class Groups:
    """The rows of a batch grouped by (window, label columns): one pass, reused by every
    series and rule that groups by the same labels."""

    __slots__ = ("inverse", "first", "size", "windows", "window_list", "one_window", "label_list")

    def __init__(self, inverse: np.ndarray, first: np.ndarray, windows: np.ndarray,
                 values: list[tuple[Any, ...]]) -> None:
        self.inverse = inverse
        """Row → its group."""
        self.first = first
        """Group → its first row (the sample CDR of the group)."""
        self.size = len(first)
        self.windows = windows
        """Group → its window."""
        self.window_list = windows.tolist()
        self.one_window = len(set(self.window_list)) == 1
        """Every group in one window (the usual batch): one window's cells to update."""
        self.label_list = values
        """Group → its label columns' values, in the order they were asked for."""

    def labels(self, group: int) -> tuple[Any, ...]:
        """The label columns' values of a group, in the order they were asked for."""
        return self.label_list[group]


class Batch:
    """Accepted CDRs in input order, with their windows; columns on demand."""

    def __init__(self, decoded: Sequence[Decoded], windows: Sequence[int] | np.ndarray, *,
                 columns: dict[str, np.ndarray] | None = None,
                 codes: dict[str, tuple[np.ndarray, list[Any]]] | None = None) -> None:
        self.decoded = decoded
        """Each row's decoded CDR (its ``call``, and ``doc`` built on demand)."""
        self.n = len(decoded)
        self.window = (windows if isinstance(windows, np.ndarray)
                       else np.fromiter(windows, np.int64, self.n))
        self._columns: dict[str, np.ndarray] = dict(columns or {})
        """Columns already known (decoded straight into columns: :mod:`sixminutes.columns`)."""
        self._codes: dict[str, tuple[np.ndarray, list[Any]]] = dict(codes or {})
        self._groups: dict[tuple[str, ...], Groups] = {}
        self._call_list: list[Any] | None = None

    @property
    def _calls(self) -> list[Any]:
        """Each row's Call (built, for a batch decoded into columns, only when a column is not)."""
        if self._call_list is None:
            self._call_list = [d.call for d in self.decoded]
        return self._call_list

    def __len__(self) -> int:
        return self.n

    def __getattr__(self, name: str) -> np.ndarray:
        """A numeric column (``batch.billsec``), or a text column as an array of objects."""
        if name.startswith("_"):
            raise AttributeError(name)
        return self.column(name)

    def column(self, name: str) -> np.ndarray:
        """The values of a field, one per row."""
        column = self._columns.get(name)
        if column is None:
            if name in NUMBERS:
                values = list(map(attrgetter(name), self._calls))
                column = np.array(values, dtype=NUMBERS[name]) if values else np.empty(0, NUMBERS[name])
            elif name in TEXTS or name in DERIVED:
                codes, values = self.codes(name)
                column = np.array(values, dtype=object)[codes] if values else np.empty(0, object)
            else:
                raise AttributeError(f"a batch has no column {name!r}: it has "
                                     f"{', '.join([*NUMBERS, *LABELS, 'window'])}")
            self._columns[name] = column
        return column

    def codes(self, name: str) -> tuple[np.ndarray, list[Any]]:
        """A column dictionary-encoded (text, usually): a code per row, and the distinct values
        in order of first use."""
        found = self._codes.get(name)
        if found is None:
            if name == "window":
                values, codes = np.unique(self.window, return_inverse=True)
                found = (codes.astype(np.int64, copy=False), [int(v) for v in values])
            elif name in DERIVED:
                source, derive = DERIVED[name]
                codes, values = self.codes(source)
                index: dict[Any, int] = {}
                code = index.setdefault
                table = np.fromiter([code(derive(v), len(index)) for v in values], np.int64,
                                    len(values))
                found = (table[codes], list(index))
            else:
                if name not in TEXTS and name not in NUMBERS:
                    raise AttributeError(f"a batch has no column {name!r}")
                index: dict[Any, int] = {}
                code = index.setdefault
                found = (np.fromiter([code(v, len(index)) for v in map(attrgetter(name), self._calls)],
                                     np.int64, self.n), list(index))
            self._codes[name] = found
        return found

    def isin(self, name: str, values: Collection[Any]) -> np.ndarray:
        """Rows whose text column ``name`` holds one of ``values`` (a mask)."""
        codes, distinct = self.codes(name)
        table = np.fromiter([value in values for value in distinct], np.bool_, len(distinct))
        return table[codes]

    def groups(self, columns: tuple[str, ...]) -> Groups:
        """The rows grouped by window and the given text columns (computed once per batch)."""
        found = self._groups.get(columns)
        if found is not None:
            return found
        if self.n <= SMALL:
            found = self._groups[columns] = self._small_groups(columns)
            return found
        key, bound = self.codes("window")[0], len(self.codes("window")[1])
        for name in columns:
            codes, distinct = self.codes(name)
            if bound * max(len(distinct), 1) > _KEY_BOUND:  # keep the combined key in int64
                _, key = np.unique(key, return_inverse=True)
                bound = int(key.max()) + 1 if len(key) else 1
            key = key * max(len(distinct), 1) + codes
            bound *= max(len(distinct), 1)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        rows = first.tolist()
        per_column = []
        for name in columns:
            codes, distinct = self.codes(name)
            per_column.append([distinct[code] for code in codes[rows].tolist()])
        values = list(zip(*per_column)) if columns else [()] * len(rows)
        found = self._groups[columns] = Groups(inverse.reshape(-1), first, self.window[first], values)
        return found

    def _small_groups(self, columns: tuple[str, ...]) -> Groups:
        index: dict[tuple, int] = {}
        inverse: list[int] = []
        first: list[int] = []
        values: list[tuple[Any, ...]] = []
        windows = self.window.tolist()
        rows = zip(*[self._values(name) for name in columns]) if columns else [()] * self.n
        for row, (window, labels) in enumerate(zip(windows, rows)):
            group = index.get((window, labels))
            if group is None:
                group = index[(window, labels)] = len(first)
                first.append(row)
                values.append(labels)
            inverse.append(group)
        return Groups(np.array(inverse, np.int64), np.array(first, np.int64),
                      np.array([windows[row] for row in first], np.int64), values)

    def _values(self, name: str) -> list[Any]:
        """A text column's values, one per row, as a list."""
        if name in DERIVED or name in self._codes:
            codes, distinct = self.codes(name)
            return [distinct[code] for code in codes.tolist()]
        return list(map(attrgetter(name), self._calls))
