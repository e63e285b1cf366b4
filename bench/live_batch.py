"""Benchmark: what counting one live batch costs the event loop, by the batch's size.

    python bench/live_batch.py [--sizes 1,4,8,16,32,64] [--repeat 300] [--waits 30,120,240,480]

The live service counts each group commit of POSTs as one batch (`Engine.feed_batch`, on the
event loop). The CDR of bench/ingest.py (the first of the corpus, a new uuid each time, its
end now) is fed in batches of each size to the engine of a `Service` as `serve` builds it
(its built-in plugins and rules, every series declared); printed: the median time of a
batch, and per CDR. The difference between sizes is the fixed cost of a batch, which the
size of a group commit spreads.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

from _service import machine  # noqa: E402
from ingest import bodies, prepare, template  # noqa: E402

from sixminutes.config import Config  # noqa: E402
from sixminutes.service import Service  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,8,16,32,64")
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--waits", default="30,120,240,480")
    parser.add_argument("--commit", type=int, default=30, help="POSTs per group commit (--waits)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / "out" / "corpus-1000.jsonl")
    args = parser.parse_args()
    prepare(args.corpus)
    _, before, after = bodies(template(args.corpus), int(time.time()))["raw"]
    engine = Service(Config(token="bench", state=":memory:")).engine
    print(f"feed_batch of live batches of the CDR of bench/ingest.py; {machine()}")
    n = 0
    for size in (int(s) for s in args.sizes.split(",")):
        times = []
        for _ in range(args.repeat):
            batch = [before + f"live-{(n := n + 1)}".encode() + after for _ in range(size)]
            start = time.perf_counter()
            reasons = engine.feed_batch(batch, "http")
            times.append(time.perf_counter() - start)
            assert reasons == [None] * size, reasons[:3]
        median = statistics.median(times[len(times) // 6:])  # (the first ones warm up)
        print(f"  batch of {size:3}: {median * 1e6:7.0f} us, {median / size * 1e6:6.1f} us a CDR")
    print(f"admit_batch of group commits of {args.commit}, count_waiting once this many wait:")
    for wait in (int(s) for s in args.waits.split(",") if s):
        commits = max(1, wait // args.commit)
        admit, count = [], []
        for _ in range(max(3, args.repeat // commits)):
            spent = 0.0
            for _ in range(commits):
                batch = [before + f"live-{(n := n + 1)}".encode() + after for _ in range(args.commit)]
                start = time.perf_counter()
                reasons = engine.admit_batch(batch, "http")
                spent += time.perf_counter() - start
                assert reasons == [None] * args.commit, reasons[:3]
            start = time.perf_counter()
            engine.count_waiting()
            rows = commits * args.commit
            admit.append(spent / rows)
            count.append((time.perf_counter() - start) / rows)
        a, c = (statistics.median(t[len(t) // 6:]) * 1e6 for t in (admit, count))
        print(f"  {commits * args.commit:4} rows: admit {a:5.1f} + count {c:5.1f} = {a + c:5.1f} us a CDR")


if __name__ == "__main__":
    main()
