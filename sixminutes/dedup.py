"""The dedup memory: which document ids each window has counted, in under 6 bytes an id.

CouchDB may send a document again (a new ``_rev``, a cluster rewind) and FreeSWITCH retries a
POST, so every id counted is remembered for as long as its window is kept. At 1,000 CDRs a
second that is 86 million ids a day: kept as strings in sets they would take about 10 GiB.
Each id is kept as a 56-bit hash instead, in a set while its window is current and, once the
window is past, in a sorted :class:`Packed` table that a late CDR is looked up in by bisection
(a current window's set joins its table every ``SPILL`` ids). A big window's table is quotient-compressed: the top 16 bits of a hash are implied by its
bucket (65,537 offsets, 256 KiB a window), the other 40 are stored in 5 bytes (a uint32 and a
uint8 array): 5.7 bytes an id at 360,000 ids. A window of fewer than 87,382 ids keeps its
hashes as a sorted uint64 array instead (8 bytes an id: less than the offsets would cost).

Two different ids share a hash with a chance of about n²/2⁵⁷ in a window of n ids: 9·10⁻⁷ for
360,000 ids (a window at 1,000 CDR/s), so 2·10⁻⁴ false duplicates a day at that rate (240
such windows), one in about 13 years. The cost of such a collision is one CDR counted as a
duplicate.
"""
from __future__ import annotations

import hashlib
import struct
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

__all__ = ["SeenIds", "Packed", "id_hash", "id_hash_v2", "from_v2", "HASH_BITS"]

HASH_BITS = 56
_LOW_BITS = 40  # stored; the 16 above are the bucket
_BUCKETS = 1 << (HASH_BITS - _LOW_BITS)
_LOW_MASK = (1 << _LOW_BITS) - 1
QUOTIENT_FROM = 87_382
"""Ids from which a window is quotient-compressed: 5 n + 4 · 65,537 < 8 n."""
SPILL = 65_536
"""Ids an open window's set holds before they join its packed table: ~80 bytes an id in a
set, so at most ~5 MiB a window, for ~1–2 µs more a CDR once a window has a table."""
_HEAD = struct.Struct("<4sI")  # a blob: its kind (b"sixP" plain, b"sixQ" quotient), the ids


def _digest(doc_id: Any) -> int:
    text = doc_id if type(doc_id) is str else str(doc_id)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8)
                          .digest(), "little")


def id_hash(doc_id: Any) -> int:
    """A stable 56-bit hash of an id (Python's own hash changes with every process): the top
    56 bits of the 64-bit blake2b digest, so a hash of schema 2 converts (:func:`from_v2`)."""
    return _digest(doc_id) >> 8


def id_hash_v2(doc_id: Any) -> int:
    """The signed 64-bit hash state files of schema 2 hold (their migration needs it)."""
    value = _digest(doc_id)
    return value - (1 << 64) if value >> 63 else value


def from_v2(hashes: np.ndarray) -> np.ndarray:
    """Schema 2's signed 64-bit hashes as the 56-bit hashes of :func:`id_hash`, sorted, unique."""
    return _unique(np.asarray(hashes, np.int64).view(np.uint64) >> np.uint64(8))


