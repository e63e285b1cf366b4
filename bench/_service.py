"""What the service benchmarks share: a real stack, a paced feeder in its own process, RSS.

Why: bench/sse_clients.py, bench/latency.py and bench/load.py all measure a real
`sixminutes serve` subprocess fed by a real pouchdb-server (the test suite's own
wrappers, tests/couchdb_server.py and tests/integration/service_process.py), with the
load generated in a separate process so that the service's figures are its own. On a
2-core machine the feeder, pouchdb-server and the service still share the CPU: the
figures are a floor, not the service's ceiling.
"""
from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from couchdb_server import PouchServer  # noqa: E402
from service_process import ServiceProcess  # noqa: E402

from sixminutes.sources.synthetic import Generator  # noqa: E402

__all__ = ["Stack", "stack", "rss", "cpu_seconds", "machine", "feed", "Feeder", "bulk_body",
           "Sampler", "slope"]


def rss(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in bytes: its memory now and at its peak."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (children not included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    """One line naming the machine the figures come from."""
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 2**20
    return (f"{os.cpu_count()} CPUs ({model}), {mem:.0f} GiB RAM, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


@dataclass
class Stack:
    """A pouchdb-server, a database on it, and `sixminutes serve` following that database."""

    couch: PouchServer
    db: str
    service: ServiceProcess

    @property
    def db_url(self) -> str:
        return f"{self.couch.url}/{self.db}"

    def status(self) -> dict[str, Any]:
        return self.service.status()

    def accepted(self) -> int:
        return self.status()["accepted"]


@contextlib.contextmanager
def stack(workdir: Path | None = None, args: tuple[str, ...] = (), config: str | None = None,
          before_service: Callable[[PouchServer, str], None] | None = None) -> Iterator[Stack]:
    """Start pouchdb-server (in memory) and a service following one of its databases from 0;
    ``before_service(couch, db)`` runs in between (to preload the database)."""
    with contextlib.ExitStack() as stack_:
        if workdir is None:
            workdir = Path(stack_.enter_context(tempfile.TemporaryDirectory(prefix="sixminutes-bench-")))
        (workdir / "couch").mkdir(parents=True, exist_ok=True)
        couch = PouchServer(workdir / "couch").start()
        stack_.callback(couch.close)
        db = couch.create_db("cdrs")
        if before_service is not None:
            before_service(couch, db)
        service = ServiceProcess(workdir / "service", couchdb=[f"{couch.url}/{db}"], since="0",
                                 log_level="warning", args=args, config=config)
        service.start()
        stack_.callback(service.close)
        yield Stack(couch, db, service)


def bulk_body(docs: list[bytes]) -> bytes:
    """A _bulk_docs body from raw JSON documents, without parsing them again."""
    return b'{"docs":[' + b",".join(docs) + b"]}"


async def _post_each(url: str, batches: list[list[bytes]], interval: float, start_at: float,
                     sent: Any, marks: Any, concurrency: int, token: str | None) -> None:
    """POST every document on its own (as mod_json_cdr does), batch i due at start_at + i × interval,
    over ``concurrency`` kept-alive connections written to directly (an HTTP client library
    in Python tops out near 300 POSTs/s here: it would measure itself); record when the last
    document of each batch (its marker, if any) was answered."""
    parts = httpx.URL(url)
    head = (f"POST {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\n"
            "Content-Type: application/json\r\n"
            + (f"Authorization: Bearer {token}\r\n" if token else "")).encode()
    queue: asyncio.Queue = asyncio.Queue()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.host, parts.port)
        while True:
            item = await queue.get()
            if item is None:
                writer.close()
                return
            doc, mark = item
            before = time.time()
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(doc) + doc)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if not status.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"POST answered {status!r}")
            if mark is not None:
                marks.put((mark, before, time.time()))
            with sent.get_lock():
                sent.value += 1

    await asyncio.sleep(max(0.0, start_at - time.time()))
    workers = [asyncio.create_task(connection()) for _ in range(concurrency)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i, docs in enumerate(batches):
        await asyncio.sleep(max(0.0, t0 + i * interval - loop.time()))
        for k, doc in enumerate(docs):
            queue.put_nowait((doc, i if k == len(docs) - 1 else None))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)


def _feed(target: str, batches: list[list[bytes]], interval: float, start_at: float,
          sent: Any, marks: Any, mode: str, concurrency: int, token: str | None = None) -> None:
    """Child process: send the batches at a fixed pace from start_at; record when each returns."""
    if mode == "http":
        asyncio.run(_post_each(target, batches, interval, start_at, sent, marks, concurrency, token))
        return
    bodies = [bulk_body(docs) for docs in batches]
    with httpx.Client(timeout=60.0) as client:
        delay = start_at - time.time()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        for i, body in enumerate(bodies):
            due = t0 + i * interval
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            before = time.time()
            response = client.post(target + "/_bulk_docs", content=body,
                                   headers={"Content-Type": "application/json"})
            response.raise_for_status()
            marks.put((i, before, time.time()))
            with sent.get_lock():
                sent.value += 1


class Feeder:
    """Send pre-built batches of documents at a fixed pace from a separate process: one
    _bulk_docs request per batch to CouchDB (mode "couchdb", target: the database URL), or
    one POST per document to /6minutes/cdr (mode "http", target: that URL)."""

    def __init__(self, target: str, batches: list[list[bytes]], interval: float,
                 mode: str = "couchdb", concurrency: int = 32, token: str | None = None) -> None:
        ctx = mp.get_context("fork")
        self.sent = ctx.Value("i", 0)
        self.marks: Any = ctx.Queue()
        self.batches = len(batches)
        self.start_at = time.time() + 0.5
        self.process = ctx.Process(target=_feed, args=(target, batches, interval, self.start_at,
                                                       self.sent, self.marks, mode, concurrency,
                                                       token),
                                   daemon=True)
        self.process.start()

    def join(self, timeout: float | None = None) -> list[tuple[int, float, float]]:
        """Wait for the feeder; (batch index, time before the request, time it returned) each."""
        out = []
        deadline = time.monotonic() + (timeout or 1e9)
        while len(out) < self.batches and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                out.append(self.marks.get(timeout=0.5))
            if not self.process.is_alive() and self.marks.empty():
                break
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
        return sorted(out)


def feed(rate: float, seconds: float, batch_every: float = 0.1, seed: int = 1, accounts: int = 3000,
         end_epoch: Callable[[int], int] | None = None, extra: Callable[[int], bytes | None] | None = None
         ) -> list[list[bytes]]:
    """Pre-built batches: rate × seconds realistic CDRs in batches of rate × batch_every.

    End times default to the last 30 s before now (live traffic); ``extra(i)`` may add one
    document to batch i (a latency marker)."""
    generator = Generator(seed=seed, accounts=accounts)
    per_batch = max(1, round(rate * batch_every))
    batches = round(seconds / batch_every)
    now = int(time.time())
    bodies = []
    n = 0
    for i in range(batches):
        docs = []
        for _ in range(per_batch):
            docs.append(generator.cdr(end_epoch(n) if end_epoch else now - n % 30)[0])
            n += 1
        marker = extra(i) if extra else None
        if marker is not None:
            docs.append(marker)
        bodies.append(docs)
    return bodies


class Sampler:
    """Samples (time, accepted, VmRSS, VmHWM, service CPU s, pouchdb CPU s) every ``every`` s."""

    def __init__(self, stack_: Stack) -> None:
        self.stack = stack_
        self.samples: list[tuple[float, int, int, int, float, float]] = []

    def sample(self) -> tuple[float, int, int, int, float, float]:
        accepted = self.stack.accepted()
        pid = self.stack.service.process.pid
        r, hwm = rss(pid)
        couch = self.stack.couch._process
        s = (time.time(), accepted, r, hwm, cpu_seconds(pid), cpu_seconds(couch.pid) if couch else 0.0)
        self.samples.append(s)
        return s

    def cpu_share(self, since: float, until: float) -> tuple[float, float]:
        """CPU cores used by the service and by pouchdb-server between two times."""
        inside = [s for s in self.samples if since <= s[0] <= until]
        if len(inside) < 2:
            return 0.0, 0.0
        a, b = inside[0], inside[-1]
        return (b[4] - a[4]) / (b[0] - a[0]), (b[5] - a[5]) / (b[0] - a[0])

    def run_until(self, done: Callable[[], bool], every: float = 1.0) -> None:
        while not done():
            self.sample()
            time.sleep(every)
        self.sample()

    def rate(self, since: float, until: float) -> float:
        """Accepted CDRs per second between two times (nearest samples)."""
        inside = [s for s in self.samples if since <= s[0] <= until]
        if len(inside) < 2:
            return 0.0
        (t0, n0, *_), (t1, n1, *_) = inside[0], inside[-1]
        return (n1 - n0) / (t1 - t0)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0
