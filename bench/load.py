"""Benchmark: a time-compressed day, and what a real day at 1,000 CDR/s would cost in memory and state.

    .venv/bin/python bench/load.py [--n 400000] [--window-n 360000] [--service-n 60000]

A day at 1,000 CDR/s is 86.4 M CDRs; this runs a scaled day and extrapolates, showing how:

1. day: --n realistic CDRs (20 carriers, 5,000 accounts) whose end times span 24 h (all 240
   windows fill) go through the Engine as the service configures it (dedup ids kept for the
   snapshot), in process. At checkpoints: CDRs/s, windows, (window, series) cells, dedup ids,
   RSS; the bytes of a cell (tracemalloc, a fresh Store) and of a dedup id (the packed tables'
   arrays: sparse windows here, so the plain 8-byte form); a full snapshot of every cell, then of every dedup id, into a
   fresh SQLite file with the service's own State (time, file size) and loading it back.
2. window: --window-n CDRs in one 6-minute window, the density of 1,000 CDR/s: how many cells
   one window of a real day holds (the cells saturate: accounts × series, not CDRs), and the
   bytes of its dedup ids once packed (the quotient form of sixminutes/dedup.py) and of its
   cells once compacted (tracemalloc, a fresh Store; the series keys, shared by the windows of a
   day, apart).
3. service (--service-n > 0): a real `sixminutes serve` following pouchdb-server through a
   compressed day already written to CouchDB: its peak RSS, its snapshots (status endpoint),
   the state file's size, and how long a restart takes to restore it.

Then the extrapolation to 86.4 M CDRs is printed, each figure with the measurement it comes from.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _memory import store_bytes_per_cell  # noqa: E402
from _service import bulk_body, machine, rss, stack  # noqa: E402

from sixminutes.config import Config  # noqa: E402
from sixminutes.engine import Engine  # noqa: E402
from sixminutes.sources.synthetic import Generator  # noqa: E402
from sixminutes.state import Delta, State  # noqa: E402

DAY = 86400
FULL_DAY = 86_400_000
WINDOWS = 240


def me() -> int:
    return rss(os.getpid())[0]


def engine_for(day_end: int) -> Engine:
    """The engine as the service sets it up (dedup ids listed for the snapshot), with a clock
    at the end of the compressed day so that the whole day is within retention."""
    engine = Engine(Config(), clock=lambda: float(day_end))
    engine.track_seen = True
    engine.check_every = 250  # the service checks every 0.25 s: 250 CDRs at 1,000 CDR/s
    return engine


def alert_bytes(engine: Engine) -> tuple[int, int]:
    """(alerts, bytes of the sample CDRs they keep): each alert keeps its first CDR's raw body."""
    alerts = list(engine.alerts._rows.values())
    return len(alerts), sum(len(a.sample._source) for a in alerts
                            if getattr(a.sample, "_source", None) is not None)


def seen_bytes(engine: Engine) -> tuple[int, int]:
    """(ids, bytes) of the dedup memory: the sets of open windows and the packed arrays."""
    engine.seen.freeze()  # as it is once the day's windows are past
    size = sum(packed.nbytes + sys.getsizeof(packed) for packed in engine.seen._frozen.values())
    size += sum(sys.getsizeof(hashes) + sum(map(sys.getsizeof, hashes))
                for hashes in engine.seen._open.values())
    return len(engine.seen), size


