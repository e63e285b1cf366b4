"""Benchmark: a CouchDB catch-up, `sixminutes serve` against a bare `_changes` reader.

    python bench/catchup.py [--n 20000] [--repeat 2]

--n realistic FreeSWITCH CDRs (bench/corpus.py's, their end times moved to the last hour)
are written to a real pouchdb-server (in memory) before anything reads them. Then, on the
same server and database, best of --repeat:
- a bare reader: one continuous `_changes` feed with include_docs from 0, read with httpx
  (the client the service uses) as raw bytes split into lines, each line parsed with orjson,
  until the database's last seq (what any Python follower must at least do);
- `sixminutes serve --couchdb URL --since 0` (a real process, a fresh state file): the CDRs
  it counted per second, from its first status answer to the status saying every change
  is counted (`counted` reaching the database's seq).
Printed: CDRs/s of each and their ratio, from the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from _service import bulk_body, machine  # noqa: E402
from couchdb_server import PouchServer  # noqa: E402
from service_process import ServiceProcess  # noqa: E402


def documents(corpus: Path, n: int, now: int) -> list[bytes]:
    """The corpus's first n CDRs, ending within the last hour (retention keeps them)."""
    out = []
    with corpus.open("rb") as f:
        for i, line in enumerate(f):
            if i == n:
                break
            doc = json.loads(line)
            v = doc["variables"]
            shift = now - 60 - int(v["end_epoch"]) - (i % 3000)
            for name in ("start_epoch", "answer_epoch", "end_epoch"):
                if str(v.get(name, "0")).isdigit() and int(v[name]) > 0:
                    v[name] = str(int(v[name]) + shift)
            out.append(orjson.dumps(doc))
    if len(out) < n:
        raise SystemExit(f"{corpus} holds only {len(out)} CDRs")
    return out


async def bare(url: str, last: int) -> float:
    """Seconds a bare reader takes to read and parse the whole feed up to seq ``last``."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=None) as client:
        params = {"feed": "continuous", "include_docs": "true", "since": "0", "heartbeat": "10000"}
        # identity, as the service asks: pouchdb-server gzips a feed otherwise, and holds its
        # tail in the compressor until more comes
        async with client.stream("GET", f"{url}/_changes", params=params,
                                 headers={"Accept-Encoding": "identity"}) as response:
            rest = b""
            async for chunk in response.aiter_raw():  # bytes split on newlines: no text decode
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    row = orjson.loads(line)
                    if int(str(row.get("seq", 0)).split("-")[0]) >= last:
                        return time.perf_counter() - started
    raise SystemExit("the feed ended before its last seq")


def served(url: str, last: int, work: Path) -> float:
    """CDRs per second `serve` counts while it catches up."""
    service = ServiceProcess(work, couchdb=[url], since="0", log_level="warning")
    service.start()
    try:
        def counted() -> tuple[float, int, object]:
            status = service.status()
            return time.perf_counter(), status["accepted"] + sum(status["rejected"].values()), \
                status["sources"][0].get("counted")
        t0, n0, _ = counted()
        while True:
            t1, n1, seq = counted()
            if seq is not None and int(str(seq).split("-")[0]) >= last:
                return (n1 - n0) / (t1 - t0)
            if t1 - t0 > 1800:
                raise SystemExit("serve did not catch up in 30 minutes")
            time.sleep(0.1)
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / "out" / "corpus-60000.jsonl")
    args = parser.parse_args()
    if not args.corpus.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "corpus.py"), "--n", "60000",
                        "--out", str(args.corpus)], check=True)
    docs = documents(args.corpus, args.n, int(time.time()))
    print(f"{args.n:,} CDRs of {args.corpus.name} ({sum(map(len, docs)) / len(docs):,.0f} bytes "
          f"each) in pouchdb-server --in-memory; best of {args.repeat}; {machine()}")
    with tempfile.TemporaryDirectory(prefix="sixminutes-catchup-") as tmp:
        work = Path(tmp)
        couch = PouchServer(work / "couch").start()
        try:
            db = couch.create_db("cdrs")
            url = f"{couch.url}/{db}"
            for start in range(0, len(docs), 500):
                couch.http.post(f"{url}/_bulk_docs", content=bulk_body(docs[start:start + 500]),
                                headers={"Content-Type": "application/json"},
                                timeout=300).raise_for_status()
            last = int(str(couch.info(db)["update_seq"]).split("-")[0])
            reader = max(args.n / asyncio.run(bare(url, last)) for _ in range(args.repeat))
            print(f"  bare _changes reader (httpx + orjson)   {reader:9,.0f} CDRs/s", flush=True)
            serve = max(served(url, last, work / f"service{i}") for i in range(args.repeat))
            print(f"  sixminutes serve --since 0              {serve:9,.0f} CDRs/s", flush=True)
        finally:
            couch.close()
    print(f"serve / bare reader: {serve / reader:.3f}")


if __name__ == "__main__":
    main()
