"""A plain JSON Lines file read by the processes of a parallel replay, a segment each.

Every process of a ``--jobs`` replay goes through every line of the inputs in order (it
checks the rules at the same documents as the others: :mod:`sixminutes.parallel`), but it
needs the bytes of its own documents only. So a big file is cut into segments of
``Exchange.segment`` bytes, and process ``k % jobs`` reads segment ``k`` alone: it splits
the lines in C (``_prescan.split_lines``), keeps its own documents and leaves the segment's
index (each line's start, end and plain end time) in the exchange's folder. The others read
that index and, from the file, only the lines they count: their documents, and the odd lines
every process decodes. So each byte is scanned by one process instead of all of them, and
read about twice instead of ``jobs`` times.

A segment's lines are those that start in it: its reader starts after the first newline
before the segment (or at the start of the file) and reads on to the end of its last line.
The segment where the file ends says so; the others stop there too, so all agree on the
lines even when the file grows while it is read. A process reads a segment of its own at
the latest when it comes to it, and waits only for earlier ones, so none waits for one that
waits for it; it reads its next ``AHEAD`` segments before it waits, so that the processes
drift apart instead of moving in lockstep.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..call import _prescan
from ..columns import SKIP as PASSED
from ..windows import WINDOW
from .reading import Meter, Reading

if TYPE_CHECKING:
    from .shards import Shard

__all__ = ["Exchange", "SEGMENT", "Stopped", "segments"]

SEGMENT = 16 << 20
"""Bytes of a file one process reads alone (its documents then wait for the other segments)."""
BUFFER = 1 << 20
AHEAD = 4
"""Segments a process reads ahead of the one it counts: the processes then wait for each
other only when one is that far behind."""
GAP = 256 << 10
"""Lines another process needs that are this close are read with one call."""


class Stopped(Exception):
    """Another process of the replay failed: this one stops (the other's report says why)."""


class Exchange:
    """Where the processes of one replay leave their segments' indexes and wait for the
    others'. Made before the processes start; handed to them with their arguments."""

    def __init__(self, folder: str, jobs: int, context: Any, segment: int = SEGMENT) -> None:
        self.folder = folder
        self.segment = segment
        self._ready = context.Condition()
        self._done = context.RawArray("b", jobs)
        """Per process: 1 once it has left every index it will (its count ended)."""
        self._failed = context.RawValue("b", 0)
        self._files = [0] * jobs  # per process: the files it has read as segments
        self.alive: Callable[[int], None] | None = None
        """In the parent: raises when a process has ended (see :mod:`sixminutes.parallel`)."""
        self.parent = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["alive"] = None  # (the parent's: it knows the processes)
        return state

    def next_file(self, process: int) -> int:
        """The number of the next file a process reads as segments (they read them in the
        same order: each has the same number everywhere)."""
        self._files[process] += 1
        return self._files[process]

    def _path(self, file: int, segment: int, reader: int) -> str:
        return os.path.join(self.folder, f"{file}-{segment}-{reader}.index")

    def publish(self, file: int, segment: int, owner: int, index: bytearray, end: bool) -> None:
        """Leave a segment's index for each other process: (start, end, plain end time or -1)
        per line, and whether the file ends with it. (A copy each: its reader removes it.)"""
        head = np.int64(1 if end else 0).tobytes()
        for reader in range(len(self._done)):
            if reader != owner:
                path = self._path(file, segment, reader)
                with open(path + ".part", "wb") as f:
                    f.write(head)
                    f.write(index)
                os.replace(path + ".part", path)
        with self._ready:
            self._ready.notify_all()

    def index(self, file: int, segment: int, owner: int, reader: int) -> tuple[np.ndarray, bool]:
        """Another process's index of a segment (waiting for it), and whether the file ends
        there. Raises :class:`Stopped` when a process failed, InputError when the owner ended
        without leaving it."""
        path = self._path(file, segment, reader)
        with self._ready:
            while not os.path.exists(path):
                if self._failed.value:
                    raise Stopped()
                if self._done[owner]:
                    from .files import InputError  # (files imports this module)
                    raise InputError(f"replay process {owner} ended without reading segment "
                                     f"{segment} of the inputs (did a file change while it "
                                     f"was read?)")
                if not self._ready.wait(0.5):  # (a process killed cannot say it is gone)
                    if self.alive is not None:
                        self.alive(owner)
                    elif os.getppid() != self.parent:
                        raise Stopped()
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)
        header = np.frombuffer(data, np.int64, 1)
        return np.frombuffer(data, np.int64, offset=8).reshape(-1, 3), bool(header[0])

    def done(self, process: int) -> None:
        """A process has left every index it will (or failed: then :meth:`fail` first)."""
        with self._ready:
            self._done[process] = 1
            self._ready.notify_all()

    def fail(self) -> None:
        """A process failed: the others stop waiting."""
        with self._ready:
            self._failed.value = 1
            self._ready.notify_all()


Chunks = list[tuple[list[Any], int, int]]


