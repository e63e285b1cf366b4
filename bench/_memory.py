"""The Store's memory per (window, series) cell, shared by bench/engine.py and bench/load.py."""
from __future__ import annotations

import gc
import sys
import tracemalloc

from sixminutes.engine import Engine
from sixminutes.frozen import FrozenCells
from sixminutes.store import Store


def store_bytes_per_cell(engine: Engine) -> tuple[int, int, int, int]:
    """(cells, bytes, peak bytes, bytes without the series keys: :func:`frozen_bytes`) of a
    fresh, compacted Store holding the engine's Stats.

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
    return store.cells, current, peak, frozen_bytes(store)


def frozen_bytes(store: Store) -> int:
    """The bytes of a compacted Store's windows without the series keys they share (one
    registry per Store): each frozen window's arrays and objects."""
    total = 0
    for t in store.windows():
        cells = store.peek(t)
        if not isinstance(cells, FrozenCells):
            raise ValueError(f"window {t} is not compacted")
        total += cells.nbytes + sys.getsizeof(cells) + sys.getsizeof(cells.changed)
        total += sys.getsizeof(cells.table) - cells.table.nbytes * cells.table.flags.owndata
        total += sum(sys.getsizeof(a) - a.itemsize * len(a)
                     for a in (cells.full_ids, cells.counter_ids, cells.counts))
    return total
