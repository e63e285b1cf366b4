"""Write a synthetic FreeSWITCH CDR corpus as JSON Lines, for benchmarks and replays.

    python bench/corpus.py --out bench/out/corpus.jsonl --n 100000 --seed 1

One compact mod_json_cdr document per line; end times spread over 24 h before --start.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sixminutes.sources.synthetic import Generator  # noqa: E402

DEFAULT_START = 1_700_000_000 - 1_700_000_000 % 86400  # a fixed UTC midnight, for repeatability


def write_corpus(out: Path, n: int, seed: int = 1, start: int = DEFAULT_START,
                 span: int = 86400) -> tuple[int, int]:
    """Write n documents to out (one per line); return (count, bytes written)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    count = size = 0
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("wb") as f:
        for raw, _ in Generator(seed=seed).corpus(n, start, span):
            f.write(raw + b"\n")
            count += 1
            size += len(raw) + 1
    tmp.replace(out)  # a half-written corpus never looks complete
    return count, size


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench/out/corpus.jsonl"))
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", type=int, default=DEFAULT_START, help="first second of the span (UTC epoch)")
    p.add_argument("--span", type=int, default=86400, help="seconds covered by end times")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    count, size = write_corpus(args.out, args.n, args.seed, args.start, args.span)
    dt = time.perf_counter() - t0
    print(f"{args.out}: {count} docs, {size} bytes, {size / max(count, 1):.0f} bytes/doc average, "
          f"{dt:.1f} s ({count / dt:.0f} docs/s)")


if __name__ == "__main__":
    main()
