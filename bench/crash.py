"""kill -9 at random moments while CDRs flow in; are the totals still exact?

    python bench/crash.py [--cdrs 20000] [--kills 20] [--path couchdb|http|both] [--seed S]

The procedure of tests/integration/test_serve_crash.py (tests/integration/crash_run.py) at a
scale too large for CI: a real `sixminutes serve` subprocess, a real pouchdb-server on disk
(CouchDB path) or mod_json_cdr-like clients that re-send a POST cut by a kill (HTTP path),
SIGKILL at moments drawn from random.Random(seed), a restart on the same state file after each,
and at the end every series of every window compared with the engine counting the same CDRs
offline. Prints one line per path: kills, CDRs, restarts, time, and "exact" or the
differences; exits 1 if any path is not exact.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from crash_run import crash_couchdb, crash_http  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cdrs", type=int, default=20000, help="CDRs per path")
    parser.add_argument("--kills", type=int, default=20, help="kill -9 per path")
    parser.add_argument("--path", choices=("couchdb", "http", "both"), default="both")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="CouchDB path: how long the writes last (default: 1 s per 500 "
                             "CDRs, at least 2 s per kill)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    seconds = args.seconds or max(args.cdrs / 500, 2.0 * args.kills)
    print(f"machine: {os.cpu_count()} CPUs, {_cpu_model()}, Python {platform.python_version()}; "
          f"seed {seed}", flush=True)
    exact = True
    with tempfile.TemporaryDirectory(prefix="sixminutes-crash-") as tmp:
        if args.path in ("couchdb", "both"):
            result = crash_couchdb(Path(tmp) / "couchdb", args.cdrs, args.kills, seed, seconds)
            print(result.summary(), flush=True)
            exact &= result.exact
        if args.path in ("http", "both"):
            result = crash_http(Path(tmp) / "http", args.cdrs, args.kills, seed)
            print(result.summary(), flush=True)
            exact &= result.exact
    return 0 if exact else 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
