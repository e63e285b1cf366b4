"""The inputs of `sixminutes replay PATH...`: files and directories of CDR documents.

Documents come out one at a time, decoded no more than the container needs: a file holding one
document (or one JSON Lines line) is yielded as raw `bytes`, because the engine's tolerant decoder
must see what FreeSWITCH wrote (bare `nan`, repeated `callflow` keys); the elements of arrays and
CouchDB dumps come out as the values already parsed to find them. Bad documents are still yielded,
so the engine counts them instead of losing them.

XML (mod_xml_cdr) and CSV (mod_cdr_csv) files come out as dicts shaped like a JSON CDR
(:mod:`.xml_cdr`, :mod:`.csv_cdr`). A :class:`~.reading.Reading` given as ``progress`` learns
where each document was read and what could not be: a file that cannot be opened, gzip data
damaged half-way (every document before the damage is still read: :mod:`.salvage`), content in
no known format, XML and CSV records that are no document. Such files are read as far as they
go and the replay goes on to the next.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from ..call import _prescan
from ..web.body import decode_post_body
from . import csv_cdr, xml_cdr
from .lines import _FAIL, _clean, _fix_nan, _is_record, _lenient, _line_docs, _loads, _row_docs, _rows
from .reading import Meter, Reading, ReadOptions
from .salvage import Salvage
from ..columns import Chunk
from .shards import PASSED, Shard, split_lines

try:  # ISA-L's inflate, about twice as fast as zlib's on CDRs (bench/engine.py)
    from isal.igzip import IGzipFile as _GzipFile
    from isal.isal_zlib import error as _InflateError
except ImportError:  # (a platform without its wheels: the standard library's)
    _GzipFile, _InflateError = gzip.GzipFile, zlib.error

SMALL_LIMIT = 64 << 20  # larger (decompressed) contents are streamed when the layout allows it
FIRST_LINE_LIMIT = 16 << 20  # how much of a big file's first line is read to learn its layout
PROGRESS_STEP = 4 << 20  # decompressed bytes between two progress reports on a streamed file
READ_CHUNK = 1 << 20
SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".xml", ".xml.gz",
            ".csv", ".csv.gz")
# mod_cdr_csv's rotated files: Master.csv.2023-10-11-00-36-14
_ROTATED_CSV = re.compile(r"\.csv\.\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d(?:\.gz)?$", re.I)
_GZIP_MAGIC = b"\x1f\x8b"
# First line of a dump in CouchDB's one-row-per-line layout: {"results":[ or {...,"rows":[
_ROWS_HEADER = re.compile(rb'\{.*"(?:results|rows|docs)"\s*:\s*\[$')
# Keys that make a one-line `{...}` more than a document: a CouchDB dump or a feed's end.
_CONTAINER_KEY = re.compile(rb'"(?:results|rows|docs|last_seq|pending)"\s*:')


class InputError(Exception):
    """A path given that does not exist or is not a file or directory: nothing is read.

    The message names the path and the reason, so the CLI prints it as is, without a traceback.
    (A file that exists but cannot be read whole is a :class:`~.reading.Problem` instead.)
    """


def total_bytes(paths: list[str]) -> int:
    """On-disk size of everything `read_documents` will read: the total of a progress bar."""
    return sum(_size(path) for path in _expand(paths))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:  # (gone since the walk: reading it will say so)
        return 0


def read_documents(
    paths: list[str], progress: Callable[[int], None] | None = None, shard: Shard | None = None,
    chunks: bool = False,
) -> Iterator[bytes | dict]:
    """Yield every document of every path, in order, as raw bytes or as an already parsed value.

    `progress(n)` receives on-disk bytes consumed: at least once per file, every few MB on a
    streamed file; over a whole run the calls add up to `total_bytes(paths)`. When `progress`
    is a Reading, it also learns where each document was and what could not be read (else
    that is only skipped: the processes of a --jobs replay read it again, the first reports).
    All paths are checked before the first document, so a typo fails fast. With a ``shard``
    (a process of a parallel replay), another process's documents come out as ``PASSED``.
    With ``chunks`` (the engine's ``feed_many`` takes them), the lines of a plain JSON Lines
    file come a buffer at a time, as :class:`~sixminutes.columns.Chunk` items, split in C.
    """
    reading = progress if isinstance(progress, Reading) else Reading(progress, ReadOptions.from_env())
    layout = None
    for path in _expand(paths, reading):
        if layout is None:
            layout = csv_cdr.layout(reading.options.csv_template, reading.options.csv_columns,
                                    reading.options.timezone)
        if chunks:
            yield from _read_file(path, reading, layout, shard, True)
            continue
        for item in _read_file(path, reading, layout, shard, False):
            if type(item) is Chunk:
                yield from item
            else:
                yield item


def _expand(paths: list[str], reading: Reading | None = None) -> list[str]:
    """The files to read: paths given as files, and the CDR files found under directories."""
    files: list[str] = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            raise InputError(f"cannot read {path}: {e.strerror or e}") from None
        if stat.S_ISDIR(mode):
            files += _walk(path, reading)
        elif stat.S_ISREG(mode):
            files.append(path)
        else:
            raise InputError(f"cannot read {path}: not a file or directory")
    return files


def _walk(top: str, reading: Reading | None) -> list[str]:
    """mod_json_cdr's and mod_xml_cdr's log-dir and err-log-dir hold one `<uuid>.cdr.json` or
    `.cdr.xml` per CDR (in dated subdirectories when rotate=true), mod_cdr_csv's `Master.csv`
    and its rotated copies; other files are skipped. A directory that cannot be listed is a
    problem of the reading (the top one given: an error at once)."""

    def fail(e: OSError) -> None:
        if reading is None or e.filename == top:
            raise InputError(f"cannot read {e.filename}: {e.strerror or e}")
        reading.problem(str(e.filename), "unreadable", e.strerror or str(e))

    found = []
    for root, _dirs, names in os.walk(top, onerror=fail):
        found += [os.path.join(root, n) for n in names
                  if n.lower().endswith(SUFFIXES) or _ROTATED_CSV.search(n)]
    return sorted(found)


def _read_file(path: str, reading: Reading, layout: csv_cdr.CsvLayout,
               shard: Shard | None, chunks: bool) -> Iterator[Any]:
    try:
        raw = open(path, "rb", buffering=READ_CHUNK)  # CDR lines outgrow the 8 KB default
    except OSError as e:
        reading.problem(path, "unreadable", e.strerror or str(e))
        return
    with raw:
        size = os.fstat(raw.fileno()).st_size
        meter = Meter(raw, reading, PROGRESS_STEP)
        reader = _Reader(path, reading, layout, meter, shard, chunks)
        gzipped = False
        try:
            # By content, not by suffix: FreeSWITCH setups rename and compress files in many ways.
            gzipped = raw.peek(2)[:2] == _GZIP_MAGIC
            yield from reader.decided(reader.documents(_GzipFile(fileobj=raw)) if gzipped
                                      else reader.documents(raw, size))
        except _DAMAGE as e:
            if not gzipped or (isinstance(e, OSError) and e.errno is not None):
                reading.problem(path, "unreadable", e.strerror or str(e) if isinstance(e, OSError)
                                else str(e))
            else:  # streamed lines were read up to the damage: read on as far as it goes
                yield from reader.decided(reader.salvage(raw))
        meter.finish(size)


_DAMAGE = (OSError, EOFError, zlib.error, _InflateError)
_WHOLE = Shard(0, 1)  # (one process reads it all)


class _Reader:
    """The documents of one file, with where each was, whatever its layout."""

    def __init__(self, path: str, reading: Reading, layout: csv_cdr.CsvLayout, meter: Meter,
                 shard: Shard | None = None, chunks: bool = False) -> None:
        self.path, self.reading, self.layout, self.meter = path, reading, layout, meter
        self.streamed = self.rows = self.split = False
        self.shard = shard
        self.chunks = chunks
        """Whether the compiled splitter reads a plain JSON Lines file for one process too."""

    def decided(self, docs: Iterator[Any]) -> Iterator[Any]:
        """With a shard, another process's documents as PASSED (the splitter decides its own)."""
        if self.shard is None:
            yield from docs
            return
        keeps = self.shard.keeps
        for doc in docs:
            yield doc if self.split or keeps(doc) else PASSED

    def documents(self, f: Any, content_size: int | None = None) -> Iterator[Any]:
        """The documents of an open file (``content_size``: its content's length when known,
        that is when not compressed: a big one is not read ahead to learn that it is big)."""
        head = bytearray()
        try:
            # read1: when the data breaks, what the calls before gave is kept
            while (len(head) <= SMALL_LIMIT and (content_size is None or content_size <= SMALL_LIMIT)
                   and (chunk := f.read1(READ_CHUNK))):
                head += chunk
        except _DAMAGE as e:
            if not isinstance(f, gzip.GzipFile) or (isinstance(e, OSError) and e.errno is not None):
                raise
            yield from self.salvage(f.fileobj)
            return
        if len(head) <= SMALL_LIMIT and (content_size is None or content_size <= SMALL_LIMIT):
            yield from self.content(bytes(head))
            return
        # Too big to parse at once: stream it when its first line says how, else read it all.
        del head
        f.seek(0)
        first = b""
        while not first and (line := f.readline(FIRST_LINE_LIMIT)):
            first = _clean(line)
        f.seek(0)
        self.streamed = True
        if _ROWS_HEADER.match(first):
            self.rows = True
            yield from _row_docs(f, self.meter, self.reading, self.path)
        elif first and _is_record(_lenient(first)):
            if ((self.shard is not None or self.chunks) and _prescan is not None
                    and isinstance(f, io.BufferedReader)):
                self.split = True  # (an uncompressed file: the compiled splitter reads it)
                yield from split_lines(f, self.meter, self.reading, self.path,
                                       self.shard or _WHOLE,
                                       lambda line, n: _line_docs([line], None, self.reading,
                                                                  self.path, n))
            else:
                yield from _line_docs(f, self.meter, self.reading, self.path)
        else:
            self.streamed = False
            yield from self.content(f.read())

    def salvage(self, raw: Any) -> Iterator[Any]:
        """A damaged gzip file: the documents before the damage not yet read, then the problem."""
        salvage = Salvage(raw)
        if self.streamed:  # the lines before the failing read were read: the rest of them
            skip = self.meter.consumed + self.meter.pending
            tail, line = bytearray(), 1
            for chunk in salvage.chunks():
                start = min(max(skip - (salvage.produced - len(chunk)), 0), len(chunk))
                line += chunk.count(b"\n", 0, start)
                tail += chunk[start:]
            lines = tail[:tail.rfind(b"\n") + 1].splitlines(keepends=True)  # not the line cut
            if self.rows:
                yield from _row_docs(lines, None, self.reading, self.path, line, in_rows=True)
            else:
                yield from _line_docs(lines, None, self.reading, self.path, line)
        else:
            content = b"".join(salvage.chunks())
            if salvage.detail:
                content = content[:content.rfind(b"\n") + 1]  # not the line the damage cut
            if salvage.detail and _ROWS_HEADER.match(_clean(content.split(b"\n", 1)[0])):
                # a CouchDB dump cut short is no JSON as a whole: its rows, one a line
                yield from _row_docs(content.splitlines(keepends=True), None, self.reading, self.path)
            else:
                yield from self.content(content)
        detail = salvage.detail or "damaged (the streamed reader failed; zlib read it whole)"
        self.reading.problem(self.path, "damaged", f"{detail}; the documents before it were read")

    def content(self, data: bytes) -> Iterator[Any]:
        """Documents of a whole file content, whatever its layout."""
        stripped = data.removeprefix(codecs.BOM_UTF8).lstrip()
        first_line = 1 + data[:len(data) - len(stripped)].count(b"\n")
        content = stripped.rstrip()
        if not content:
            return
        if content[:3] in (b"%7B", b"%7b", b"eyJ", b"%3C", b"%3c", b"PD9", b"PGN") or content[:4] == b"cdr=":
            content = decode_post_body(content.removeprefix(b"cdr="))
        if xml_cdr.looks_like_xml(content):
            yield from self.xml(content)
        elif content[:1] in (b"{", b"["):
            yield from self.json(content, first_line)
        elif csv_cdr.looks_like_csv(self.path, content):
            yield from self.layout.documents(content, self.path, self.reading, first_line)
        else:
            self.reading.problem(self.path, "unknown_format", _describe(content))

    def xml(self, content: bytes) -> Iterator[Any]:
        try:
            doc = xml_cdr.cdr_from_xml(content)
        except xml_cdr.XmlCdrError as error:
            where = self.path if error.line is None else f"{self.path}:{error.line}"
            self.reading.reject(where, error.reason, error.detail)
            return
        self.reading.run(self.path, 1, "")
        self.reading.documents += 1
        yield doc

    def json(self, content: bytes, first_line: int) -> Iterator[Any]:
        reading, path = self.reading, self.path
        if content[:1] == b"{" and b"\n" not in content and not _CONTAINER_KEY.search(content):
            reading.run(path, first_line)
            reading.documents += 1
            yield content  # mod_json_cdr's one-line document: whatever it holds, the engine decodes it
            return
        value = _loads(content)
        if value is not _FAIL:
            yield from _unwrap(value, content, reading, path)
            return
        lines = content.split(b"\n")
        if len(lines) > 1 and _is_record(_lenient(lines[0])):
            yield from _line_docs(lines, None, reading, path, first_line)
            return
        value = _loads(_fix_nan(content))
        if value is not _FAIL:  # a single document keeps its original bytes for the engine
            yield from _unwrap(value, content, reading, path)
            return
        if content[:1] == b"{" and any(_is_record(_lenient(line)) for line in lines[1:]):
            yield from _line_docs(lines, None, reading, path, first_line)  # a broken first line
            return
        reading.run(path, first_line, "")
        reading.documents += 1
        yield content  # a broken document (truncated, say): the engine rejects it as bad_json


def _describe(content: bytes) -> str:
    """What unknown content looks like, for the report: text or bytes, and how it starts."""
    head = content[:24]
    if b"\0" in content[:4096] or not head.decode("utf-8", "ignore").isprintable():
        return f"not JSON, XML or CSV: binary data starting {head[:12].hex(' ')}"
    return f"not JSON, XML or CSV: text starting {head.decode('utf-8', 'replace')!r}"


def _unwrap(value: Any, raw: bytes, reading: Reading, path: str) -> Iterator[Any]:
    if isinstance(value, list):
        reading.run(path, 0, "item")
        reading.documents += len(value)
        yield from value
        return
    if isinstance(value, dict):
        for key in ("results", "rows", "docs"):  # _changes, _all_docs, _find / _bulk_docs
            if isinstance(value.get(key), list):
                reading.run(f"{path}:{key}", 0, "item")
                reading.documents += len(value[key])
                yield from _rows(value[key])
                return
        if value and value.keys() <= {"last_seq", "pending"}:
            return  # an empty continuous _changes feed
    reading.run(path, 1, "")
    reading.documents += 1
    yield raw
