"""The ingest journal: POSTed CDRs made durable before they are counted, in segment files.

A POST is answered once its body is on disk, so that a ``kill -9`` loses nothing; the
snapshot then saves, with the windows, the id of the last record they hold, and a restart
counts the records after it again. The records live in append-only segment files beside
the state file (``<state>.journal/``), not in SQLite: a group commit is one ``write`` to a
segment opened with ``O_DSYNC`` (the data is on disk when it returns: a ``write`` and an
``fdatasync`` in one call), and once a snapshot covers a whole segment the file is
unlinked, which costs nothing.

The group commit runs on a thread of its own while the event loop holds the GIL most of the
time, and each time the thread takes the GIL back it may wait for the loop: so it lets the
GIL go once per commit, in that one ``write``. (The CRC lets it go too, for every body
over 5 KB: the CRCs are computed over slices shorter than that.) The CRC is ISA-L's
(python-isal): zlib's took ~7 us of a 9 KB CDR, with the GIL held, ISA-L's ~0.3 us.
(In SQLite, deleting the counted bodies, ~10 KB each, made every snapshot
rewrite megabytes of pages while POSTs waited behind it: bench/ingest.py's p99.)

A record: a header (id, time received, the lengths of source and body), the source, the
body, then a CRC-32 of them all. A crash mid-append leaves a torn record at the end of the
last segment: its length or CRC fails, reading stops before it, and the next append
starts where it began (the file is truncated there when the journal is opened).
"""
from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator

try:  # ISA-L's CRC-32 (PCLMULQDQ): the same checksum as zlib's, ~20 times as fast here
    from isal.isal_zlib import crc32
except ImportError:  # (isal is a dependency; without its wheel, zlib's, more slowly)
    from zlib import crc32

__all__ = ["Journal", "SEGMENT_BYTES"]

SEGMENT_BYTES = 32 << 20
"""A segment holds about this much before the next append starts a new one."""
_HEADER = struct.Struct("<QdHI")  # id, received (epoch seconds), len(source), len(body)
_CRC = struct.Struct("<I")
_SUFFIX = ".log"
_CRC_SLICE = 4096
"""Bytes per CRC call: over 5 KB, zlib's and ISA-L's crc32 let the GIL go, to get it back later."""
_OPEN = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_DSYNC | getattr(os, "O_CLOEXEC", 0)


