"""A batch of documents decoded straight into columns, the way the engine counts them.

Decoding one CDR into a :class:`~sixminutes.call.Call` costs about 10 µs, of which Python
objects take half; a batch plugin then reads the Calls back into columns. The compiled
decoder (``_columns.c``) validates each document as the pre-scan does and writes the Call's
fields straight into numpy columns, text as dictionary codes. The documents it is not sure
of (escapes, URL-encoded text, change rows, non-ASCII bytes, odd types: see there) are
decoded by :func:`~sixminutes.call.decode` one at a time and written into the same columns,
so every row reads exactly as the Call of that document would. A row's Call and document
are built only when something asks for them (a per-CDR plugin, an alert's sample).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

try:
    from . import _columns
except ImportError:  # built without a C compiler: every document takes call.decode()
    _columns = None

from .batch import Batch
from .call import Call, Decoded, Rejected, decode
from .direction import normal_direction

__all__ = ["Chunk", "Columns", "LazyDecoded", "Rows", "SKIP", "batch_of", "decode_columns", "decoded", "INTS",
           "FLOATS", "TEXTS"]

INTS = ("end_epoch", "start_epoch", "billsec", "duration", "answered")
"""The int64 columns (``answered`` is 0 or 1)."""
FLOATS = ("pdd_ms", "mos")
"""The float64 columns: NaN where the Call holds None."""
TEXTS = ("id", "profile", "direction", "account", "from_", "to", "sip_code", "hangup_cause", "q850")
"""The text columns, as codes into each one's distinct values."""
FAST, SLOW, SKIPPED = 0, 1, 2
_INT64_MAX = 2**63 - 1
_DIRECTION = TEXTS.index("direction")


def decoded(item: Any) -> Decoded | Rejected:
    """A document decoded, or why it does not count (a decoder bug costs that one document).

    The Rejected returned is a new one, never raised: it holds no traceback, so no frame
    (nor the document in it) stays alive while a batch waits to be counted."""
    try:
        return decode(item)
    except Rejected as rejected:
        return Rejected(rejected.reason, rejected.detail)
    except Exception as error:
        return undecodable(error)


def undecodable(error: Exception) -> Rejected:
    return Rejected("undecodable", f"{type(error).__name__}: {error}")


class Columns:
    """The documents of a batch: each row decoded into the columns, skipped (another process
    counts it), or rejected (``outcome[row]`` holds the Rejected)."""

    __slots__ = ("items", "ok", "ints", "floats", "codes", "values", "outcome")

    def __init__(self, items: list[Any], ok: np.ndarray, ints: np.ndarray, floats: np.ndarray,
                 codes: np.ndarray, values: list[list[Any]], outcome: dict[int, Any]) -> None:
        self.items = items
        self.ok = ok
        """Rows decoded into the columns (a mask)."""
        self.ints = ints
        self.floats = floats
        self.codes = codes
        self.values = values
        """Each text column's distinct values (directions in the one vocabulary)."""
        self.outcome = outcome
        """The rows call.decode() read: their Decoded, or their Rejected."""


SKIP: Any = type("Skip", (), {"__repr__": lambda self: "SKIP", "__slots__": ()})()
"""An item not to read (another process counts it); None is a document, of no object type."""


class Chunk(list):
    """Items read one after another, handed over at once (a source may give these among its
    items: :meth:`~sixminutes.engine.Engine.feed_many` takes them in as it would one by one),
    so that a reader that splits a buffer of lines in C costs no Python step per document."""

    __slots__ = ("nbytes",)

    def __init__(self, items: list[Any], nbytes: int) -> None:
        super().__init__(items)
        self.nbytes = nbytes
        """The bytes of the raw documents among them (what a batch's memory bound counts)."""


def decode_columns(items: list[Any]) -> Columns:
    """Decode a batch (raw bytes, dicts; :data:`SKIP` for a document skipped) into columns."""
    n = len(items)
    status = np.empty(n, np.uint8)
    ints = np.empty((len(INTS), n), np.int64)
    floats = np.empty((len(FLOATS), n), np.float64)
    codes = np.empty((len(TEXTS), n), np.int64)
    values: list[list[Any]] | None = None
    if _columns is not None:
        try:
            values = list(_columns.decode(items, SKIP, status, ints, floats, codes))
        except MemoryError:  # (a batch's dictionaries): each document then costs what it did
            values = None
    if values is None:  # every document through call.decode()
        status[:] = [SKIPPED if item is SKIP else SLOW for item in items]
        values = [[] for _ in TEXTS]
    outcome: dict[int, Any] = {}
    slow = np.flatnonzero(status == SLOW).tolist()
    if slow:
        indexes: list[dict[Any, int] | None] = [None] * len(TEXTS)  # built when first needed
        for row in slow:
            result = outcome[row] = decoded(items[row])
            if isinstance(result, Decoded) and result.call.end_epoch > _INT64_MAX:
                # (no clock reaches it: what the engine's admission would say, said here
                # because the column cannot hold it)
                outcome[row] = Rejected("future", f"end_epoch {result.call.end_epoch}")
            elif isinstance(result, Decoded):
                _write(result.call, row, ints, floats, codes, values, indexes)
                status[row] = FAST
    values[_DIRECTION] = [normal_direction(value) for value in values[_DIRECTION]]
    return Columns(items, status == FAST, ints, floats, codes, values, outcome)


