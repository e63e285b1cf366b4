"""Benchmark: do slow live-event clients hurt ingest? 50 SSE clients, some never reading.

    .venv/bin/python bench/sse_clients.py [--rate 1000] [--seconds 60] [--readers 40] [--stalled 10]
                                          [--mode live|catchup]

Two runs on fresh stacks (pouchdb-server in memory + `sixminutes serve` following it):
A without any live-event client, B with --readers clients reading /6minutes/events and
--stalled clients that send the request and never read a byte (their socket buffers fill,
then the service's writes to them block). The same realistic CDRs go in both runs:

- live: a separate process writes them to CouchDB with _bulk_docs at --rate CDR/s while
  the service follows the _changes feed (--path couchdb), or POSTs each to /6minutes/cdr
  as mod_json_cdr does, 32 at a time (--path http);
- catchup: they are all in CouchDB before the service starts, which then reads them as
  fast as it can (its own ceiling, with pouchdb-server only serving the feed).

Printed: each run's accepted rate (while feeding, and all CDRs over the time until the last
was counted), the ratio B/A (target >= 0.9), the service's CPU and CPU per CDR (the figure a
noisy machine moves least), its RSS over time in B, peak RSS B - A (what the clients cost in
memory: both runs count the same CDRs, whose dedup ids and cells make RSS grow in both), and
the hub's clients and dropped events. The machine has 2 cores: the feeder, pouchdb-server,
the clients and the service share them, so absolute rates are a floor; --repeat alternates
A and B so that the machine's other load hits both.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import Feeder, Sampler, bulk_body, cpu_seconds, feed, machine, slope, stack  # noqa: E402

REQUEST = b"GET /6minutes/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"


async def _reader(port: int, stop: Any, counts: dict[str, int]) -> None:
    """Read the stream as a browser would, counting events and bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    tail = b""
    try:
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), 0.5)
            except TimeoutError:
                continue
            if not chunk:
                break
            counts["bytes"] += len(chunk)
            data = tail + chunk
            counts["stats"] += data.count(b"event: stats\n")
            counts["resync"] += data.count(b"event: resync\n")
            tail = data[-20:]
            counts["stats"] -= tail.count(b"event: stats\n")  # counted again with the next chunk
            counts["resync"] -= tail.count(b"event: resync\n")
    finally:
        writer.close()


def _clients(port: int, readers: int, stalled: int, stop: Any, ready: Any, out: Any) -> None:
    """Child process: `stalled` sockets that never read, `readers` that do; report at the end."""
    sockets = []
    for _ in range(stalled):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(REQUEST)
        sockets.append(sock)  # never read from

    async def main() -> list[dict[str, int]]:
        counts = [{"bytes": 0, "stats": 0, "resync": 0} for _ in range(readers)]
        tasks = [asyncio.create_task(_reader(port, stop, c)) for c in counts]
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await asyncio.gather(*tasks, return_exceptions=True)
        return counts

    counts = asyncio.run(main())
    for sock in sockets:
        sock.close()
    out.put(counts)


