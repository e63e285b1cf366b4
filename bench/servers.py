"""Benchmark: the ASGI server under the bare ingest route, uvicorn against granian, with wrk.

    .venv/bin/python bench/servers.py [--seconds 5] [--rounds 2]

Issue 16 asks to choose the server stack by measurement. The same bare Starlette route as
bench/ingest.py's (read the body, parse it with orjson, answer) runs on uvicorn (httptools,
uvloop: the service's stack) and on granian (Rust HTTP, ASGI interface, one worker, uvloop),
alternately, each loaded by wrk with one realistic CDR a POST at -c1 and -c32. It prints each
run and granian / uvicorn per concurrency. granian is not a dependency: `pip install granian`
first (the benchmark says so when it is missing).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ingest  # noqa: E402

APP = """
import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def cdr(request):
    orjson.loads(await request.body())
    return Response(b'{"ok":true}', media_type="application/json")

app = Starlette(routes=[Route("/6minutes/cdr", cdr, methods=["POST"])])
"""


def commands(port: int) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "uvicorn": [py, "-c", "import uvicorn, bare; uvicorn.run(bare.app, host='127.0.0.1', "
                    f"port={port}, log_level='warning')"],
        "granian": [py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
                    "--port", str(port), "--workers", "1", "--loop", "uvloop",
                    "--log-level", "warning", "bare:app"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    if find_spec("granian") is None:
        raise SystemExit("granian is not installed: .venv/bin/pip install granian")
    corpus = HERE / "out" / "corpus-1000.jsonl"
    ingest.prepare(corpus)
    ctype, before, after = ingest.bodies(ingest.template(corpus), int(time.time()))["raw"]
    rates: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "bare.py").write_text(APP)
        (d / "before").write_bytes(before)
        (d / "after").write_bytes(after)
        (d / "post.lua").write_text(ingest.LUA)
        for round_ in range(args.rounds):
            for name in ("uvicorn", "granian"):
                port = ingest.free_port()
                server = subprocess.Popen(commands(port)[name], cwd=d)
                try:
                    ingest.wait_port(port)
                    for c in (1, 32):
                        r = ingest.wrk(f"http://127.0.0.1:{port}/6minutes/cdr", args.seconds, c, 2,
                                       d / "post.lua", [str(d / "before"), str(d / "after"), ctype,
                                                        "none", f"{name}-{round_}-{c}"])
                        rates.setdefault((name, c), []).append(r["rate"])
                        print(f"  {name:8s} -c{c:<3d} {r['rate']:9,.0f} req/s   p50 {r['p50']:6.2f} ms"
                              f"  p99 {r['p99']:6.2f} ms", flush=True)
                finally:
                    server.terminate()
                    server.wait()
    for c in (1, 32):
        ratios = [g / u for g, u in zip(rates[("granian", c)], rates[("uvicorn", c)])]
        print(f"-c{c}: granian / uvicorn " + ", ".join(f"{x:.3f}" for x in ratios))


if __name__ == "__main__":
    main()
