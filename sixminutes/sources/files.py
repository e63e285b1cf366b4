"""The inputs of `sixminutes replay PATH...`: files and directories of CDR documents.

Documents come out one at a time, decoded no more than the container needs: a file holding one
document (or one JSON Lines line) is yielded as raw `bytes`, because the engine's tolerant decoder
must see what FreeSWITCH wrote (bare `nan`, repeated `callflow` keys); the elements of arrays and
CouchDB dumps come out as the values already parsed to find them. Bad documents are still yielded,
so the engine counts them instead of losing them.
"""

from __future__ import annotations

import codecs
import gzip
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from ..web.body import decode_post_body

try:  # ISA-L's inflate, about twice as fast as zlib's on CDRs (bench/engine.py)
    from isal.igzip import IGzipFile as _GzipFile
    from isal.isal_zlib import error as _InflateError
except ImportError:  # (a platform without its wheels: the standard library's)
    _GzipFile, _InflateError = gzip.GzipFile, zlib.error

SMALL_LIMIT = 64 << 20  # larger (decompressed) contents are streamed when the layout allows it
FIRST_LINE_LIMIT = 16 << 20  # how much of a big file's first line is read to learn its layout
PROGRESS_STEP = 4 << 20  # decompressed bytes between two progress reports on a streamed file
READ_CHUNK = 1 << 20
SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_GZIP_MAGIC = b"\x1f\x8b"
# A JSON string (kept as is) or a bare NaN/Infinity token as printf writes it (replaced by null).
_NAN_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|-?(?i:nan|inf(?:inity)?)\b', re.S)
# The closing line of a continuous _changes feed: {"last_seq":...} or {"last_seq":...,"pending":...}
_LAST_SEQ = re.compile(rb'\{\s*"(?:last_seq|pending)"\s*:')
# First line of a dump in CouchDB's one-row-per-line layout: {"results":[ or {...,"rows":[
_ROWS_HEADER = re.compile(rb'\{.*"(?:results|rows|docs)"\s*:\s*\[$')
# Keys that make a one-line `{...}` more than a document: a CouchDB dump or a feed's end.
_CONTAINER_KEY = re.compile(rb'"(?:results|rows|docs|last_seq|pending)"\s*:')
_FAIL = object()


class InputError(Exception):
    """A path that cannot be read at all (missing, permission, not a file/dir, broken gzip).

    The message names the path and the reason, so the CLI prints it as is, without a traceback.
    """


def total_bytes(paths: list[str]) -> int:
    """On-disk size of everything `read_documents` will read: the total of a progress bar."""
    return sum(os.stat(path).st_size for path in _expand(paths))


def read_documents(
    paths: list[str], progress: Callable[[int], None] | None = None
) -> Iterator[bytes | dict]:
    """Yield every document of every path, in order, as raw bytes or as an already parsed value.

    `progress(n)` receives on-disk bytes consumed: at least once per file, every few MB on a
    streamed file; over a whole run the calls add up to `total_bytes(paths)`.
    All paths are checked before the first document, so a typo fails fast.
    """
    report = progress or (lambda n: None)
    for path in _expand(paths):
        yield from _read_file(path, report)


def _expand(paths: list[str]) -> list[str]:
    """The files to read: paths given as files, and the JSON files found under directories."""
    files: list[str] = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            raise InputError(f"cannot read {path}: {e.strerror or e}") from None
        if stat.S_ISDIR(mode):
            files += _walk(path)
        elif stat.S_ISREG(mode):
            files.append(path)
        else:
            raise InputError(f"cannot read {path}: not a file or directory")
    return files


def _walk(top: str) -> list[str]:
    """mod_json_cdr's log-dir and err-log-dir hold one `<uuid>.cdr.json` per CDR (in dated
    subdirectories when rotate=true); other files are skipped."""

    def fail(e: OSError) -> None:
        raise InputError(f"cannot read {e.filename}: {e.strerror or e}")

    found = []
    for root, _dirs, names in os.walk(top, onerror=fail):
        found += [os.path.join(root, n) for n in names if n.lower().endswith(SUFFIXES)]
    return sorted(found)