def run(bodies: list[list[bytes]], total: int, interval: float, mode: str, readers: int, stalled: int,
        settle: float, path: str = "couchdb") -> dict[str, Any]:
    """One run on a fresh stack; the figures of that run."""
    def preload(couch: Any, db: str) -> None:
        for docs in bodies:
            couch.http.post(f"{couch.url}/{db}/_bulk_docs", content=bulk_body(docs),
                            headers={"Content-Type": "application/json"}, timeout=120).raise_for_status()

    with stack(before_service=preload if mode == "catchup" else None) as s:
        ctx = mp.get_context("fork")
        stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
        clients = None
        if readers or stalled:
            clients = ctx.Process(target=_clients, args=(s.service.port, readers, stalled, stop, ready, out),
                                  daemon=True)
            clients.start()
            ready.wait(30)
            deadline = time.monotonic() + 30
            while s.status()["events"]["clients"] < readers + stalled and time.monotonic() < deadline:
                time.sleep(0.1)
        connected = s.status()["events"]["clients"]
        clients_cpu = cpu_seconds(clients.pid) if clients else 0.0
        sampler = Sampler(s)
        if mode == "live":
            target = s.db_url if path == "couchdb" else s.service.url + "/6minutes/cdr"
            feeder = Feeder(target, bodies, interval, mode=path)
            sampler.sample()
            sampler.run_until(lambda: not feeder.process.is_alive(), 1.0)
            feeder.join(10)
            start, fed_until = feeder.start_at, sampler.samples[-1][0]
        else:
            start = time.time()
            sampler.sample()
            fed_until = None
        deadline = time.time() + settle
        sampler.run_until(lambda: sampler.samples[-1][1] >= total or time.time() > deadline, 0.5)
        done = sampler.samples[-1]
        status = s.status()
        clients_cpu = cpu_seconds(clients.pid) - clients_cpu if clients else 0.0
        stop.set()
        counts: list[dict[str, int]] = out.get(timeout=30) if clients else []
        if clients:
            clients.join(10)
        end = done[0]
        half = [(t - start, r / 2**20) for t, _, r, *_ in sampler.samples if t >= start + (end - start) / 2]
        return {
            "connected": connected,
            "accepted": done[1],
            "seconds_to_all": end - start,
            "rate_all": done[1] / (end - start),
            "rate_while_feeding": sampler.rate(start, fed_until) if fed_until else None,
            "cpu": sampler.cpu_share(start, end),
            "service_cpu_ms_per_cdr": 1000 * sampler.cpu_share(start, end)[0] * (end - start) / max(done[1], 1),
            "clients_cpu": clients_cpu / (end - start),
            "rss": [(round(t - start), r / 2**20) for t, _, r, *_ in sampler.samples if t >= start],
            "hwm": done[3] / 2**20,
            "rss_slope_second_half": slope(half) * 60,
            "events": status["events"],
            "snapshots": status["snapshots"],
            "readers": counts,
        }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=1000.0, help="CDRs per second offered (live mode)")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--readers", type=int, default=40)
    p.add_argument("--stalled", type=int, default=10)
    p.add_argument("--mode", choices=("live", "catchup"), default="live")
    p.add_argument("--path", choices=("couchdb", "http"), default="couchdb",
                   help="live mode: _bulk_docs to CouchDB, or one POST /6minutes/cdr per CDR")
    p.add_argument("--repeat", type=int, default=1, help="A/B pairs; the best run of each is compared")
    p.add_argument("--settle", type=float, default=120.0, help="max seconds to wait for the backlog")
    args = p.parse_args(argv)
    interval = 0.1
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    bodies = feed(args.rate, args.seconds, interval)
    total = round(args.rate * interval) * len(bodies)
    print(f"{total} CDRs in {len(bodies)} _bulk_docs of {total // len(bodies)}, "
          f"{sum(len(d) for docs in bodies for d in docs) / total:.0f} bytes/CDR, generated in {time.perf_counter() - t0:.1f} s; "
          f"mode {args.mode}" + (f", offered {args.rate:.0f} CDR/s for {args.seconds:.0f} s through {args.path}"
                                 if args.mode == "live" else ""))
    results: dict[str, dict[str, Any]] = {}
    for round_ in range(args.repeat):  # A and B alternate: the machine's noise hits both alike
        for name, readers, stalled in (("A", 0, 0), ("B", args.readers, args.stalled)):
            r = run(bodies, total, interval, args.mode, readers, stalled, args.settle, args.path)
            feeding = (f"{r['rate_while_feeding']:.0f} CDR/s while feeding, " if r["rate_while_feeding"] else "")
            print(f"run {name}{round_ + 1}: {r['connected']} SSE clients ({readers} reading, {stalled} never "
                  f"reading); accepted {r['accepted']} of {total}: {feeding}{r['rate_all']:.0f} CDR/s over "
                  f"{r['seconds_to_all']:.1f} s until the last was counted; CPU service "
                  f"{r['cpu'][0]:.2f} cores ({r['service_cpu_ms_per_cdr']:.3f} ms/CDR), pouchdb-server "
                  f"{r['cpu'][1]:.2f} cores, SSE client process {r['clients_cpu']:.2f} cores; peak RSS "
                  f"{r['hwm']:.0f} MiB; RSS slope over the second half {r['rss_slope_second_half']:+.2f} "
                  f"MiB/min; hub {r['events']}; last snapshot {r['snapshots']['last_seconds']} s, "
                  f"{r['snapshots'].get('last_cells')} cells", flush=True)
            if name not in results or r["rate_all"] > results[name]["rate_all"]:
                results[name] = r
    a, b = results["A"], results["B"]
    print("RSS of B over time (s: MiB): " + ", ".join(f"{t}: {m:.0f}" for t, m in b["rss"][::max(1, len(b["rss"]) // 15)]))
    if b["readers"]:
        got = [c["stats"] for c in b["readers"]]
        print(f"readers: stats events received min {min(got)} / max {max(got)}, "
              f"resync {sum(c['resync'] for c in b['readers'])} in all, "
              f"{sum(c['bytes'] for c in b['readers']) / len(got) / 2**20:.1f} MiB read each on average")
    print(f"service CPU per CDR B/A: {b['service_cpu_ms_per_cdr'] / a['service_cpu_ms_per_cdr']:.3f}; "
          f"peak RSS B - A: {b['hwm'] - a['hwm']:+.1f} MiB (what 50 clients cost in memory; both runs "
          f"count the same CDRs, whose dedup ids and cells make RSS grow in both)")
    ratio = b["rate_all"] / a["rate_all"]
    print(f"ratio B/A (all CDRs / time until counted, best of {args.repeat} each): {ratio:.3f} (target >= 0.9: "
          f"{'met' if ratio >= 0.9 else 'MISSED'})")
    if a["rate_while_feeding"] and b["rate_while_feeding"]:
        print(f"ratio B/A (accepted rate while feeding): {b['rate_while_feeding'] / a['rate_while_feeding']:.3f}")


if __name__ == "__main__":
    main()
