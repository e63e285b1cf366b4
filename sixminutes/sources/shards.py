"""Which process of a parallel replay counts a document, told while the files are read.

Every process of a ``--jobs`` replay reads all the inputs and counts the documents whose
6-minute window falls to it (:mod:`sixminutes.parallel`). Its reader hands over the others'
documents as :data:`PASSED`, so that they are counted as read (the rules are checked at the
same documents in every process) without being decoded.

In a plain JSON Lines file, the usual replay input, most lines are another process's: the
compiled splitter (``_prescan.split_lines``) reads the file a buffer at a time, finds each
line's end time in C and copies only this process's lines into ``bytes``; in a parallel
replay each process splits only its segments of the file and reads the others' indexes
(:mod:`sixminutes.sources.segments`). A document whose end time is not plain, and every
other layout, is decided by :func:`shard_of`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from ..call import _prescan, decode
from ..columns import SKIP, Chunk
from ..windows import WINDOW
from .reading import Meter, Reading
from .segments import Exchange, segments

__all__ = ["PASSED", "Shard", "shard_of", "end_epoch_of", "split_lines"]

PASSED: Any = SKIP
"""A document another process counts (read, not decoded): the engine's ``SKIP``."""

BUFFER = 1 << 20
_KEY = re.compile(rb'"end_epoch"[ \t\n\r]*:[ \t\n\r]*')
_AFTER_NUMBER = (b"", b",", b"}", b" ", b"\t", b"\n", b"\r")


def _peek_slowly(raw: bytes) -> int:
    """What ``_prescan.end_epoch`` says, without the extension (ten times slower)."""
    keys = list(_KEY.finditer(raw))
    if len(keys) != 1:
        return -1
    start = keys[0].end()
    quoted = raw[start:start + 1] == b'"'
    start += quoted
    stop = start
    while stop < len(raw) and stop - start < 13 and 48 <= raw[stop] <= 57:
        stop += 1
    digits, after = raw[start:stop], raw[stop:stop + 1]
    if not 1 <= len(digits) <= 12 or digits[:1] == b"0":
        return -1
    if (after != b'"') if quoted else (after not in _AFTER_NUMBER):
        return -1
    return int(digits)


_peek = _prescan.end_epoch if _prescan is not None else _peek_slowly


def end_epoch_of(item: bytes | dict | Any) -> int | None:
    """The end time a document is counted at, read cheaply when it is plain; else decoded
    (about one document in many thousands), so that it is always what the engine reads."""
    if isinstance(item, bytes):
        epoch = _peek(item)
        if epoch >= 0:
            return epoch
    try:
        return decode(item).call.end_epoch
    except Exception:  # rejected (or a decoder bug): no window; the engine counts the reason
        return None


def shard_of(item: bytes | dict | Any, jobs: int) -> int:
    """Which of ``jobs`` processes counts this document: the one its window falls to (process 0
    for a document without an end time, which the engine rejects wherever it is counted)."""
    epoch = end_epoch_of(item)
    return 0 if epoch is None else (epoch // WINDOW) % jobs


class Shard:
    """One process's share of a parallel replay: process ``index`` of ``jobs``; with an
    ``exchange``, the processes read a big JSON Lines file a segment each
    (:mod:`sixminutes.sources.segments`), else each reads all of it."""

    def __init__(self, index: int, jobs: int, exchange: Exchange | None = None) -> None:
        self.index, self.jobs, self.exchange = index, jobs, exchange

    def keeps(self, item: Any) -> bool:
        """Whether this process counts a document (PASSED: another does)."""
        if self.jobs == 1:
            return item is not PASSED
        return item is not PASSED and shard_of(item, self.jobs) == self.index


def split_lines(f: BinaryIO, meter: Meter, reading: Reading, path: str, shard: Shard,
                odd_line: Callable[[bytes, int], Iterator[Any]]) -> Iterator[Any]:
    """The documents of a JSON Lines file for one process, another's as PASSED (see above).

    ``odd_line(line, number)`` gives the documents of a line that is no plain document (a
    blank line, an array of documents...), as the reader of any JSON Lines file does; its
    documents are then decided one by one. Reading positions are kept as that reader keeps
    them: each document's file and line."""
    n = reading.documents  # the number of the next document
    expected = -1  # the line the next document is on while they follow one a line
    number = 0
    parts = (segments(f, meter, reading, path, shard) if shard.exchange is not None
             and shard.jobs > 1 else _splits(f, meter, shard))
    for items, odd, copied in parts:
        if not odd:  # (the usual buffer: its documents at once)
            if number + 1 != expected:
                reading.run(path, number + 1, at=n)
            number += len(items)
            n += len(items)
            expected = number + 1
            yield Chunk(items, copied)
            continue
        for item in items:
            number += 1
            if type(item) is tuple:
                reading.documents = n
                for doc in odd_line(item[0], number):
                    yield doc if shard.keeps(doc) else PASSED
                n, expected = reading.documents, -1
                continue
            if number != expected:
                reading.run(path, number, at=n)
            expected = number + 1
            n += 1
            yield item
    reading.documents = n


def _splits(f: BinaryIO, meter: Meter, shard: Shard) -> Iterator[tuple[list[Any], int, int]]:
    """``_prescan.split_lines`` over the file a buffer at a time: (items, odd lines, bytes
    copied), the last line as an odd one when no newline ends it.

    The file is read, not mapped: mapping saved ~0.06 s of a process's 60,000-line read, but a
    file truncated while mapped (rotated, rewritten) kills the process with SIGBUS, where a
    read sees its end and the replay says what it counted."""
    buf = bytearray(BUFFER)
    have = 0
    while True:
        if have == len(buf):  # a line longer than the buffer
            buf.extend(bytes(len(buf)))
        with memoryview(buf) as view:
            got = f.readinto(view[have:])
        if not got:
            if have:
                yield [(bytes(buf[:have]),)], 1, 0
            return
        meter.add(got)
        have += got
        with memoryview(buf) as view:
            items, used, odd, copied = _prescan.split_lines(view[:have], shard.jobs, shard.index,
                                                            WINDOW, PASSED)
        buf[:have - used] = buf[used:have]
        have -= used
        if items:
            yield items, odd, copied