def snapshot_figures(engine: Engine, folder: Path) -> dict[str, Any]:
    """Write every cell, then every dedup id, with the service's State; time, sizes, load back."""
    path = folder / f"full-{engine.accepted}.sqlite"
    state = State(str(path))
    cells = [(t, key, s.sum, s.count, s.squares, s.min, s.max) for t, key, s in engine.store.items()]
    t0 = time.perf_counter()
    state.save(Delta(cells=cells))
    cells_s = time.perf_counter() - t0
    state._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cells_size = path.stat().st_size
    t0 = time.perf_counter()
    sum(1 for _ in state.load().cells)  # the cells are read while they are restored
    load_cells_s = time.perf_counter() - t0
    seen = {t: hashes.to_bytes() for t, hashes in engine.seen._frozen.items()}  # as snapshots pack them
    t0 = time.perf_counter()
    state.save(Delta(packed=seen))
    seen_s = time.perf_counter() - t0
    state._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total_size = path.stat().st_size
    del seen
    gc.collect()
    t0 = time.perf_counter()
    saved = state.load()
    loaded = (sum(1 for _ in saved.cells), sum(map(len, saved.seen.values())))
    load_s = time.perf_counter() - t0
    state.close()
    row_bytes = sum(packed.nbytes for packed in saved.seen.values()) / max(loaded[1], 1)
    del saved
    path.unlink()
    return {"cells": len(cells), "cells_seconds": cells_s, "cells_bytes": cells_size,
            "seen": loaded[1], "seen_seconds": seen_s, "seen_bytes": total_size - cells_size,
            "load_seconds": load_s, "load_cells_seconds": load_cells_s, "loaded": loaded,
            "loaded_id_bytes": row_bytes}


def day_run(n: int, checkpoints: list[int], folder: Path) -> dict[str, Any]:
    day_end = int(time.time()) // 360 * 360
    start = day_end - DAY
    engine = engine_for(day_end + 1)
    generator = Generator(seed=3, carriers=20, accounts=5000)
    base = me()
    print(f"\n1. a compressed day: {n:,} CDRs, end times over 24 h (20 carriers, 5,000 accounts); "
          f"RSS before {base / 2**20:.0f} MiB")
    print(f"{'CDRs':>10} {'feed/s':>8} {'windows':>7} {'cells':>9} {'cells/window':>12} {'dedup ids':>10} "
          f"{'alerts':>7} {'RSS MiB':>8} {'RSS - before':>12}")
    rows = []
    fed, feed_s, t_gen = 0, 0.0, 0.0
    # the generator sorts all end times first; CDRs come in time order, as a day would
    documents = generator.corpus(n, start, DAY)
    for checkpoint in checkpoints:
        while fed < checkpoint:  # small batches: the documents must not inflate the RSS
            t0 = time.perf_counter()
            batch = [next(documents)[0] for _ in range(min(1000, checkpoint - fed))]
            t_gen += time.perf_counter() - t0
            t0 = time.perf_counter()
            for raw in batch:
                engine.feed(raw, "couchdb")
            engine.seen_new = []  # the service hands these to the snapshot every 5 s
            feed_s += time.perf_counter() - t0
            fed += len(batch)
        del batch
        gc.collect()
        windows = len(engine.store.windows())
        ids = len(engine.seen)
        now = me()
        rows.append({"cdrs": fed, "windows": windows, "cells": engine.store.cells, "ids": ids, "rss": now})
        print(f"{fed:>10,} {fed / feed_s:>8,.0f} {windows:>7} {engine.store.cells:>9,} "
              f"{engine.store.cells / max(windows, 1):>12,.0f} {ids:>10,} {len(engine.alerts):>7,} {now / 2**20:>8.0f} "
              f"{(now - base) / 2**20:>12.0f}")
        if engine.accepted != fed:
            raise SystemExit(f"accepted {engine.accepted} of {fed}: {dict(engine.rejected)}")
    print(f"(generating the documents took {t_gen:.0f} s, not in feed/s)")
    cells, cell_bytes, _, array_bytes = store_bytes_per_cell(engine)
    ids, id_bytes = seen_bytes(engine)
    alerts, sample_bytes = alert_bytes(engine)
    snap = snapshot_figures(engine, folder)
    print(f"cells: {cells:,} in {cell_bytes:,} bytes once compacted = {cell_bytes / cells:.1f} bytes/cell (tracemalloc); "
          f"the series keys (one registry) {(cell_bytes - array_bytes) / 2**20:.1f} MiB of it")
    print(f"dedup ids: {ids:,} in {id_bytes:,} bytes = {id_bytes / ids:.1f} bytes/id (56-bit hashes, packed once their window is past)")
    print(f"alerts: {alerts:,}, keeping {sample_bytes / 2**20:.1f} MiB of sample CDRs "
          f"({sample_bytes / max(alerts, 1):,.0f} bytes each)")
    print(f"RSS growth {(rows[-1]['rss'] - base) / 2**20:.0f} MiB vs cells + ids + alert samples "
          f"{(cell_bytes + id_bytes + sample_bytes) / 2**20:.0f} MiB (the rest: alert records, threshold "
          f"state, the allocator's free lists)")
    print(f"full snapshot into a fresh SQLite file (State.save): {snap['cells']:,} cells in "
          f"{snap['cells_seconds']:.2f} s, {snap['cells_bytes'] / 2**20:.1f} MiB = "
          f"{snap['cells_bytes'] / snap['cells']:.0f} bytes/cell; {snap['seen']:,} dedup ids in "
          f"{snap['seen_seconds']:.2f} s, {snap['seen_bytes'] / 2**20:.1f} MiB = "
          f"{snap['seen_bytes'] / snap['seen']:.0f} bytes/id; State.load of the cells alone "
          f"{snap['load_cells_seconds']:.2f} s, of it all {snap['load_seconds']:.2f} s")
    return {"rows": rows, "cell_bytes": cell_bytes / cells, "id_bytes": id_bytes / ids, "snap": snap,
            "key_bytes": cell_bytes - array_bytes,
            "feed_rate": fed / feed_s}


