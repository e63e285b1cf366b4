"""The Store's memory per (window, series) cell, shared by bench/engine.py and bench/load.py."""
from __future__ import annotations

import gc
import tracemalloc

from sixminutes.engine import Engine
from sixminutes.store import Store


def store_bytes_per_cell(engine: Engine) -> tuple[int, int, int]:
    """(cells, bytes, peak bytes) of a fresh, compacted Store holding the engine's Stats.

    Keys are copied first so that none is shared with the engine; dedup sets, plugins
    and alerts are not in the fresh Store, hence not counted.
    """
    rows = [(w, key.encode(), stat) for w, key, stat in engine.store.items()]
    gc.collect()
    tracemalloc.start()
    store = Store()
    for window, key, stat in rows:
        store.merge(window, key.decode(), stat)
    store.compact()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return store.cells, current, peak