def _write(call: Call, row: int, ints: np.ndarray, floats: np.ndarray, codes: np.ndarray,
           values: list[list[Any]], indexes: list[dict[Any, int] | None]) -> None:
    """A Call decoded in Python, written into row ``row`` of the columns."""
    for i, name in enumerate(INTS):
        ints[i, row] = getattr(call, name)
    for i, name in enumerate(FLOATS):
        value = getattr(call, name)
        floats[i, row] = np.nan if value is None else value
    for i, name in enumerate(TEXTS):
        value, index = getattr(call, name), indexes[i]
        if index is None:
            index = indexes[i] = {value: code for code, value in enumerate(values[i])}
        code = index.get(value)
        if code is None:
            code = index[value] = len(values[i])
            values[i].append(value)
        codes[i, row] = code


class _Table:
    """The columns of a batch's accepted rows: what a row's Call is built from (and all an
    alert's sample keeps of its batch, not the batch's raw documents)."""

    __slots__ = ("ints", "floats", "codes", "values")

    def __init__(self, ints: np.ndarray, floats: np.ndarray, codes: np.ndarray,
                 values: list[list[Any]]) -> None:
        self.ints, self.floats, self.codes, self.values = ints, floats, codes, values

    def call(self, row: int) -> Call:
        """The Call of a row."""
        pdd, mos = self.floats[:, row].tolist()
        fields = dict(zip(TEXTS, [values[code] for values, code
                                  in zip(self.values, self.codes[:, row].tolist())]))
        fields.update(zip(INTS, self.ints[:, row].tolist()))
        fields["answered"] = bool(fields["answered"])
        fields["pdd_ms"] = None if pdd != pdd else int(pdd)
        fields["mos"] = None if mos != mos else mos
        return Call(**fields)


class Rows(Sequence):
    """The Decoded of each row of a batch, built when asked for."""

    def __init__(self, items: list[Any], table: _Table, known: dict[int, Decoded]) -> None:
        self._items = items
        self._table = table
        self._known = known

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, row: int) -> Decoded:  # type: ignore[override]
        found = self._known.get(row)
        if found is None:
            found = self._known[row] = LazyDecoded(self._table, row, self._items[row])
        return found

    def __iter__(self) -> Iterator[Decoded]:
        return (self[row] for row in range(len(self._items)))


class LazyDecoded(Decoded):
    """A row's Decoded whose Call is built from the columns on first use."""

    __slots__ = ("_table", "_row")

    def __init__(self, table: _Table, row: int, source: bytes) -> None:
        self._table: _Table | None = table
        self._row = row
        self._source = source
        self._doc = None

    @property  # type: ignore[override]
    def call(self) -> Call:
        table = self._table
        if table is not None:
            Decoded.call.__set__(self, table.call(self._row))  # type: ignore[attr-defined]
            self._table = None
        return Decoded.call.__get__(self)  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled (an alert's sample sent home by a replay process) as a plain Decoded."""
        return _plain, (self.call, self._source, self._doc)


def _plain(call: Call, source: Any, doc: dict | None) -> Decoded:
    found = Decoded(call, source)
    found._doc = doc
    return found


def batch_of(columns: Columns, rows: np.ndarray, windows: np.ndarray) -> Batch:
    """The Batch of the given rows (the accepted ones, in order) with their windows."""
    whole = len(rows) == len(columns.items)  # every row counted (the usual batch): no copies
    ints = columns.ints if whole else columns.ints[:, rows]
    floats = columns.floats if whole else columns.floats[:, rows]
    codes = columns.codes if whole else columns.codes[:, rows]
    values = list(columns.values)
    directions = values[_DIRECTION]
    if np.count_nonzero(columns.ok) > len(rows):  # values of rows left out: used ones only
        for i in range(len(TEXTS)):
            codes[i], values[i] = _recode(codes[i], values[i])
    elif len(set(directions)) < len(directions):  # two raw words, one direction
        codes[_DIRECTION], values[_DIRECTION] = _recode(codes[_DIRECTION], directions)
    numbers = dict(zip(INTS, ints))
    numbers["answered"] = numbers["answered"].astype(np.bool_)
    numbers.update(zip(FLOATS, floats))
    known = {}
    if columns.outcome:
        for i, row in enumerate(rows.tolist()):
            found = columns.outcome.get(row)
            if found is not None:
                known[i] = found
    items = columns.items if whole else [columns.items[row] for row in rows.tolist()]
    return Batch(Rows(items, _Table(ints, floats, codes, values), known), windows,
                 columns=numbers, codes={name: (codes[i], values[i]) for i, name in enumerate(TEXTS)})


def _recode(codes: np.ndarray, values: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Codes renumbered in order of first use over these rows, one code per distinct value
    (two raw directions may be one word once normalised; rows left out leave values unused).

    Otherwise a column's values are in order of first use but for the rows call.decode()
    read, whose new values come last: nothing reads an order into codes."""
    if not len(codes):
        return codes, []
    used, first = np.unique(codes, return_index=True)
    index: dict[Any, int] = {}
    table = np.zeros(len(values), np.int64)
    for code in used[np.argsort(first)].tolist():
        table[code] = index.setdefault(values[code], len(index))
    return table[codes], list(index)
