"""Benchmark: `sixminutes replay` against DuckDB and a bare msgspec decode, whole processes.

    python bench/replay.py [--n 60000] [--corpus PATH] [--jobs N] [--repeat 3] [--json]

Each contender is a fresh process over the same JSON Lines file (made by bench/corpus.py
when missing) with the same cores, timed from start to exit (interpreter start and imports
included), best of --repeat:
- `sixminutes replay --json` with every built-in plugin and rule (its --jobs default: one
  process per core), its output written to /dev/null;
- DuckDB's fastest form: read_ndjson_objects, one multi-path json_extract_string, and a
  GROUP BY of window, profile and direction (calls, zero-duration calls, billsec);
- msgspec decoding only the variables the KPIs read into a Struct, one process per core,
  each over its share of the file's lines (the floor for a Python decode of these files).
Ratios are replay's rate over each of the others', from this one run; each one's CPU time
(its processes' user + system) is printed beside it, less shaken by a busy machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

DUCKDB = """
import sys, duckdb
con = duckdb.connect()
con.execute(f"SET threads = {int(sys.argv[2])}")
con.execute("SET enable_progress_bar = false")
rows = con.execute('''
SELECT e - e % 360 AS window, profile, direction, count(*) AS calls,
       count(*) FILTER (WHERE b = 0) AS zero_duration, sum(b) AS billsec
FROM (SELECT CAST(x[1] AS BIGINT) AS e, CAST(x[2] AS BIGINT) AS b, x[3] AS profile, x[4] AS direction
      FROM (SELECT json_extract_string(json, ['$.variables.end_epoch', '$.variables.billsec',
                   '$.variables.ccnq_profile', '$.variables.ccnq_direction']) AS x
            FROM read_ndjson_objects(?, maximum_object_size=16777216)))
GROUP BY ALL''', [sys.argv[1]]).fetchall()
print(sum(r[3] for r in rows))
"""

MSGSPEC = """
import sys, msgspec
from concurrent.futures import ProcessPoolExecutor

class Vars(msgspec.Struct):
    end_epoch: int = 0
    billsec: int = 0
    duration: int = 0
    answer_epoch: int = 0
    progress_mediamsec: int = 0
    progressmsec: int = 0
    ccnq_profile: str | None = None
    ccnq_direction: str | None = None
    ccnq_account: str | None = None
    sip_term_status: str | None = None
    hangup_cause: str | None = None
    hangup_cause_q850: str | None = None
    rtp_audio_in_mos: float | None = None

class Doc(msgspec.Struct):
    variables: Vars | None = None
    _id: str | None = None

def share(args):
    path, part, parts = args
    size = __import__("os").path.getsize(path)
    start, stop = size * part // parts, size * (part + 1) // parts
    decode = msgspec.json.Decoder(Doc, strict=False).decode
    n = 0
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            f.readline()  # the line that began before this share belongs to the one before
        while f.tell() <= stop - 1 or (start == 0 and stop == 0):
            line = f.readline()
            if not line:
                break
            try:
                decode(line)
            except msgspec.DecodeError:  # (a bare nan in callStats: not JSON)
                pass
            n += 1
    return n

if __name__ == "__main__":
    path, jobs = sys.argv[1], int(sys.argv[2])
    with ProcessPoolExecutor(jobs) as pool:
        print(sum(pool.map(share, [(path, i, jobs) for i in range(jobs)])))
"""


CPU: dict[str, float] = {}
"""Contender → CPU seconds (user + system, its processes and theirs) of its fastest run: on a
shared machine less noisy than the wall time, which the ratios use."""


def timed(argv: list[str], repeat: int, name: str) -> tuple[float, str]:
    """Best wall time of a whole process, and its standard output."""
    best, out = float("inf"), ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{argv[:3]} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
        if elapsed < best:
            CPU[name] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best, out = min(best, elapsed), done.stdout.decode()
    return best, out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60_000, help="documents to generate when the corpus is missing")
    p.add_argument("--corpus", type=Path, help="JSON Lines corpus (default bench/out/corpus-<n>.jsonl)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="cores for each contender")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = p.parse_args(argv)
    path = args.corpus or HERE / "out" / f"corpus-{args.n}.jsonl"
    if not path.exists():
        from corpus import write_corpus
        print(f"generating {args.n} documents into {path} ...", file=sys.stderr)
        write_corpus(path, args.n)
    n = sum(1 for _ in path.open("rb"))
    py = sys.executable
    jobs = str(args.jobs)
    replay_s, out = timed([py, "-m", "sixminutes.cli", "replay", "--json", "--no-progress",
                           "--jobs", jobs, str(path)], args.repeat, "replay")
    result = json.loads(out)
    calls = sum(stat["count"] for window in result["data"].values()
                for key, stat in window.items() if key.startswith("calls{"))
    if calls != n:
        raise SystemExit(f"replay counted {calls} calls of {n} lines: {result['rejected']}")
    duck_s, out = timed([py, "-c", DUCKDB, str(path), jobs], args.repeat, "duckdb")
    if int(out) != n:
        raise SystemExit(f"DuckDB counted {out.strip()} of {n}")
    msgspec_s, out = timed([py, "-c", MSGSPEC, str(path), jobs], args.repeat, "msgspec")
    if int(out) != n:
        raise SystemExit(f"msgspec decoded {out.strip()} of {n}")
    rates = {"replay": n / replay_s, "duckdb": n / duck_s, "msgspec": n / msgspec_s}
    figures = {
        "corpus": str(path), "docs": n, "bytes_per_doc": round(path.stat().st_size / n),
        "cores": args.jobs, "repeat": args.repeat,
        "python": f"CPython {platform.python_version()} ({sys.executable})",
        "seconds": {"replay": round(replay_s, 3), "duckdb": round(duck_s, 3),
                    "msgspec": round(msgspec_s, 3)},
        "docs_per_s": {k: round(v) for k, v in rates.items()},
        "cpu_seconds": {k: round(v, 3) for k, v in CPU.items()},
        "cpu_us_per_doc": {k: round(v / n * 1e6, 1) for k, v in CPU.items()},
        "ratio_replay_over_duckdb": round(rates["replay"] / rates["duckdb"], 3),
        "ratio_replay_over_msgspec": round(rates["replay"] / rates["msgspec"], 3),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"corpus {path}: {n} docs, {figures['bytes_per_doc']} bytes/doc; {args.jobs} cores; "
          f"whole processes, best of {args.repeat}; {figures['python']}")
    labels = {"replay": f"sixminutes replay --json --jobs {jobs}",
              "duckdb": "DuckDB read_ndjson_objects + json_extract_string + GROUP BY",
              "msgspec": f"msgspec decode of the KPI variables, {jobs} processes"}
    for k, label in labels.items():
        print(f"  {label:<62} {figures['seconds'][k]:>7.2f} s {rates[k]:>10,.0f} docs/s "
              f"{CPU[k]:>7.2f} s CPU ({CPU[k] / n * 1e6:.1f} µs/doc)")
    print(f"replay / DuckDB: {figures['ratio_replay_over_duckdb']:.3f}   "
          f"replay / msgspec decode: {figures['ratio_replay_over_msgspec']:.3f}")


if __name__ == "__main__":
    main()
