"""The heap of a replay process: fewer garbage collections, freed memory kept for reuse.

A replay builds hundreds of thousands of small containers (series keys, rows, dicts of
cells) that live until its end and hold no cycles. With the default thresholds the
collector walks them again and again as they pile up: about 0.1 s of a `--jobs 2` replay
of 60,000 CDRs (docs/performance.md). :func:`fewer_collections` freezes what was built
before the count and collects the youngest generation thirty times less often.

It also copies each of its documents out of the read buffer (~9 KB apiece, 38 MB a batch)
and frees them a batch later; glibc's malloc gives the top of the heap back to the system
each time and faults it in again for the next batch. :func:`keep_freed_memory` keeps up
to 256 MB of it: ~0.1 s less system time in the same replay.
"""
from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["fewer_collections", "keep_freed_memory", "THRESHOLD", "TOP_PAD", "TRIM_THRESHOLD"]

THRESHOLD = (20_000, 50, 1_000)
"""The collector's thresholds while counting (the defaults are 700, 10, 10)."""
TOP_PAD = 64 << 20
"""Bytes the heap grows by beyond a request (glibc's M_TOP_PAD; its default is 128 KB)."""
TRIM_THRESHOLD = 256 << 20
"""Freed bytes at the top of the heap kept before any is given back (M_TRIM_THRESHOLD)."""
_M_TRIM_THRESHOLD, _M_TOP_PAD = -1, -2


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Freeze the heap and raise the collection thresholds for the duration of the block.

    Garbage cycles made meanwhile are still collected, only later. The settings are put
    back afterwards (all of the heap is unfrozen), for an in-process caller; a forked
    worker inherits them."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for the rest of this process (a replay's, a
    replay worker's); False where there is no glibc ``mallopt`` (musl, macOS)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_TOP_PAD, TOP_PAD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