class Journal:
    """The records of one state file, ids counting up from 1, kept until released."""

    def __init__(self, directory: str, after: int = 0,
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        """Open (or create) the journal in ``directory``; a new one numbers its records from
        ``after + 1`` (the ids a former journal may have used go no further)."""
        self.directory = directory
        self.segment_bytes = segment_bytes
        os.makedirs(directory, exist_ok=True)
        self._segments = sorted(int(name[:-len(_SUFFIX)]) for name in os.listdir(directory)
                                if name.endswith(_SUFFIX) and name[:-len(_SUFFIX)].isdigit())
        self.next_id = after + 1
        self._fd: int | None = None
        self._size = 0
        """The bytes in the segment being written."""
        if self._segments:
            path = self._path(self._segments[-1])
            end, last = self._scan(path)
            with open(path, "r+b") as f:  # a torn record at the end is cut off
                f.truncate(end)
            self.next_id = max(self.next_id, (last or self._segments[-1] - 1) + 1)
            self._open(path, end)

    def _path(self, first: int) -> str:
        return os.path.join(self.directory, f"{first:020d}{_SUFFIX}")

    def _open(self, path: str, size: int) -> None:
        self._fd, self._size = os.open(path, _OPEN, 0o666), size

    def append(self, rows: list[tuple[str, bytes]], now: float | None = None) -> list[int]:
        """Write (source, body) records and make them durable (one write, O_DSYNC); their ids."""
        if self._fd is None or self._size >= self.segment_bytes:
            self._start_segment()
        assert self._fd is not None
        received = time.time() if now is None else now
        ids, parts = [], []
        for source, body in rows:
            encoded = source.encode()
            head = _HEADER.pack(self.next_id, received, len(encoded), len(body))
            parts += (head, encoded, body, _CRC.pack(_crc(body, crc32(encoded, crc32(head)))))
            ids.append(self.next_id)
            self.next_id += 1
        data = memoryview(b"".join(parts))
        try:
            while data:  # (a regular file takes it all at once, short of an error)
                written = os.write(self._fd, data)
                self._size += written
                data = data[written:]
        except BaseException:
            self.next_id = ids[0]  # (the torn records are cut off at the next open)
            self._close()
            self._reopen_cut()
            raise
        return ids

    def _reopen_cut(self) -> None:
        """After a failed write: cut the segment back to its last whole record."""
        if not self._segments:
            return
        path = self._path(self._segments[-1])
        try:
            end, last = self._scan(path)
            with open(path, "r+b") as f:
                f.truncate(end)
            self.next_id = (last or self._segments[-1] - 1) + 1
            self._open(path, end)
        except OSError:
            self._fd = None  # the next append starts a new segment

    def _start_segment(self) -> None:
        self._close()
        self._segments.append(self.next_id)
        self._open(self._path(self.next_id), 0)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new file's name is durable too
        finally:
            os.close(directory)

    def after(self, position: int) -> Iterator[tuple[int, str, bytes]]:
        """The records with an id above ``position``, in order: (id, source, body)."""
        for i, first in enumerate(self._segments):
            following = self._segments[i + 1] if i + 1 < len(self._segments) else None
            if following is not None and following - 1 <= position:
                continue  # every record of this one is covered
            for record_id, source, body in self._records(self._path(first)):
                if record_id > position:
                    yield record_id, source, body

    def release(self, upto: int) -> int:
        """Unlink the segments whose records all have ids up to ``upto`` (a snapshot covers
        them); the one being written stays. Returns how many were removed."""
        paths = self.detach(upto)
        for path in paths:
            os.unlink(path)
        return len(paths)

    def detach(self, upto: int) -> list[str]:
        """The paths of the segments whose records all have ids up to ``upto``, no longer the
        journal's: for another thread to unlink. (Unlinking a full segment took 10 ms, and up
        to 87 ms under load, during which the next group commit waited: its POSTs' p99.
        Left on disk by a crash, they are covered, skipped and released again.)"""
        paths = []
        while len(self._segments) > 1 and self._segments[1] - 1 <= upto:
            paths.append(self._path(self._segments.pop(0)))
        return paths

    @property
    def segments(self) -> int:
        return len(self._segments)

    def close(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _records(self, path: str) -> Iterator[tuple[int, str, bytes]]:
        with open(path, "rb") as f:
            data = f.read()
        for record_id, source, body, _ in _parse(data, _first_id(path)):
            yield record_id, source, body

    def _scan(self, path: str) -> tuple[int, int | None]:
        """(the offset after the last whole record, the last record's id)."""
        with open(path, "rb") as f:
            data = f.read()
        end, last = 0, None
        for record_id, _, _, stop in _parse(data, _first_id(path)):
            end, last = stop, record_id
        return end, last


def _crc(data: bytes, crc: int) -> int:
    """``crc32(data, crc)`` without letting the GIL go (see _CRC_SLICE)."""
    if len(data) <= _CRC_SLICE:
        return crc32(data, crc)
    view = memoryview(data)
    for at in range(0, len(data), _CRC_SLICE):
        crc = crc32(view[at:at + _CRC_SLICE], crc)
    return crc


def _first_id(path: str) -> int:
    return int(os.path.basename(path)[:-len(_SUFFIX)])


def _parse(data: bytes, first: int) -> Iterator[tuple[int, str, bytes, int]]:
    """(id, source, body, offset after it) of each whole record, up to the first torn one
    (or one out of sequence: a segment's ids follow each other from its first)."""
    at, size, expected = 0, len(data), first
    while at + _HEADER.size <= size:
        record_id, _, source_len, body_len = _HEADER.unpack_from(data, at)
        if record_id != expected:
            return
        expected += 1
        start = at + _HEADER.size
        stop = start + source_len + body_len + _CRC.size
        if stop > size:
            return
        source = data[start:start + source_len]
        body = data[start + source_len:stop - _CRC.size]
        crc = crc32(body, crc32(source, crc32(data[at:start])))
        if _CRC.unpack_from(data, stop - _CRC.size)[0] != crc:
            return
        yield record_id, source.decode(), body, stop
        at = stop
