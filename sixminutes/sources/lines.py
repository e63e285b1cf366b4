"""One document a line: JSON Lines (a continuous ``_changes`` feed among them) and CouchDB's
dumps of one row a line, streamed; and the lenient JSON reading the files' layouts share
(FreeSWITCH >= 1.6 prints a bare ``nan`` in callStats)."""
from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from .reading import Meter, Reading

# A JSON string (kept as is) or a bare NaN/Infinity token as printf writes it (replaced by null).
_NAN_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|-?(?i:nan|inf(?:inity)?)\b', re.S)
# The closing line of a continuous _changes feed: {"last_seq":...} or {"last_seq":...,"pending":...}
_LAST_SEQ = re.compile(rb'\{\s*"(?:last_seq|pending)"\s*:')
_FAIL = object()


def _rows(rows: Iterable[Any]) -> Iterator[Any]:
    """A row's `doc`; the row itself when it has none (a deletion, no include_docs)."""
    for row in rows:
        doc = row.get("doc") if isinstance(row, dict) else None
        yield row if doc is None else doc


def _line_docs(lines: Iterable[bytes], meter: Meter | None = None, reading: Reading | None = None,
               path: str = "", first: int = 1) -> Iterator[Any]:
    """JSON Lines, including a continuous _changes feed (the engine unwraps a row's `doc`)."""
    reading = reading or Reading()
    n = reading.documents  # the number of the next document (counted here: the hot loop)
    expected = -1  # the line the next document is on while they follow one a line
    try:
        for number, line in enumerate(lines, first):
            if meter:
                meter.add(len(line))
            if line[:2] == b'{"' and line[-2:] == b"}\n" and line[2:3] not in b"lp":
                if number != expected:
                    reading.run(path, number, at=n)
                expected = number + 1
                n += 1
                yield line[:-1]  # the usual line, as the checks below give it, without their cost
                continue
            line = _clean(line)
            if not line or _LAST_SEQ.match(line):
                continue
            if line[:1] == b"[":  # couchbackup writes one array of documents per line
                value = _lenient(line)
                if isinstance(value, list):
                    for item in value:
                        reading.run(path, number, at=n)
                        n += 1
                        yield item
                    expected = -1
                    continue
            if number != expected:
                reading.run(path, number, at=n)
            expected = number + 1
            n += 1
            yield line
    finally:
        reading.documents = n


def _row_docs(lines: Iterable[bytes], meter: Meter | None, reading: Reading, path: str,
              first: int = 1, in_rows: bool = False) -> Iterator[Any]:
    """A big _changes or _all_docs dump in CouchDB's own layout: one row per line, then `]`."""
    for number, line in enumerate(lines, first):
        if meter:
            meter.add(len(line))
        line = _clean(line)
        if not in_rows:
            in_rows = bool(line)  # skip the header line
            continue
        if line[:1] == b"]":
            return
        line = line.removesuffix(b",")
        if line:
            value = _lenient(line)
            reading.run(path, number)
            reading.documents += 1
            yield from ([line] if value is _FAIL else _rows([value]))


def _clean(data: bytes) -> bytes:
    return data.removeprefix(codecs.BOM_UTF8).strip()


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _FAIL


def _lenient(data: bytes) -> Any:
    value = _loads(data)
    return _loads(_fix_nan(data)) if value is _FAIL else value


def _fix_nan(data: bytes) -> bytes:
    """FreeSWITCH >= 1.6 prints a bare `nan` in callStats: make it `null`, leaving strings alone."""
    return _NAN_TOKEN.sub(lambda m: m[0] if m[0][:1] == b'"' else b"null", data)


def _is_record(value: Any) -> bool:
    return isinstance(value, (dict, list)) and bool(value)
