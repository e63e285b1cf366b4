"""Benchmark: the sixminutes engine against plain orjson and DuckDB, on one corpus file.

    python bench/engine.py [--n 100000] [--corpus PATH] [--json]

The same JSON Lines corpus (made by bench/corpus.py when missing) is fed to:
- the engine with every built-in plugin, raw line bytes to Engine.feed_many (decoded in
  batches, as `sixminutes replay` does) and to Engine.feed one at a time (as the live service);
- the engine without the threshold rules, and without them and the plugins: what the
  work beyond the decode costs, part by part; and with a per-CDR plugin(ctx) added (the
  seed's kind of plugin, run over the rows of each batch): what one such plugin costs;
- call.decode() alone, with the compiled pre-scan and without it;
- orjson.loads per line (the floor for anything that parses whole documents in Python);
- `sixminutes replay` with one process and with --jobs (one per CPU), reading the file;
- DuckDB reading the file itself and grouping by window, profile, direction;
- with --gzip, `sixminutes replay` of the gzip-compressed corpus, inflated by ISA-L (as
  installed) and by the standard library's zlib (one process), and with --jobs.
Lines are read into memory before the engine and orjson runs, so file I/O is in
neither; DuckDB's figure includes reading the file. Each timing is the best of
--repeat runs in this one process. The Store's memory per (window, series) cell is
measured with tracemalloc on a fresh Store rebuilt from the engine's output.
"""
from __future__ import annotations

import argparse
import gc
import gzip
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import duckdb
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _memory import store_bytes_per_cell  # noqa: E402
from corpus import write_corpus  # noqa: E402

from sixminutes import call, parallel  # noqa: E402
from sixminutes.alerts import Thresholds  # noqa: E402
from sixminutes.config import Config  # noqa: E402
from sixminutes.engine import Engine  # noqa: E402
from sixminutes.plugins import PluginSet  # noqa: E402
from sixminutes.sources import files  # noqa: E402
from sixminutes.sources.files import read_documents  # noqa: E402

PER_CDR_PLUGIN = """
def plugin(ctx):
    ctx.increment("per_cdr", profile=ctx.profile)
"""
_AGGREGATE = """
SELECT e - e % 360 AS window, profile, direction, count(*) AS calls,
       count(*) FILTER (WHERE b = 0) AS zero_duration, sum(b) AS billsec
FROM ({rows}) GROUP BY ALL
"""
# DuckDB does not URL-decode: ccnq_profile / ccnq_direction are grouped as stored.
_READ_JSON = "read_json(columns={variables: STRUCT})"
DUCKDB_QUERIES = {
    "read_ndjson_objects + json_extract_string": _AGGREGATE.format(rows="""
        SELECT CAST(x[1] AS BIGINT) AS e, CAST(x[2] AS BIGINT) AS b, x[3] AS profile, x[4] AS direction
        FROM (SELECT json_extract_string(json, ['$.variables.end_epoch', '$.variables.billsec',
                     '$.variables.ccnq_profile', '$.variables.ccnq_direction']) AS x
              FROM read_ndjson_objects(?, maximum_object_size=16777216))"""),
    _READ_JSON: _AGGREGATE.format(rows="""
        SELECT CAST(variables.end_epoch AS BIGINT) AS e, CAST(variables.billsec AS BIGINT) AS b,
               variables.ccnq_profile AS profile, variables.ccnq_direction AS direction
        FROM read_json(?, format='newline_delimited', maximum_object_size=16777216,
             columns={'variables': 'STRUCT(end_epoch VARCHAR, billsec VARCHAR,
                                           ccnq_profile VARCHAR, ccnq_direction VARCHAR)'})"""),
}


def best_of(repeat: int, prepare: Callable[[], Any], run: Callable[[Any], Any]) -> tuple[float, Any]:
    """Best wall time of run(prepare()) over repeat tries; prepare is not timed."""
    best, result = float("inf"), None
    for _ in range(repeat):
        state = prepare()
        gc.collect()
        t0 = time.perf_counter()
        result = run(state)
        best = min(best, time.perf_counter() - t0)
    return best, result


def run_engine(lines: list[bytes], batched: bool = True) -> Callable[[Engine], Engine]:
    def run(engine: Engine) -> Engine:
        if batched:
            engine.feed_many(lines)
        else:
            feed = engine.feed
            for line in lines:
                feed(line)
        engine.flush()
        return engine
    return run


def bare_engine(plugins: bool) -> Engine:
    """An engine without threshold rules, and with no plugins unless asked for."""
    engine = Engine(Config(retention_hours=None), plugins=None if plugins else PluginSet())
    engine.thresholds = Thresholds([])
    return engine