def segments(f: Any, meter: Meter, reading: Reading, path: str, shard: Shard
             ) -> Iterator[tuple[list[Any], int, int]]:
    """What ``shards._splits`` gives (each line as this process's document, PASSED or an odd
    ``(line,)``, a list at a time, with the odd lines among them and the bytes copied),
    reading this process's segments and the others' indexes."""
    exchange = shard.exchange
    assert exchange is not None
    me, jobs = shard.index, shard.jobs
    file = exchange.next_file(me)
    fd = f.fileno()
    ahead: dict[int, tuple[Chunks, int, bool]] = {}  # this process's segments read ahead
    scratch = [bytearray(BUFFER)]  # one buffer for every read (new pages cost page faults)
    unread = me  # this process's next segment not read yet
    k = 0
    while True:
        owner = k % jobs
        if owner == me:
            if k not in ahead:
                ahead[k] = _read(fd, file, k, shard, scratch)
                unread = k + jobs
            chunks, reached, end = ahead.pop(k)
        else:  # this process's next segments first (their readers need not wait for them)
            while len(ahead) < AHEAD and not any(found[2] for found in ahead.values()):
                ahead[unread] = _read(fd, file, unread, shard, scratch)
                unread += jobs
            lines, end = exchange.index(file, k, owner, me)
            chunks = _take(fd, lines, shard, reading, path, scratch)
            reached = int(lines[-1, 1]) if len(lines) else 0
        yield from chunks
        meter.reach(reached)
        if end:
            return
        k += 1


def _read(fd: int, file: int, k: int, shard: Shard, scratch: list[bytearray]
          ) -> tuple[Chunks, int, bool]:
    """Read and split segment ``k`` and leave its index: (its lines as ``_splits`` gives them,
    where its last line ends, whether the file ends with it). ``scratch[0]``: the buffer."""
    exchange = shard.exchange
    assert exchange is not None
    start, limit = k * exchange.segment, (k + 1) * exchange.segment
    index = bytearray()
    chunks: Chunks = []
    buf = scratch[0]
    at = max(start - 1, 0)  # the file offset of buf[0]
    have = 0
    aligned = k == 0  # (else the first line starts after the first newline from start - 1)
    end = False
    while True:
        if have == len(buf):  # a line longer than the buffer
            buf.extend(bytes(len(buf)))
        with memoryview(buf) as view:
            got = os.preadv(fd, [view[have:]], at + have)
        if not got:
            end = True
            if have and aligned:  # the last line, without a newline: an odd one
                chunks.append(([(bytes(buf[:have]),)], 1, 0))
                index += np.array([at, at + have, -1], np.int64).tobytes()
                at += have
            break
        have += got
        if not aligned:
            newline = buf.find(b"\n", 0, have)
            if newline < 0:
                at, have = at + have, 0
                continue
            buf[:have - newline - 1] = buf[newline + 1:have]
            at, have, aligned = at + newline + 1, have - newline - 1, True
        if at >= limit:
            break
        record = bytearray()
        with memoryview(buf) as view:
            items, used, odd, copied = _prescan.split_lines(
                view[:have], shard.jobs, shard.index, WINDOW, PASSED, record, limit - at)
        if record:
            lines = np.frombuffer(record, np.int64).reshape(-1, 3).copy()
            lines[:, :2] += at
            index += lines.tobytes()
        if items:
            chunks.append((items, odd, copied))
        buf[:have - used] = buf[used:have]
        at, have = at + used, have - used
        if at >= limit:
            break
    scratch[0] = buf
    if not end:
        end = not os.pread(fd, 1, at)  # (nothing after its last line: the file ends here)
    exchange.publish(file, k, shard.index, index, end)
    return chunks, at, end


def _take(fd: int, lines: np.ndarray, shard: Shard, reading: Reading, path: str,
          scratch: list[bytearray]) -> Chunks:
    """Another process's segment as this one reads it: its documents and the odd lines read
    from the file (runs of them at once), the rest PASSED."""
    n = len(lines)
    if not n:
        return []
    epochs = lines[:, 2]
    odd = epochs < 0
    own = ~odd & ((epochs // WINDOW) % shard.jobs == shard.index)
    items: list[Any] = [PASSED] * n
    wanted = np.flatnonzero(own | odd)
    copied = 0
    if len(wanted):
        starts, ends = lines[wanted, 0], lines[wanted, 1]
        breaks = np.flatnonzero(starts[1:] - ends[:-1] > GAP) + 1
        buf = scratch[0]
        for run in np.split(np.arange(len(wanted)), breaks):
            first, last = int(starts[run[0]]), int(ends[run[-1]])
            if len(buf) < last - first:
                buf = scratch[0] = bytearray(last - first)
            with memoryview(buf) as view:
                got = os.preadv(fd, [view[:last - first]], first)
                if got < last - first:
                    reading.problem(path, "unreadable", "the file shrank while it was read")
                    view[got:last - first] = bytes(last - first - got)
                for row, s, e in zip(wanted[run].tolist(), (starts[run] - first).tolist(),
                                     (ends[run] - first).tolist()):
                    if odd[row]:
                        items[row] = (view[s:e].tobytes(),)
                    else:
                        items[row] = view[s:e - 1].tobytes()  # (without its newline)
                        copied += e - 1 - s
    return [(items, int(np.count_nonzero(odd)), copied)]

