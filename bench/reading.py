"""Benchmark: a parallel replay's reading, each process through every byte or a segment each.

    python bench/reading.py [--n 60000] [--corpus PATH] [--jobs 2 4 8] [--repeat 3]

For each --jobs, the readers of a `replay --jobs N` alone (no decoding, no counting): N
processes (this one and N - 1 forked) read the same JSON Lines file as the replay's reader
gives it to the engine, each its documents and the others' as PASSED, timed from the fork to
the last one's end, best of --repeat, alternately:
- every process reading and splitting every byte (the reader without an exchange);
- each process splitting its own segments, reading the others' from their indexes
  (sources/segments.py: what a replay does).
Printed: the wall time and the CPU seconds (user + system of all N) of each, and their
ratios, from the same run. On a machine with fewer cores than N the wall times mean little;
the CPU seconds are the work.
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sixminutes.columns import Chunk  # noqa: E402
from sixminutes.heap import keep_freed_memory  # noqa: E402
from sixminutes.sources.files import read_documents  # noqa: E402
from sixminutes.sources.segments import Exchange  # noqa: E402
from sixminutes.sources.shards import Shard  # noqa: E402


def _read(path: str, index: int, jobs: int, exchange: Exchange | None) -> int:
    """The documents one process is handed (its own and the others' PASSED)."""
    n = 0
    try:
        for item in read_documents([path], shard=Shard(index, jobs, exchange), chunks=True):
            n += len(item) if type(item) is Chunk else 1
    finally:
        if exchange is not None:
            exchange.done(index)
    return n


def _cpu() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def run(path: str, jobs: int, segments: bool) -> tuple[float, float]:
    """Wall and CPU seconds of the N readers."""
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as folder:
        exchange = Exchange(folder, jobs, context) if segments else None
        cpu, wall = _cpu(), time.perf_counter()
        workers = [context.Process(target=_read, args=(path, i, jobs, exchange)) for i in range(1, jobs)]
        for worker in workers:
            worker.start()
        _read(path, 0, jobs, exchange)
        for worker in workers:
            worker.join()
            if worker.exitcode:
                raise SystemExit(f"reader {worker.name} failed ({worker.exitcode})")
        return time.perf_counter() - wall, _cpu() - cpu


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60_000, help="documents to generate when the corpus is missing")
    p.add_argument("--corpus", type=Path, help="JSON Lines corpus (default bench/out/corpus-<n>.jsonl)")
    p.add_argument("--jobs", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    path = args.corpus or HERE / "out" / f"corpus-{args.n}.jsonl"
    if not path.exists():
        from corpus import write_corpus
        print(f"generating {args.n} documents into {path} ...", file=sys.stderr)
        write_corpus(path, args.n)
    keep_freed_memory()  # (as a replay's processes do)
    size = path.stat().st_size
    print(f"corpus {path}: {size / 1e6:.0f} MB; best of {args.repeat}, alternately")
    for jobs in args.jobs:
        best = {False: (float("inf"), 0.0), True: (float("inf"), 0.0)}
        for _ in range(args.repeat):
            for segments in (False, True):
                wall, cpu = run(str(path), jobs, segments)
                if wall < best[segments][0]:
                    best[segments] = (wall, cpu)
        (every_wall, every_cpu), (seg_wall, seg_cpu) = best[False], best[True]
        print(f"  --jobs {jobs}: every process every byte {every_wall:.3f} s, {every_cpu:.3f} s CPU;"
              f" a segment each {seg_wall:.3f} s, {seg_cpu:.3f} s CPU;"
              f" CPU ratio {every_cpu / seg_cpu:.2f}, wall ratio {every_wall / seg_wall:.2f}")


if __name__ == "__main__":
    main()