def run_replay(path: Path, jobs: int) -> Engine:
    """What `sixminutes replay --jobs N PATH` does before it prints: read, count, settle."""
    config = Config(retention_hours=None)
    if jobs > 1:
        engine = parallel.replay([str(path)], config, jobs)
    else:
        engine = Engine(config)
        engine.hold_resolution = True
        engine.feed_many(read_documents([str(path)], chunks=True))
    engine.flush()
    engine.settle()
    return engine


def run_gzip_replay(path: Path, jobs: int, isal: bool) -> Engine:
    """A replay of the gzip file, with ISA-L's inflate or zlib's (in this process only)."""
    kept = files._GzipFile
    files._GzipFile = kept if isal else gzip.GzipFile
    try:
        return run_replay(path, jobs)
    finally:
        files._GzipFile = kept


def gzipped(path: Path) -> Path:
    """The corpus gzip-compressed (level 1, as a log rotation might), made once."""
    out = path.with_name(path.name + ".gz")
    if not out.exists():
        tmp = out.with_name(out.name + ".tmp")
        with path.open("rb") as src, gzip.open(tmp, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        tmp.replace(out)
    return out


def run_decode(lines: list[bytes], prescan: bool) -> int:
    """call.decode() alone, with the compiled pre-scan or without it (msgspec over it all)."""
    kept = call.prescan
    call.prescan = kept if prescan else None
    try:
        decode = call.decode
        for line in lines:
            decode(line)
    finally:
        call.prescan = kept
    return len(lines)


def run_orjson(lines: list[bytes]) -> int:
    loads = orjson.loads
    for line in lines:
        loads(line)
    return len(lines)


def fallback_groups(lines: list[bytes]) -> dict[tuple[int, str, str], tuple[int, int, int]]:
    """(window, profile, direction) → (calls, zero-duration, billsec) of the CDRs without
    ccnq_profile: DuckDB's query leaves them out, the engine files them under the carrier
    their sip_gateway_name names (the generator's fallback CDRs), often one it also has."""
    out: dict[tuple[int, str, str], tuple[int, int, int]] = {}
    for line in lines:
        if b'"ccnq_profile"' in line:
            continue
        c = call.decode(line).call
        key = (c.end_epoch - c.end_epoch % 360, c.profile, c.direction)
        calls, zero, billsec = out.get(key, (0, 0, 0))
        out[key] = (calls + 1, zero + (c.billsec == 0), billsec + c.billsec)
    return out


def cross_check(engine: Engine, rows: list[tuple],
                fallback: dict[tuple[int, str, str], tuple[int, int, int]]) -> int:
    """DuckDB's groups (ccnq3 CDRs only), with the fallback CDRs of the same carriers added
    (:func:`fallback_groups`), must equal the engine's calls/zero_duration/billsec."""
    data = engine.store.to_json()
    agreed = 0
    for window, profile, direction, calls, zero, billsec in rows:
        if profile is None or direction is None:
            continue  # fallback-only CDRs: DuckDB sees no ccnq_* variables
        labels = f'{{direction="{direction}",profile="{profile}"}}'
        series = data[str(window)]
        got = (series[f"calls{labels}"]["count"],
               series.get(f"zero_duration{labels}", {"count": 0})["count"],
               series.get(f"billsec{labels}", {"sum": 0})["sum"])
        more = fallback.get((window, profile, direction), (0, 0, 0))
        calls, zero, billsec = calls + more[0], zero + more[1], (billsec or 0) + more[2]
        if got != (calls, zero, billsec or 0):
            raise SystemExit(f"engine and DuckDB disagree at {window} {labels}: {got} != "
                             f"{(calls, zero, billsec)}")
        agreed += 1
    return agreed


def interpreter() -> str:
    """Which CPython ran: the same code runs markedly faster on some builds (README)."""
    return f"CPython {platform.python_version()} from {sys.base_prefix} ({sys.executable})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="documents to generate when the corpus is missing")
    p.add_argument("--corpus", type=Path, help="JSON Lines corpus (default bench/out/corpus-<n>.jsonl)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is kept")
    p.add_argument("--duckdb-threads", type=int, help="DuckDB threads (default: DuckDB's own)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="processes of the parallel replay row (default: one per CPU)")
    p.add_argument("--gzip", action="store_true",
                   help="also replay the corpus gzip-compressed (made once, beside it)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    path = args.corpus or Path(__file__).resolve().parent / "out" / f"corpus-{args.n}.jsonl"
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    if not path.exists():
        log(f"generating {args.n} documents into {path} ...")
        write_corpus(path, args.n, args.seed)
    lines = path.read_bytes().splitlines()
    n, size = len(lines), sum(map(len, lines))
    log(f"corpus {path}: {n} docs, {size / n:.0f} bytes/doc average, {size / 1e6:.0f} MB; "
        f"best of {args.repeat} runs each")
    log(f"python: {interpreter()}")

    engine_s, engine = best_of(args.repeat, lambda: Engine(Config(retention_hours=None)), run_engine(lines))
    if engine.accepted != n:
        raise SystemExit(f"engine accepted {engine.accepted} of {n}: {dict(engine.rejected)}")
    single_s, single = best_of(args.repeat, lambda: Engine(Config(retention_hours=None)),
                               run_engine(lines, batched=False))
    if single.store.to_json() != engine.store.to_json():
        raise SystemExit("Engine.feed one at a time counted otherwise than feed_many")
    del single
    parts_s = {plugins: best_of(args.repeat, lambda plugins=plugins: bare_engine(plugins),
                                run_engine(lines))[0] for plugins in (True, False)}
    with tempfile.TemporaryDirectory() as plugin_dir:  # the seed's kind of plugin, run per CDR
        Path(plugin_dir, "per_cdr.py").write_text(PER_CDR_PLUGIN)
        per_cdr_s, _ = best_of(args.repeat, lambda: Engine(Config(retention_hours=None,
                                                                  plugin_dirs=[plugin_dir])),
                               run_engine(lines))
    orjson_s, _ = best_of(args.repeat, lambda: None, lambda _, lines=lines: run_orjson(lines))
    decode_s = {fast: best_of(args.repeat, lambda: None,
                              lambda _, lines=lines, fast=fast: run_decode(lines, fast))[0]
                for fast in ((True, False) if call.prescan is not None else (False,))}
    fallback = fallback_groups(lines)
    del lines
    gc.collect()
    replay_s: dict[int, float] = {}
    for jobs in sorted({1, args.jobs}):
        replay_s[jobs], replayed = best_of(args.repeat, lambda: None, lambda _: run_replay(path, jobs))
        if replayed.store.cells != engine.store.cells or replayed.accepted != n:
            raise SystemExit(f"replay --jobs {jobs} counted otherwise than the engine")
        del replayed
    gzip_s: dict[tuple[int, bool], float] = {}
    if args.gzip:
        packed = gzipped(path)
        for jobs, isal in sorted({(1, True), (1, False), (args.jobs, True)}):
            gzip_s[jobs, isal], replayed = best_of(
                args.repeat, lambda: None, lambda _: run_gzip_replay(packed, jobs, isal))
            if replayed.store.cells != engine.store.cells or replayed.accepted != n:
                raise SystemExit(f"gzip replay --jobs {jobs} counted otherwise than the engine")
            del replayed

    con = duckdb.connect()
    if args.duckdb_threads:
        con.execute(f"SET threads = {args.duckdb_threads}")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    duck: dict[str, float] = {}
    groups = agreed = 0
    for name, sql in DUCKDB_QUERIES.items():
        duck[name], rows = best_of(args.repeat, lambda: None, lambda _: con.execute(sql, [str(path)]).fetchall())
        if sum(r[3] for r in rows) != n:
            raise SystemExit(f"DuckDB ({name}) counted {sum(r[3] for r in rows)} of {n}")
        groups, agreed = len(rows), cross_check(engine, rows, fallback)
    duck_name = min(duck, key=duck.get)
    cells, mem, peak, _ = store_bytes_per_cell(engine)

    rate = {"engine": n / engine_s, "engine, feed one at a time": n / single_s,
            "engine, no threshold rules": n / parts_s[True],
            "engine and one per-CDR plugin": n / per_cdr_s,
            "engine, no threshold rules, no plugins": n / parts_s[False],
            "orjson": n / orjson_s,
            **{f"decode, {'with' if fast else 'without'} the pre-scan": n / s
               for fast, s in decode_s.items()},
            **{f"replay --jobs {j}": n / s for j, s in replay_s.items()},
            **{f"replay --jobs {j}, gzip, {'ISA-L' if isal else 'zlib'}": n / s
               for (j, isal), s in gzip_s.items()},
            **{f"duckdb: {k}": n / s for k, s in duck.items()}}
    best_replay = max(replay_s, key=lambda j: n / replay_s[j])
    us = {k: 1e6 / rate[k] for k in rate}
    decode_us = min(v for k, v in us.items() if k.startswith("decode"))
    parts_us = {"decode": decode_us,
                "engine without plugins or rules, beyond the decode":
                    us["engine, no threshold rules, no plugins"] - decode_us,
                "plugins": us["engine, no threshold rules"] - us["engine, no threshold rules, no plugins"],
                "threshold rules": us["engine"] - us["engine, no threshold rules"],
                "one per-CDR plugin(ctx) with one ctx.increment": us["engine and one per-CDR plugin"] - us["engine"],
                "all": us["engine"],
                "twice DuckDB read_json allows": us[f"duckdb: {_READ_JSON}"] / 2}
    result = {
        "corpus": str(path), "python": interpreter(), "docs": n, "bytes_per_doc": round(size / n), "repeat": args.repeat,
        "docs_per_s": {k: round(v) for k, v in rate.items()},
        "duckdb_best": duck_name, "duckdb_threads": threads, "duckdb_groups": groups,
        "duckdb_groups_agreeing_with_engine": agreed,
        "ratio_engine_over_duckdb_read_json": round(rate["engine"] / rate[f"duckdb: {_READ_JSON}"], 3),
        "ratio_engine_over_duckdb_fastest": round(rate["engine"] / rate[f"duckdb: {duck_name}"], 3),
        "ratio_engine_over_orjson": round(rate["engine"] / rate["orjson"], 3),
        "ratio_feed_many_over_feed": round(single_s / engine_s, 3),
        f"ratio_replay_jobs_{best_replay}_over_duckdb_read_json": round(
            rate[f"replay --jobs {best_replay}"] / rate[f"duckdb: {_READ_JSON}"], 3),
        f"ratio_replay_jobs_{best_replay}_over_orjson": round(
            rate[f"replay --jobs {best_replay}"] / rate["orjson"], 3),
        "us_per_cdr": {k: round(v, 1) for k, v in parts_us.items()},
        "store_cells": cells, "store_bytes": mem, "store_bytes_per_cell": round(mem / cells, 1),
        "store_peak_bytes_while_building": peak,
    }
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    print()
    print(f"{'what':<58} {'threads':>7}  {'input':<9} {'docs/s':>9} {'MB/s':>6}")
    print("-" * 94)
    rows = [("sixminutes Engine.feed_many(bytes), all built-in plugins", 1, "memory", rate["engine"]),
            ("sixminutes Engine.feed(bytes) one at a time, the same", 1, "memory",
             rate["engine, feed one at a time"]),
            ("sixminutes Engine.feed_many, plugins, no threshold rules", 1, "memory",
             rate["engine, no threshold rules"]),
            ("sixminutes Engine.feed_many, all, and a per-CDR plugin(ctx)", 1, "memory",
             rate["engine and one per-CDR plugin"]),
            ("sixminutes Engine.feed_many, no plugins, no threshold rules", 1, "memory",
             rate["engine, no threshold rules, no plugins"]),
            ("orjson.loads per line, nothing else", 1, "memory", rate["orjson"])]
    rows += [(f"sixminutes call.decode() alone, {'with' if fast else 'without'} the pre-scan", 1,
              "memory", rate[f"decode, {'with' if fast else 'without'} the pre-scan"])
             for fast in decode_s]
    rows += [(f"sixminutes replay --jobs {j} (read, count, settle)", j, "file",
              rate[f"replay --jobs {j}"]) for j in replay_s]
    rows += [(f"sixminutes replay --jobs {j}, gzip file, {'ISA-L' if isal else 'zlib'}", j,
              "file.gz", n / s) for (j, isal), s in gzip_s.items()]
    rows += [(f"DuckDB {k}", threads, "file", n / s) for k, s in duck.items()]
    for label, nthreads, source, v in rows:
        print(f"{label:<58} {nthreads:>7}  {source:<9} {v:>9,.0f} {v * size / n / 1e6:>6,.0f}")
    print("-" * 94)
    print(f"engine / DuckDB read_json (the baseline the targets are set against): "
          f"{result['ratio_engine_over_duckdb_read_json']:.3f}")
    print(f"engine / DuckDB fastest ({duck_name}): {result['ratio_engine_over_duckdb_fastest']:.3f}")
    print(f"engine / orjson.loads: {result['ratio_engine_over_orjson']:.3f}")
    print(f"Engine.feed_many / Engine.feed one at a time: {result['ratio_feed_many_over_feed']:.3f}")
    print("µs per CDR, one process (differences of the rows above): "
          + "; ".join(f"{k} {v:.1f}" for k, v in parts_us.items()))
    print(f"replay --jobs {best_replay} / DuckDB read_json: "
          f"{result[f'ratio_replay_jobs_{best_replay}_over_duckdb_read_json']:.3f}; "
          f"/ orjson.loads: {result[f'ratio_replay_jobs_{best_replay}_over_orjson']:.3f}")
    print("memory = lines read into a list before timing (no file I/O); file = DuckDB reads the file.")
    print(f"DuckDB groups on (window, ccnq_profile, ccnq_direction) as stored (it does not URL-decode): "
          f"{groups} groups; the {agreed} with ccnq_* equal the engine's calls/zero_duration/billsec.")
    print(f"Store: {cells:,} (window, series) cells in {mem:,} bytes once compacted = "
          f"{mem / cells:.1f} bytes/cell (tracemalloc on a fresh Store; peak while building {peak:,}).")


if __name__ == "__main__":
    main()
