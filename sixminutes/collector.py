"""Fewer cyclic garbage collections while a replay counts.

A replay builds hundreds of thousands of small containers (series keys, rows, dicts of
cells) that live until its end and hold no cycles. With the default thresholds the
collector walks them again and again as they pile up: about 0.1 s of CPU in each process of
a `--jobs 2` replay of 60,000 CDRs (docs/performance.md). While the replay counts, what was
built before it is frozen (never walked again) and the youngest generation is collected
ten times less often; the settings are put back afterwards, for an in-process caller.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["fewer_collections", "THRESHOLD"]

THRESHOLD = (20_000, 50, 1_000)
"""The collector's thresholds while counting (the defaults are 700, 10, 10)."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Freeze the heap and raise the collection thresholds for the duration of the block.

    Garbage cycles made meanwhile are still collected, only later. A forked worker inherits
    both settings."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
