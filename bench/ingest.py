"""Benchmark: HTTP ingest of mod_json_cdr POSTs, `sixminutes serve` against a bare route, with wrk.

    python bench/ingest.py [--seconds 10] [--connections 1,32] [--threads 2] [--rounds 1]

One realistic FreeSWITCH CDR (~9 KB, from bench/corpus.py) is POSTed over and over, each
time with a new uuid and an end time of now, by `wrk` (Debian's package: a compiled client,
so the figures are the server's, not a Python load generator's), to:
- `sixminutes serve` (a real process, its state in a fresh SQLite file, the token given),
  as raw JSON (`application/json`) and as FreeSWITCH sends it by default with encode=true
  (`cdr=` + the URL-encoded JSON, `application/x-www-form-urlencoded`);
- a bare Starlette route on the same uvicorn, which reads the body and parses it with
  orjson (the floor of any Python service taking these POSTs).
Each at every --connections count, for --seconds. Printed: requests/s, p50/p99 latency, the
service's worst event-loop stall during the run (its own probe, /metrics), and the ratios
of the same run: serve / bare (raw), and encode=true / raw (serve). With --rounds N, the
three runs are taken in turns N times, both servers up throughout (the one not under load
idles), and the ratios' medians are printed last: on a shared machine a load that comes
and goes then weighs on every kind alike, not on one run of three. After each
run the service's own count of accepted CDRs is compared with the 2xx answers wrk saw (a
request cut at the end of a run may be counted without its answer being seen, so the
count may exceed the 2xx by at most the connections).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "integration")]

from _service import machine  # noqa: E402
from service_process import ServiceProcess  # noqa: E402

BARE = """
import sys, orjson, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def cdr(request):
    orjson.loads(await request.body())
    return Response(b'{"ok":true}', media_type="application/json")

app = Starlette(routes=[Route("/6minutes/cdr", cdr, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

LUA = """
local prefix, suffix, headers, run
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  prefix = io.open(args[1], "rb"):read("*a")
  suffix = io.open(args[2], "rb"):read("*a")
  headers = {["Content-Type"] = args[3], ["Authorization"] = "Bearer " .. args[4]}
  run = args[5]
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/6minutes/cdr", headers,
                    prefix .. string.format("bench-%s-%d-%d", run, tid, counter) .. suffix)
end
"""

MARK = "UUIDMARKUUID"
TOKEN = "bench-token"


def _installed(name: str) -> bool:
    try:
        version(name)
        return True
    except PackageNotFoundError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def template(corpus: Path) -> dict:
    """The first CDR of the corpus, its uuid to be replaced per request, no _id."""
    with corpus.open("rb") as f:
        doc = json.loads(f.readline())
    doc.pop("_id", None)
    doc["variables"]["uuid"] = MARK
    return doc


def bodies(doc: dict, now: int) -> dict[str, tuple[str, bytes, bytes]]:
    """Per form: (content type, the body before the uuid, the body after it)."""
    doc = json.loads(json.dumps(doc))
    v = doc["variables"]
    length = int(v.get("end_epoch", now)) - int(v.get("start_epoch", now))
    v["end_epoch"], v["start_epoch"] = str(now), str(now - max(length, 0))
    raw = json.dumps(doc, separators=(",", ":")).encode()
    # FreeSWITCH's switch_url_encode leaves letters, digits and -._~ as they are: the mark too
    encoded = b"cdr=" + urllib.parse.quote(raw, safe="").encode()
    out = {}
    for form, (ctype, body) in {"raw": ("application/json", raw),
                                "encode=true": ("application/x-www-form-urlencoded", encoded)}.items():
        before, after = body.split(MARK.encode())
        out[form] = (ctype, before, after)
    return out


def wrk(url: str, seconds: float, connections: int, threads: int, script: Path,
        args: list[str]) -> dict:
    """Run wrk; its requests/s, 2xx count and latency percentiles (ms)."""
    out = subprocess.run(
        ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
         "-s", str(script), url, "--", *args], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out)[1])
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
            "ok": requests - (int(bad[1]) if bad else 0), "non2xx": int(bad[1]) if bad else 0,
            "socket_errors": sum(map(int, errors.groups())) if errors else 0,
            "p50": ms("50"), "p99": ms("99")}