def window_run(n: int) -> dict[str, Any]:
    """n CDRs in one window: the cells a window holds at a given density."""
    t = int(time.time()) // 360 * 360 - 3600
    engine = engine_for(t + 400)
    generator = Generator(seed=5, carriers=20, accounts=5000)
    print(f"\n2. one window at full density: {n:,} CDRs ending within one 6-minute window "
          f"({n / 360:,.0f} CDR/s)")
    counts = []
    fed = 0
    for checkpoint in (n // 8, n // 4, n // 2, n):
        while fed < checkpoint:
            engine.feed(generator.cdr(t + fed % 360)[0], "couchdb")
            fed += 1
        engine.seen_new = []
        engine.flush()
        accounts = sum(1 for key in engine.store.window(t).keys() if key.startswith("account_calls{"))
        alerts, sample_bytes = alert_bytes(engine)
        counts.append((fed, engine.store.cells, accounts, alerts, sample_bytes))
        print(f"  {fed:>8,} CDRs: {engine.store.cells:,} cells ({accounts:,} account_calls series); "
              f"{alerts:,} alerts keeping {sample_bytes / 2**20:.1f} MiB of sample CDRs")
    ids, id_bytes = seen_bytes(engine)  # (the window packed, as once it is past)
    print(f"  dedup ids: {ids:,} in {id_bytes:,} bytes once packed = {id_bytes / ids:.2f} bytes/id")
    cells, cell_bytes, _, array_bytes = store_bytes_per_cell(engine)
    print(f"  cells: {cells:,} in {cell_bytes:,} bytes once compacted (tracemalloc): the series keys (one "
          f"registry, shared by a day's windows) {(cell_bytes - array_bytes) / 2**20:.1f} MiB, the window "
          f"{array_bytes:,} bytes = {array_bytes / cells:.1f} bytes/cell")
    return {"cells": counts[-1][1], "counts": counts, "alerts": counts[-1][3], "sample_bytes": counts[-1][4],
            "id_bytes": id_bytes / ids, "cell_bytes": array_bytes / cells, "key_bytes": cell_bytes - array_bytes}


def service_run(n: int, folder: Path) -> dict[str, Any]:
    """A real service through a compressed day already in CouchDB; RSS, snapshots, restart."""
    day_end = int(time.time()) - 60
    generator = Generator(seed=9, carriers=20, accounts=5000)
    documents = generator.corpus(n, day_end - DAY + 400, DAY - 400)
    print(f"\n3. the service: {n:,} CDRs over 24 h written to pouchdb-server, then followed by "
          f"`sixminutes serve` from 0")

    def preload(couch: Any, db: str) -> None:
        t0 = time.perf_counter()
        sent = 0
        while sent < n:
            docs = [next(documents)[0] for _ in range(min(500, n - sent))]
            couch.http.post(f"{couch.url}/{db}/_bulk_docs", content=bulk_body(docs),
                            headers={"Content-Type": "application/json"}, timeout=300).raise_for_status()
            sent += len(docs)
        print(f"  written to CouchDB in {time.perf_counter() - t0:.0f} s")

    with stack(folder / "service-run", before_service=preload) as s:
        t0 = time.time()
        peak_rss = 0
        while s.accepted() < n and time.time() - t0 < 1800:
            time.sleep(1)
        took = time.time() - t0
        status = s.status()
        time.sleep(6)  # one more snapshot after the last CDR
        status = s.status()
        hwm = rss(s.service.process.pid)[1]
        data = s.service.data()
        cells = sum(len(series) for series in data.values())
        s.service.stop()
        size = sum(p.stat().st_size for p in s.service.workdir.glob("s.sqlite*"))
        t1 = time.perf_counter()
        s.service.start(timeout=600)
        restart = time.perf_counter() - t1
        restarted_rss = rss(s.service.process.pid)[0]
        after = s.status()
        peak_rss = hwm
    print(f"  accepted {status['accepted']:,} in {took:.0f} s ({status['accepted'] / took:,.0f} CDR/s), "
          f"{status['windows']} windows, {cells:,} cells; peak RSS {peak_rss / 2**20:.0f} MiB")
    print(f"  snapshots: {status['snapshots']}")
    print(f"  state file after SIGTERM: {size / 2**20:.1f} MiB; restart until /6minutes/status answers: "
          f"{restart:.1f} s, RSS after the restart {restarted_rss / 2**20:.0f} MiB, accepted {after['accepted']:,}")
    return {"hwm": peak_rss, "cells": cells, "size": size, "restart": restart, "accepted": status["accepted"],
            "snapshots": status["snapshots"], "restarted_rss": restarted_rss}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=400_000, help="CDRs of the compressed day (in process; 0: skip)")
    p.add_argument("--window-n", type=int, default=360_000, help="CDRs in one window (1,000 CDR/s = 360,000)")
    p.add_argument("--service-n", type=int, default=60_000, help="CDRs through a real service (0: skip)")
    args = p.parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="sixminutes-load-") as tmp:
        folder = Path(tmp)
        day = day_run(args.n, sorted({args.n // 4, args.n // 2, args.n}), folder) if args.n else None
        gc.collect()
        window = window_run(args.window_n) if args.window_n else None
        service = service_run(args.service_n, folder) if args.service_n else None
    if day is None:
        return  # no scaled day (--n 0): nothing to extrapolate from

    rows = day["rows"]
    print(f"\n4. extrapolation to a day at 1,000 CDR/s ({FULL_DAY:,} CDRs, 20 carriers, 5,000 accounts)")
    first, last = rows[0], rows[-1]
    print(f"  scaled day: ×{last['cdrs'] / first['cdrs']:.0f} CDRs gave ×{last['cells'] / first['cells']:.2f} cells "
          f"and ×{last['ids'] / first['ids']:.2f} dedup ids: cells grow with the series seen per window "
          f"(they saturate), dedup ids with the CDRs")
    per_window = window["cells"] if window else last["cells"] / WINDOWS
    cells = per_window * WINDOWS
    src = (f"{per_window:,.0f} cells per window measured at {args.window_n / 360:,.0f} CDR/s (part 2) × 240"
           if window else "the scaled day's cells (no part 2: an underestimate)")
    print(f"  cells: {cells:,.0f} ({src})")
    if window:  # a full window's bytes a cell, and the series keys once (the more of both parts')
        keys = max(day["key_bytes"], window["key_bytes"])
        windows_mib = (cells * window["cell_bytes"] + keys) / 2**20
        print(f"  window memory: {windows_mib:,.0f} MiB = {window['cell_bytes']:.1f} bytes/cell (a full window, "
              f"part 2) + {keys / 2**20:.1f} MiB of series keys (the more of parts 1 and 2)")
    else:
        windows_mib = cells * day["cell_bytes"] / 2**20
        print(f"  window memory: {windows_mib:,.0f} MiB at {day['cell_bytes']:.1f} bytes/cell")
    if window:
        print(f"  alerts: {window['alerts']:,} in one window at that density keeping "
              f"{window['sample_bytes'] / 2**20:.0f} MiB of sample CDRs; × 240 = "
              f"{window['alerts'] * WINDOWS:,} alerts, {window['sample_bytes'] * WINDOWS / 2**30:.1f} GiB")
    id_bytes = window["id_bytes"] if window else day["id_bytes"]
    src = (f"a window at {args.window_n / 360:,.0f} CDR/s, part 2" if window
           else "the scaled day's sparse windows: an overestimate")
    ids_mib = FULL_DAY * id_bytes / 2**20
    print(f"  DEDUP MEMORY: {FULL_DAY:,} ids kept 24 h × {id_bytes:.2f} bytes/id ({src}) = {ids_mib:,.0f} MiB "
          f"({ids_mib / 1024:.2f} GiB), {ids_mib / max(windows_mib, 1):.2f}× the windows")
    total_mib = ids_mib + windows_mib
    print(f"  WINDOWS + DEDUP MEMORY: {total_mib:,.0f} MiB ({total_mib / 1024:.2f} GiB)")
    snap = day["snap"]
    print(f"  state file: cells {cells * snap['cells_bytes'] / snap['cells'] / 2**20:,.0f} MiB + dedup ids "
          f"{FULL_DAY * snap['seen_bytes'] / snap['seen'] / 2**30:,.1f} GiB "
          f"({snap['cells_bytes'] / snap['cells']:.0f} bytes/cell, {snap['seen_bytes'] / snap['seen']:.0f} bytes/id measured)")
    full_cells_s = cells / snap["cells"] * snap["cells_seconds"]
    print(f"  a snapshot of every cell of the day: {full_cells_s:.1f} s (never needed live: a snapshot writes "
          f"what changed in 5 s, ~{5000:,} dedup ids and the cells of the current windows)")
    ids_load = max(snap["load_seconds"] - snap["load_cells_seconds"], 0.0) * FULL_DAY / max(snap["seen"], 1)
    cells_load = snap["load_cells_seconds"] * cells / snap["cells"]
    print(f"  restart: State.load reads every cell (~{cells_load:,.0f} s) and every dedup id (~{ids_load:,.0f} s), "
          f"the ids straight into per-window arrays (~{FULL_DAY * snap['loaded_id_bytes'] / 2**30:.1f} GiB "
          f"at {snap['loaded_id_bytes']:.1f} bytes/id; linear from the measured {snap['seen']:,} ids)")
    if service:
        per_cdr = (service["hwm"] - 45 * 2**20) / service["accepted"]
        print(f"  service: peak RSS {service['hwm'] / 2**20:.0f} MiB for {service['accepted']:,} CDRs; a snapshot "
              f"at the end of the run took {service['snapshots']['last_seconds']} s for "
              f"{service['snapshots'].get('last_cells')} cells; state file {service['size'] / 2**20:.1f} MiB; "
              f"restart {service['restart']:.1f} s ({per_cdr:,.0f} bytes of RSS per CDR over a ~45 MiB idle service)")


if __name__ == "__main__":
    main()
