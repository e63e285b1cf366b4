"""Benchmark: latency from a CouchDB write to the live `stats` event that shows it, at ~1,000 CDR/s.

    .venv/bin/python bench/latency.py [--rate 1000] [--seconds 60] [--batch-every 0.1] [--path couchdb|http]

A separate process writes realistic CDRs to pouchdb-server with _bulk_docs (--rate CDR/s in
batches every --batch-every s); each batch carries one marker CDR of a carrier profile of its
own (mk000001, mk000002, ...). Another process follows /6minutes/events of the `sixminutes
serve` that follows that database, and notes when each marker's `calls` series first appears
in a `stats` event. The latency of a marker is that time minus the time its _bulk_docs request
returned (the write is committed then); the request's own duration is printed beside it.
With --path http each CDR is POSTed to /6minutes/cdr instead (--concurrency in flight), and
the latency runs from the marker's answer (committed to the journal and counted).
--concurrency sets the POSTs in flight (FreeSWITCH sends one per call that ends).
All processes share one clock (one machine, time.time()). The service publishes changes
every 0.25 s, so about 125 ms of the latency is that tick, by design.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import re
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import Feeder, Sampler, feed, machine, stack  # noqa: E402

REQUEST = b"GET /6minutes/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
"""(Host: a name of the service: any other is refused 421 since the guard against DNS rebinding.)"""
MARKER = re.compile(rb'calls\{direction=\\"egress\\",profile=\\"mk(\d{6})\\"\}')


def marker(i: int, end_epoch: int) -> bytes:
    """A CDR that is the only one of carrier profile mk<i>: its series says it was counted."""
    name = f"mk{i:06d}"
    return orjson.dumps({"_id": name, "callflow": [{"profile_index": "1"}], "variables": {
        "end_epoch": str(end_epoch), "ccnq_profile": name, "ccnq_direction": "egress",
        "ccnq_account": "latency-bench", "billsec": "5"}})


def _watch(port: int, stop: Any, ready: Any, out: Any) -> None:
    """Child process: read the event stream; (marker, time first seen) for each marker."""
    async def main() -> dict[int, float]:
        seen: dict[int, float] = {}
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        ready.set()
        buffer = b""
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 18), 0.5)
            except TimeoutError:
                continue
            if not chunk:
                break
            now = time.time()
            buffer += chunk
            cut = buffer.rfind(b"\n\n")  # only whole messages: a marker never straddles a read
            if cut < 0:
                continue
            done, buffer = buffer[:cut], buffer[cut + 2:]
            for match in MARKER.finditer(done):
                seen.setdefault(int(match.group(1)), now)
        writer.close()
        return seen

    out.put(asyncio.run(main()))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=1000.0, help="CDRs per second written to CouchDB")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--path", choices=("couchdb", "http"), default="couchdb",
                   help="_bulk_docs to CouchDB, or one POST /6minutes/cdr per CDR (32 at a time)")
    p.add_argument("--concurrency", type=int, default=32, help="--path http: POSTs in flight")
    p.add_argument("--batch-every", type=float, default=0.1, help="seconds between _bulk_docs requests")
    args = p.parse_args(argv)
    print(f"machine: {machine()}")
    now = int(time.time())
    bodies = feed(args.rate, args.seconds, args.batch_every, seed=7,
                  extra=lambda i: marker(i, now))
    per_batch = round(args.rate * args.batch_every)
    total = (per_batch + 1) * len(bodies)
    print(f"{len(bodies)} batches of {per_batch} realistic CDRs + 1 marker, every {args.batch_every} s: "
          f"{total / args.seconds:.0f} CDR/s offered for {args.seconds:.0f} s through {args.path}")
    with stack() as s:
        ctx = mp.get_context("fork")
        stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
        watcher = ctx.Process(target=_watch, args=(s.service.port, stop, ready, out), daemon=True)
        watcher.start()
        ready.wait(30)
        deadline = time.time() + 30
        while s.status()["events"]["clients"] < 1:
            if time.time() > deadline:
                raise SystemExit("the event stream was not opened (refused?)")
            time.sleep(0.05)
        target = s.db_url if args.path == "couchdb" else s.service.url + "/6minutes/cdr"
        feeder = Feeder(target, bodies, args.batch_every, mode=args.path, concurrency=args.concurrency,
                        token=s.service.token)
        sampler = Sampler(s)
        sampler.run_until(lambda: not feeder.process.is_alive(), 1.0)
        marks = feeder.join(10)
        fed_until = sampler.samples[-1][0]
        deadline = time.time() + 60
        sampler.run_until(lambda: sampler.samples[-1][1] >= total or time.time() > deadline, 0.5)
        time.sleep(0.5)  # the last tick
        stop.set()
        seen: dict[int, float] = out.get(timeout=30)
        watcher.join(10)
        rate = sampler.rate(feeder.start_at, fed_until)
        cpu = sampler.cpu_share(feeder.start_at, fed_until)
        accepted = sampler.samples[-1][1]
    requests = sorted(returned - before for _, before, returned in marks)
    from_return = [seen[i] - returned for i, _, returned in marks if i in seen]
    from_start = [seen[i] - before for i, before, _ in marks if i in seen]
    missing = len(marks) - len(from_return)
    print(f"service accepted {accepted} of {total}; {rate:.0f} CDR/s while feeding; CPU service "
          f"{cpu[0]:.2f} cores, pouchdb-server {cpu[1]:.2f} cores")
    if not from_return:
        raise SystemExit("no marker was seen in the stats events")
    for label, in_order in (("request returned", from_return), ("request sent", from_start)):
        ms = sorted(x * 1000 for x in in_order)
        tail = sorted(x * 1000 for x in in_order[len(in_order) // 2:])
        print(f"latency from the write ({label}) to the stats event, {len(ms)} markers ({missing} not seen): "
              f"p50 {percentile(ms, 50):.0f} ms, p90 {percentile(ms, 90):.0f} ms, p99 {percentile(ms, 99):.0f} ms, "
              f"max {ms[-1]:.0f} ms, min {ms[0]:.0f} ms; second half only p50 {percentile(tail, 50):.0f} ms, "
              f"p99 {percentile(tail, 99):.0f} ms")
    rq = [x * 1000 for x in requests]
    what = f"_bulk_docs request itself ({per_batch + 1} docs)" if args.path == "couchdb" else "the marker's POST itself"
    print(f"{what}: p50 {percentile(rq, 50):.0f} ms, "
          f"p99 {percentile(rq, 99):.0f} ms, max {rq[-1]:.0f} ms")


if __name__ == "__main__":
    main()