def worst_stall(service: ServiceProcess) -> float:
    """The longest event-loop stall since the previous call (the service's own probe)."""
    text = service.get("/metrics").text
    return float(re.search(r"^sixminutes_event_loop_lag_max_seconds ([\d.e+-]+)$", text, re.M)[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def prepare(corpus: Path) -> None:
    """What a wrk benchmark needs first: wrk itself, and the corpus (made when absent)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")
    if not corpus.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "corpus.py"), "--n", "1000",
                        "--out", str(corpus)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each kind, taken in turns (serve raw, encode=true, bare)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / "out" / "corpus-1000.jsonl")
    args = parser.parse_args()
    prepare(args.corpus)
    connections = [int(c) for c in args.connections.split(",")]
    doc = template(args.corpus)
    stack = ", ".join(f"{name} {version(name)}" for name in ("uvicorn", "httptools", "uvloop")
                      if _installed(name))
    print(f"one CDR of {args.corpus.name} per POST, a new uuid each; wrk -t{args.threads} "
          f"--latency, {args.seconds:g} s a run, {args.rounds} round(s); {stack}; {machine()}")
    ratios: dict[int, list[tuple[float, float]]] = {c: [] for c in connections}
    with tempfile.TemporaryDirectory(prefix="sixminutes-ingest-") as tmp:
        work = Path(tmp)
        script = work / "post.lua"
        script.write_text(LUA)
        forms = bodies(doc, int(time.time()))
        for form, (_, before, after) in forms.items():
            (work / f"before-{form}").write_bytes(before)
            (work / f"after-{form}").write_bytes(after)
        ports = {"serve": free_port(), "bare": free_port()}
        service = ServiceProcess(work / "service", token=TOKEN, log_level="warning",
                                 port=ports["serve"])
        service.start()
        bare = subprocess.Popen([sys.executable, "-c", BARE, str(ports["bare"])])
        try:
            wait_port(ports["bare"])
            for target, form in (("serve", "raw"), ("bare", "raw")):  # warm up, not counted
                wrk(f"http://127.0.0.1:{ports[target]}", 1, max(connections), args.threads, script,
                    [str(work / f"before-{form}"), str(work / f"after-{form}"), forms[form][0],
                     TOKEN, "warm"])
            for n in range(args.rounds):  # (in turns: a load that comes and goes on a shared
                for c in connections:     # machine then weighs on every kind alike)
                    results = {}
                    for target, form in (("serve", "raw"), ("serve", "encode=true"), ("bare", "raw")):
                        results[(target, form)] = run(service if target == "serve" else None,
                                                      ports[target], args, c, script, work, form,
                                                      forms[form][0], f"{form[:3]}{c}r{n}")
                        print(line(target, form, c, results[(target, form)]), flush=True)
                    serve, bare_raw = results[("serve", "raw")], results[("bare", "raw")]
                    encoded = results[("serve", "encode=true")]
                    ratios[c].append((serve["rate"] / bare_raw["rate"], encoded["rate"] / serve["rate"]))
                    print(f"-c{c}: serve / bare route {ratios[c][-1][0]:.3f}   "
                          f"encode=true / raw {ratios[c][-1][1]:.3f}", flush=True)
        finally:
            service.close()
            bare.terminate()
            bare.wait()
    if args.rounds > 1:
        for c in connections:
            ours, encode = (sorted(r[i] for r in ratios[c]) for i in (0, 1))
            print(f"-c{c}, {args.rounds} rounds: serve / bare route median {statistics.median(ours):.3f} "
                  f"(min {ours[0]:.3f}, max {ours[-1]:.3f})   encode=true / raw median "
                  f"{statistics.median(encode):.3f} (min {encode[0]:.3f}, max {encode[-1]:.3f})")


def run(service: ServiceProcess | None, port: int, args: argparse.Namespace, c: int,
        script: Path, work: Path, form: str, ctype: str, label: str) -> dict:
    """One wrk run; for the service, with its count of accepted CDRs and its worst stall."""
    if service is not None:
        counted = service.status()["accepted"]
        worst_stall(service)  # (from here on)
    result = wrk(f"http://127.0.0.1:{port}", args.seconds, c, args.threads, script,
                 [str(work / f"before-{form}"), str(work / f"after-{form}"), ctype, TOKEN, label])
    if service is not None:
        time.sleep(1.0)  # (the last group commit)
        result["counted"] = service.status()["accepted"] - counted
        result["stall"] = worst_stall(service)
    return result


def line(target: str, form: str, c: int, result: dict) -> str:
    extra = ""
    if "counted" in result:
        extra = (f"  worst loop stall {result['stall'] * 1000:.0f} ms;"
                 f"  counted {result['counted']:,} of {result['ok']:,} 2xx")
    if result["non2xx"] or result["socket_errors"]:
        extra += f"  non-2xx {result['non2xx']}, socket errors {result['socket_errors']}"
    return (f"  {target:5} {form:11} -c{c:<3} {result['rate']:9,.0f} req/s   "
            f"p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms{extra}")


if __name__ == "__main__":
    main()
