"""What a group of instances agrees on without talking: names, partitions, owners, the wire form.

Every instance of a group computes the same answers from the same inputs, so nothing here
needs a message: the subject a CDR goes to (a hash of its id), which live member owns a
partition (the sorted members, round robin), and how a partition's window of Stats is
written to the key-value bucket that every instance reads its view from. No I/O.
"""
from __future__ import annotations

import hashlib
import re
import struct
import zlib
from typing import TYPE_CHECKING

import numpy as np
import orjson

from ..call import Rejected, decode
from ..windows import WINDOW, window_of

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["PARTITIONS", "Names", "assign", "partition_of", "encode_window", "decode_window",
           "encode_outcomes", "decode_outcomes", "admission"]

PARTITIONS = 16
"""Partitions of a group's stream: at most this many instances share the counting."""
_GROUP = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEAD = struct.Struct("<qI")  # the partition's stream position, the bytes of the keys' JSON
_COUNT = struct.Struct("<I")


class Names:
    """The stream, subjects and buckets of one group (NATS names allow no dots in them)."""

    def __init__(self, group: str) -> None:
        if not _GROUP.match(group):
            raise ValueError(f"a group name is 1 to 64 letters, digits, _ or -, not {group!r}")
        self.group = group
        self.stream = f"SIXMINUTES_{group}"
        self.subjects = f"sixminutes.{group}.cdr.*"
        self.members = f"sixminutes_{group}_members"
        self.cells = f"sixminutes_{group}_cells"

    def subject(self, partition: int) -> str:
        return f"sixminutes.{self.group}.cdr.{partition}"


def partition_of(cdr_id: str, partitions: int = PARTITIONS) -> int:
    """The partition of a CDR: the same id always goes to the same one, on every instance,
    so that one owner sees every copy of a CDR and its duplicates are found there."""
    return zlib.crc32(cdr_id.encode("utf-8", "surrogatepass")) % partitions


def assign(members: list[str], partitions: int = PARTITIONS) -> dict[str, list[int]]:
    """Each live member's partitions: the members sorted, partitions dealt round robin, so
    that every instance that sees the same members computes the same owners."""
    ordered = sorted(set(members))
    owned: dict[str, list[int]] = {m: [] for m in ordered}
    for p in range(partitions if ordered else 0):
        owned[ordered[p % len(ordered)]].append(p)
    return owned


def encode_window(upto: int, keys: list[str], table: np.ndarray,
                  seconds: dict[str, np.ndarray] | None = None) -> bytes:
    """A partition's Stats of one window, with the stream position they hold every CDR up to,
    and the calls in progress at each second of the series that have them (``peak_concurrent``:
    the view adds them up, as a Stat of a sum is no sum of Stats)."""
    names = orjson.dumps(keys)
    rows = np.ascontiguousarray(table, dtype="<f8").tobytes()
    at = {key: i for i, key in enumerate(keys)}
    spans = [(at[key], busy) for key, busy in (seconds or {}).items() if key in at]
    tail = _COUNT.pack(len(spans)) + b"".join(
        _COUNT.pack(i) + np.ascontiguousarray(busy, dtype="<i4").tobytes() for i, busy in spans)
    return zlib.compress(_HEAD.pack(upto, len(names)) + names + rows + tail, 1)


def decode_window(data: bytes) -> tuple[int, list[str], np.ndarray, dict[str, np.ndarray]]:
    """(position, keys, rows of five doubles, calls in progress per second of the series that
    have them) from :func:`encode_window`; ValueError if damaged."""
    try:
        raw = zlib.decompress(data)
        upto, size = _HEAD.unpack_from(raw)
        keys = orjson.loads(raw[_HEAD.size:_HEAD.size + size])
        if not isinstance(keys, list):
            raise ValueError("keys are no list")
        start = _HEAD.size + size
        stop = start + 40 * len(keys)
        table = np.frombuffer(raw, dtype="<f8", offset=start, count=5 * len(keys)).reshape(-1, 5)
        seconds = {}
        if stop < len(raw):  # (a record without them holds no calls in progress)
            (count,), at = _COUNT.unpack_from(raw, stop), stop + _COUNT.size
            for _ in range(count):
                (i,), at = _COUNT.unpack_from(raw, at), at + _COUNT.size
                seconds[keys[i]] = np.frombuffer(raw, dtype="<i4", offset=at, count=WINDOW).copy()
                at += 4 * WINDOW
            if at != len(raw):
                raise ValueError("trailing bytes")
    except (zlib.error, struct.error, orjson.JSONDecodeError, ValueError, IndexError,
            TypeError) as error:
        raise ValueError(f"damaged window record: {error}") from None
    return upto, keys, table.astype(np.float64), seconds


def encode_outcomes(upto: int, outcomes: dict[tuple[str, str], int]) -> bytes:
    """A partition's counts per (source, outcome), with its stream position."""
    return orjson.dumps({"upto": upto, "outcomes": [[s, o, n] for (s, o), n in outcomes.items()]})


def decode_outcomes(data: bytes) -> tuple[int, dict[tuple[str, str], int]]:
    try:
        record = orjson.loads(data)
        return int(record["upto"]), {(s, o): int(n) for s, o, n in record["outcomes"]}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"damaged outcomes record: {error}") from None


def admission(engine: Engine, item: bytes, source: str) -> tuple[str | None, str]:
    """Whether a POSTed document can count, checked by the instance it reaches before it is
    stored: (None, the id it is stored under) or (the rejection reason, ""), counted in
    ``engine``'s outcomes as a rejection. Too old and future are judged here, by this
    instance's clock, so that the partition's owner counts by the messages alone; a
    duplicate is for JetStream (within its window) and the owner (beyond it) to find."""
    try:
        call = decode(item).call
        if call.end_epoch > engine.retention.newest_epoch():
            raise Rejected("future", f"end_epoch {call.end_epoch}")
        oldest = engine.retention.oldest_window()
        if oldest is not None and window_of(call.end_epoch) < oldest:
            raise Rejected("too_old", f"end_epoch {call.end_epoch}")
    except Rejected as rejected:
        reason, detail = rejected.reason, rejected.detail
    except Exception as error:  # a decoder bug costs this document, never the service
        reason, detail = "undecodable", f"{type(error).__name__}: {error}"
    else:
        return None, call.id if call.id is not None else hashlib.sha256(item).hexdigest()
    engine.outcomes[(source, reason)] += 1
    engine.last_rejection[reason] = detail
    return reason, ""
