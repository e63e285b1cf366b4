"""Benchmark: the batch group-by of a declared series with numpy (as sixminutes does), polars
and plain Python, on the same batches of realistic CDRs.

    python bench/groupby.py [--corpus PATH] [--sizes 16,256,1000,4000]

For each batch size, the work of one carrier series with a value (billsec where > 0: sum,
count, squares, min, max per (window, direction, profile)) and of one per-account count is
done by each contender from the same columns (already decoded), and the µs per CDR printed,
best of --repeat, with each one's ratio to numpy. Writing into the Store is not included:
it is the same for all three.

Then every built-in plugin (13 series and the unexpected-SIP hook) counts the same batches
into a Store, as the engine does: with numpy, and with the row-by-row path sixminutes takes
for small batches (the same declared series, evaluated one CDR at a time in Python).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sixminutes import batch as batch_module, series as series_module  # noqa: E402
from sixminutes.batch import Batch  # noqa: E402
from sixminutes.plugins import load_plugins  # noqa: E402
from sixminutes.store import Store  # noqa: E402
from sixminutes.call import decode  # noqa: E402
from sixminutes.series import Series  # noqa: E402

BILLSEC = Series("billsec", value="billsec", when=lambda b: b.billsec > 0)
ACCOUNTS = Series("account_calls", labels=("account", "direction"))


def with_numpy(batch: Batch) -> int:
    """What sixminutes.series.count computes before it writes the cells."""
    groups = batch.groups(BILLSEC.columns)
    mask = batch.billsec > 0
    index, values = groups.inverse[mask], batch.billsec[mask].astype(np.float64)
    counts = np.bincount(index, minlength=groups.size)
    sums, squares = np.zeros(groups.size), np.zeros(groups.size)
    lows, highs = np.full(groups.size, np.inf), np.full(groups.size, -np.inf)
    np.add.at(sums, index, values)
    np.add.at(squares, index, values * values)
    np.minimum.at(lows, index, values)
    np.maximum.at(highs, index, values)
    accounts = batch.groups(ACCOUNTS.columns)
    per_account = np.bincount(accounts.inverse, minlength=accounts.size)
    return len(np.flatnonzero(counts)) + len(per_account)


def with_polars(frame_of: dict) -> int:
    import polars as pl
    frame = pl.DataFrame(frame_of)
    carriers = (frame.filter(pl.col("billsec") > 0)
                .group_by(["window", "direction", "profile"], maintain_order=True)
                .agg(pl.col("billsec").sum().alias("sum"), pl.len().alias("count"),
                     (pl.col("billsec") ** 2).sum().alias("squares"),
                     pl.col("billsec").min().alias("min"), pl.col("billsec").max().alias("max")))
    accounts = frame.group_by(["window", "account", "direction"], maintain_order=True).agg(pl.len())
    return carriers.height + accounts.height


def with_python(calls: list, windows: list[int]) -> int:
    cells: dict = defaultdict(lambda: [0.0, 0, 0.0, float("inf"), float("-inf")])
    accounts: dict = defaultdict(int)
    for call, window in zip(calls, windows):
        if call.billsec > 0:
            cell, value = cells[(window, call.direction, call.profile)], float(call.billsec)
            cell[0] += value
            cell[1] += 1
            cell[2] += value * value
            cell[3] = min(cell[3], value)
            cell[4] = max(cell[4], value)
        accounts[(window, call.account, call.direction)] += 1
    return len(cells) + len(accounts)


def best(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=HERE / "out" / "corpus-60000.jsonl")
    p.add_argument("--sizes", default="16,256,1000,4000")
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    lines = []
    with args.corpus.open("rb") as f:
        for line in f:
            lines.append(line)
            if len(lines) == max(sizes):
                break
    decoded = [decode(line) for line in lines]
    print(f"{'batch':>6} {'numpy us/CDR':>13} {'polars us/CDR':>14} {'python us/CDR':>14}"
          f" {'polars/numpy':>13} {'python/numpy':>13}")
    for size in sizes:
        rows = decoded[:size]
        windows = [d.call.end_epoch - d.call.end_epoch % 360 for d in rows]
        calls = [d.call for d in rows]
        columns = {"window": windows, "direction": [c.direction for c in calls],
                   "profile": [c.profile for c in calls], "account": [c.account for c in calls],
                   "billsec": [c.billsec for c in calls]}
        # each contender starts from the decoded rows: building its columns is part of its work
        numpy_s = best(args.repeat, lambda: with_numpy(Batch(rows, windows)))
        polars_s = best(args.repeat, lambda: with_polars(
            {k: ([getattr(c, k) for c in calls] if k != "window" else windows) for k in columns}))
        python_s = best(args.repeat, lambda: with_python(calls, windows))
        assert with_numpy(Batch(rows, windows)) == with_polars(columns) == with_python(calls, windows)
        us = [s / size * 1e6 for s in (numpy_s, polars_s, python_s)]
        print(f"{size:>6} {us[0]:>13.2f} {us[1]:>14.2f} {us[2]:>14.2f} {us[1] / us[0]:>13.2f} "
              f"{us[2] / us[0]:>13.2f}")
    plugins = load_plugins()
    print(f"\nall built-ins into a Store: {'batch':>6} {'numpy us/CDR':>13} {'rows us/CDR':>12} "
          f"{'rows/numpy':>11}")
    for size in sizes:
        rows = decoded[:size]
        windows = [d.call.end_epoch - d.call.end_epoch % 360 for d in rows]
        timing = {}
        for path, small in (("numpy", 0), ("rows", 10**9)):
            batch_module.SMALL = series_module.SMALL = small
            timing[path] = best(args.repeat, lambda: plugins.run_batch(
                Batch(rows, windows), Store(), lambda *a: None, list(range(size))))
        us = {k: v / size * 1e6 for k, v in timing.items()}
        print(f"{'':<27} {size:>6} {us['numpy']:>13.2f} {us['rows']:>12.2f} "
              f"{us['rows'] / us['numpy']:>11.2f}")


if __name__ == "__main__":
    main()