def _read_file(path: str, progress: Callable[[int], None]) -> Iterator[Any]:
    try:
        raw = open(path, "rb", buffering=READ_CHUNK)  # CDR lines outgrow the 8 KB default
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    with raw:
        size = os.fstat(raw.fileno()).st_size
        # By content, not by suffix: FreeSWITCH setups rename and compress files in many ways.
        gzipped = raw.peek(2)[:2] == _GZIP_MAGIC
        meter = _Meter(raw, progress)
        try:
            yield from _documents(_GzipFile(fileobj=raw) if gzipped else raw, meter)
        except (OSError, EOFError, zlib.error, _InflateError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else f"broken gzip ({e})"
            raise InputError(f"cannot read {path}: {reason}") from None
        meter.finish(size)


class _Meter:
    """Counts on-disk (compressed) bytes, so that progress adds up to `total_bytes`."""

    def __init__(self, raw: Any, progress: Callable[[int], None]) -> None:
        self.raw, self.progress, self.reported, self.pending = raw, progress, 0, 0

    def add(self, decompressed: int) -> None:
        self.pending += decompressed
        if self.pending >= PROGRESS_STEP:  # tell() is a system call: not once per line
            self.pending = 0
            position = self.raw.tell()
            if position > self.reported:
                self.progress(position - self.reported)
                self.reported = position

    def finish(self, size: int) -> None:
        self.progress(max(size - self.reported, 0))
        self.reported = max(size, self.reported)


def _documents(f: Any, meter: _Meter) -> Iterator[Any]:
    head = bytearray()
    while len(head) <= SMALL_LIMIT and (chunk := f.read(READ_CHUNK)):
        head += chunk
    if len(head) <= SMALL_LIMIT:
        yield from _from_content(_clean(bytes(head)))
        return
    # Too big to parse at once: stream it when its first line says how, else read it all.
    del head
    f.seek(0)
    first = b""
    while not first and (line := f.readline(FIRST_LINE_LIMIT)):
        first = _clean(line)
    f.seek(0)
    if _ROWS_HEADER.match(first):
        yield from _row_docs(f, meter)
    elif first and _is_record(_lenient(first)):
        yield from _line_docs(f, meter)
    else:
        yield from _from_content(_clean(f.read()))


def _from_content(content: bytes) -> Iterator[Any]:
    """Documents of a whole (stripped) file content, whatever its layout."""
    if not content:
        return
    if content[:3] in (b"%7B", b"%7b", b"eyJ") or content[:4] == b"cdr=":
        content = decode_post_body(content.removeprefix(b"cdr="))
    if content[:1] == b"{" and b"\n" not in content and not _CONTAINER_KEY.search(content):
        yield content  # mod_json_cdr's one-line document: whatever it holds, the engine decodes it
        return
    value = _loads(content)
    if value is not _FAIL:
        yield from _unwrap(value, content)
        return
    lines = content.split(b"\n")
    if len(lines) > 1 and _is_record(_lenient(lines[0])):
        yield from _line_docs(lines)
        return
    value = _loads(_fix_nan(content))
    if value is not _FAIL:  # a single document keeps its original bytes for the engine
        yield from _unwrap(value, content)
        return
    if content[:1] == b"{" and any(_is_record(_lenient(line)) for line in lines[1:]):
        yield from _line_docs(lines)  # JSON Lines whose first line is broken
        return
    yield content  # not JSON at all (CSV, XML, a truncated document): the engine rejects it


def _unwrap(value: Any, raw: bytes) -> Iterator[Any]:
    if isinstance(value, list):
        yield from value
        return
    if isinstance(value, dict):
        for key in ("results", "rows", "docs"):  # _changes, _all_docs, _find / _bulk_docs
            if isinstance(value.get(key), list):
                yield from _rows(value[key])
                return
        if value and value.keys() <= {"last_seq", "pending"}:
            return  # an empty continuous _changes feed
    yield raw


def _rows(rows: Iterable[Any]) -> Iterator[Any]:
    """A row's `doc`; the row itself when it has none (a deletion, no include_docs)."""
    for row in rows:
        doc = row.get("doc") if isinstance(row, dict) else None
        yield row if doc is None else doc


def _line_docs(lines: Iterable[bytes], meter: _Meter | None = None) -> Iterator[Any]:
    """JSON Lines, including a continuous _changes feed (the engine unwraps a row's `doc`)."""
    for line in lines:
        if meter:
            meter.add(len(line))
        if line[:2] == b'{"' and line[-2:] == b"}\n" and line[2:3] not in b"lp":
            yield line[:-1]  # the usual line, as the checks below give it, without their cost
            continue
        line = _clean(line)
        if not line or _LAST_SEQ.match(line):
            continue
        if line[:1] == b"[":  # couchbackup writes one array of documents per line
            value = _lenient(line)
            if isinstance(value, list):
                yield from value
                continue
        yield line


def _row_docs(lines: Iterable[bytes], meter: _Meter) -> Iterator[Any]:
    """A big _changes or _all_docs dump in CouchDB's own layout: one row per line, then `]`."""
    in_rows = False
    for line in lines:
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