class Packed:
    """The sorted hashes of a frozen window: ``values`` (uint64) when few, else the quotient
    form (``offsets`` per 16-bit bucket, ``low`` 32 and ``high`` 8 of the other 40 bits)."""

    __slots__ = ("values", "offsets", "low", "high", "_views")

    def __init__(self, values: np.ndarray | None, offsets: np.ndarray | None = None,
                 low: np.ndarray | None = None, high: np.ndarray | None = None) -> None:
        self.values, self.offsets, self.low, self.high = values, offsets, low, high
        self._views: tuple | None = None  # (memoryviews of the arrays, made at the first lookup)

    def __getstate__(self) -> tuple:
        return self.values, self.offsets, self.low, self.high

    def __setstate__(self, state: tuple) -> None:
        self.__init__(*state)  # type: ignore[misc]

    @classmethod
    def of(cls, hashes: np.ndarray, quotient: bool | None = None) -> Packed:
        """Packed from sorted, unique 56-bit hashes (uint64); in the quotient form when
        ``quotient``, or when None and that is the smaller."""
        hashes = np.asarray(hashes, np.uint64)
        if not (len(hashes) >= QUOTIENT_FROM if quotient is None else quotient):
            return cls(hashes)
        top = (hashes >> np.uint64(_LOW_BITS)).astype(np.int64)
        offsets = np.searchsorted(top, np.arange(_BUCKETS + 1), "left").astype(np.uint32)
        return cls(None, offsets, (hashes & np.uint64(0xFFFFFFFF)).astype(np.uint32),
                   ((hashes >> np.uint64(32)) & np.uint64(0xFF)).astype(np.uint8))

    def __len__(self) -> int:
        return len(self.values) if self.values is not None else len(self.low)  # type: ignore[arg-type]

    def hashes(self) -> np.ndarray:
        """Every hash, sorted (uint64)."""
        if self.values is not None:
            return self.values
        assert self.offsets is not None and self.low is not None and self.high is not None
        top = np.repeat(np.arange(_BUCKETS, dtype=np.uint64), np.diff(self.offsets))
        return ((top << np.uint64(_LOW_BITS)) | (self.high.astype(np.uint64) << np.uint64(32))
                | self.low)

    def __iter__(self) -> Iterator[int]:
        return iter(self.hashes().tolist())

    def __contains__(self, digest: int) -> bool:
        views = self._views
        if views is None:  # (a memoryview gives Python ints: 20 times faster than numpy's scalars)
            views = self._views = tuple(None if a is None else memoryview(a).cast("B").cast(a.dtype.char)
                                        for a in (self.values, self.offsets, self.low, self.high))
        values, offsets, low, high = views
        if values is not None:
            i = bisect_left(values, digest)
            return i < len(values) and values[i] == digest
        bucket, rest = digest >> _LOW_BITS, digest & _LOW_MASK
        if not 0 <= bucket < _BUCKETS:
            return False
        end = offsets[bucket + 1]
        i = bisect_left(range(end), rest, offsets[bucket], end, key=lambda j: high[j] << 32 | low[j])
        return i < end and (high[i] << 32 | low[i]) == rest

    @property
    def nbytes(self) -> int:
        """The bytes of its arrays."""
        return sum(a.nbytes for a in (self.values, self.offsets, self.low, self.high) if a is not None)

    def to_bytes(self) -> bytes:
        """The blob a snapshot saves (:mod:`sixminutes.state`): a header, then the arrays."""
        if self.values is not None:
            return _HEAD.pack(b"sixP", len(self)) + self.values.astype("<u8").tobytes()
        assert self.offsets is not None and self.low is not None and self.high is not None
        return b"".join((_HEAD.pack(b"sixQ", len(self)), self.offsets.astype("<u4").tobytes(),
                         self.low.astype("<u4").tobytes(), self.high.tobytes()))

    @classmethod
    def from_bytes(cls, blob: bytes) -> Packed:
        """A blob of :meth:`to_bytes` back, its arrays read in place (no copy)."""
        kind, n = _HEAD.unpack_from(blob)
        at = _HEAD.size
        if kind == b"sixP" and len(blob) == at + 8 * n:
            return cls(np.frombuffer(blob, "<u8", n, at))
        if kind == b"sixQ" and len(blob) == at + 4 * (_BUCKETS + 1) + 5 * n:
            offsets = np.frombuffer(blob, "<u4", _BUCKETS + 1, at)
            at += offsets.nbytes
            return cls(None, offsets, np.frombuffer(blob, "<u4", n, at),
                       np.frombuffer(blob, np.uint8, n, at + 4 * n))
        raise ValueError(f"not a packed dedup window ({len(blob)} bytes, kind {kind!r})")


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted without repeats: a stable sort merges sorted runs in linear time (np.unique
    hashes, ten times slower on a window's table)."""
    values = np.sort(values, kind="stable")
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def _sorted(digests: Iterable[int]) -> np.ndarray:
    values = _unique(np.fromiter(digests, np.int64))
    if len(values) and (values[0] < 0 or int(values[-1]) >> HASH_BITS):
        raise ValueError(f"dedup hashes are {HASH_BITS}-bit: {values[0]} .. {values[-1]}")
    return values.astype(np.uint64)


class SeenIds:
    """Window → the hashes of the ids counted in it."""

    def __init__(self) -> None:
        self._open: dict[int, set[int]] = {}
        self._frozen: dict[int, Packed] = {}
        self._packed: set[int] = set()  # windows packed since take_packed()

    def add(self, window: int, digest: int) -> bool:
        """Remember an id's hash in its window; False when it was there already."""
        current = self._open.get(window)
        if current is None:
            current = self._open[window] = set()
        elif digest in current:
            return False
        frozen = self._frozen.get(window)
        if frozen is not None and digest in frozen:
            return False
        current.add(digest)
        if len(current) >= SPILL:  # (a window still open: saved as rows until it is frozen)
            self._merge(window, current)
            current.clear()
        return True

    def freeze(self, before: int | None = None) -> None:
        """Pack the windows older than ``before`` (all when None) into sorted tables."""
        for window in [w for w in self._open if before is None or w < before]:
            self._merge(window, self._open.pop(window))
            self._packed.add(window)

    def _merge(self, window: int, digests: Iterable[int]) -> None:
        added = _sorted(digests)
        old = self._frozen.get(window)
        if old is not None and not len(added):
            return
        self._frozen[window] = Packed.of(_unique(np.concatenate((old.hashes(), added))) if old else added)

    def take_packed(self) -> dict[int, Packed]:
        """The windows packed since the last call, for the state to save as one blob each."""
        packed = {w: self._frozen[w] for w in self._packed if w in self._frozen}
        self._packed.clear()
        return packed

    def repack_later(self, windows: Iterable[int]) -> None:
        """Windows whose blobs were not saved (a failed snapshot): offer them again."""
        self._packed.update(windows)

    def restore(self, window: int, digests: Packed | Iterable[int]) -> None:
        """Put back saved hashes of a window (before any id is added to it); a Packed table
        is kept as it is, not copied."""
        if isinstance(digests, Packed):
            if window not in self._frozen:
                self._frozen[window] = digests
                return
            digests = digests.hashes().tolist()
        self._merge(window, digests)

    def purge(self, before: int | None = None) -> None:
        """Forget the windows older than ``before`` (all when None)."""
        for table in (self._open, self._frozen):
            for window in [w for w in table if before is None or w < before]:
                del table[window]
        self._packed = {w for w in self._packed if before is not None and w >= before}

    def windows(self) -> Iterator[int]:
        return iter(sorted(set(self._open) | set(self._frozen)))

    @property
    def nbytes(self) -> int:
        """The bytes of the frozen windows' tables (the open sets are Python objects)."""
        return sum(packed.nbytes for packed in self._frozen.values())

    def __len__(self) -> int:
        return sum(map(len, self._open.values())) + sum(map(len, self._frozen.values()))

    def __contains__(self, item: tuple[int, int]) -> bool:
        window, digest = item
        if digest in self._open.get(window, ()):
            return True
        frozen = self._frozen.get(window)
        return frozen is not None and digest in frozen
