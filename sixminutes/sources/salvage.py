"""What a damaged gzip file still holds: every byte that decompresses before the damage.

A streaming reader loses the output of the call that hit the damage (up to a buffer of it);
:class:`Salvage` decompresses the file again with zlib, in slices, and retries a failing slice
one byte at a time from a copy of the decompressor taken before it, so that the output ends
exactly where the damage begins. Used only once a file is known to be damaged.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["Salvage"]

SLICE = 64 << 10
_MAGIC = b"\x1f\x8b"


class Salvage:
    """Iterate :meth:`chunks` for the decompressed bytes; then :attr:`detail` says what the
    damage was and where (``None`` if the file turned out whole)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.detail: str | None = None
        self.produced = 0
        """Decompressed bytes given out."""

    def chunks(self) -> Iterator[bytes]:
        self.file.seek(0)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        consumed = 0  # compressed bytes fed
        pending = b""
        while True:
            block = pending or self.file.read(SLICE)
            pending = b""
            if not block:
                if not inflater.eof:
                    self.detail = (f"truncated: the compressed data ends at byte {consumed} "
                                   f"before its end marker")
                return
            saved = inflater.copy()
            try:
                out = inflater.decompress(block)
            except zlib.error:
                yield from self._bytewise(saved, block, consumed)
                return
            consumed += len(block) - len(inflater.unused_data)
            self.produced += len(out)
            yield out
            if inflater.eof:  # a member ends: another may follow (concatenated gzip files)
                pending = inflater.unused_data
                if not pending:
                    pending = self.file.read(SLICE)
                if not pending:
                    return
                if pending[:2] != _MAGIC and len(pending) >= 2:
                    if pending.strip(b"\0"):
                        self.detail = f"corrupt: bytes after the end marker at byte {consumed}"
                    return
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _bytewise(self, inflater: "zlib._Decompress", block: bytes, consumed: int) -> Iterator[bytes]:
        for i in range(len(block)):
            try:
                out = inflater.decompress(block[i:i + 1])
            except zlib.error as error:
                self.detail = f"corrupt at byte {consumed + i} of the compressed data ({error})"
                return
            self.produced += len(out)
            yield out
        self.detail = f"corrupt near byte {consumed + len(block)} of the compressed data"
