"""Mutation testing with mutmut, one module at a time, and the score it prints (`make mutation`).

    python tools/mutation.py                 # every module of MODULES, in turn
    python tools/mutation.py windows stats   # just these
    python tools/mutation.py --list          # the modules and the tests they are checked with
    python tools/mutation.py --resume lifecycle   # reuse build/mutation/work (its mutants and stats)

The package and the tests are copied to build/mutation/work with a `[tool.mutmut]` section
naming every module; mutmut runs the tests once there to learn which tests reach which
function, then the modules are mutated one at a time (`mutmut run 'sixminutes.<module>.*'`),
each mutant checked by the tests that reach the function it changes. One mutmut worker (two
cores are shared). The compiled pre-scan (`_prescan*.so`) is copied with the package; mutmut
only mutates `.py` files.

It prints, per module, killed / tested and the score (killed and timed out over tested, as
`mutmut badge` counts it; a mutant no test reaches counts as not killed), then the total; the
diffs of the mutants that survived are written to build/mutation/work/survivors-<module>.txt.
The hand-made mutations of the edges (tests that need a running service) are checked by
tools/hand_mutations.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "mutation"
MUTMUT = Path(sys.executable).parent / "mutmut"

# The modules mutated (under sixminutes/): the core, then the edges that have in-process tests.
MODULES = ["call", "rawjson", "windows", "stats", "store", "batch", "series", "plugins", "alerts",
           "evidence", "lifecycle", "dedup", "engine", "board", "thresholds", "incidents",
           "state", "snapshots", "parallel", "web/static"]

# The tests: in-process ones only (mutmut's trampolines live in the test process, so a test
# that runs `sixminutes serve` in a subprocess cannot kill a mutant; tools/hand_mutations.py
# covers those). mutmut runs them once to learn which tests reach which function, then checks
# each mutant with the tests that reach the function it changes.
TESTS = ["tests/test_*.py", "tests/web/test_*.py", "tests/browser/test_static_files.py"]


def prepare(work: Path) -> None:
    """A fresh work directory: package, tests, ../shared, and a config naming every module."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    junk = shutil.ignore_patterns("__pycache__", "node_modules", "test-artifacts", ".hypothesis")
    shutil.copytree(ROOT / "sixminutes", work / "sixminutes", ignore=junk)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=junk)
    shared = ROOT.parent / "shared"  # the tests read ../shared/fixtures
    if shared.exists():
        os.symlink(shared.resolve(), work / "shared")
    tests = sorted(str(p.relative_to(ROOT)) for pattern in TESTS for p in ROOT.glob(pattern))
    (work / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        'source_paths = ["sixminutes"]\n'
        f"only_mutate = {json.dumps([f'sixminutes/{name}.py' for name in MODULES])}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
        "use_git_change_detection = false\n"
        "\n[tool.pytest.ini_options]\n"
        'testpaths = ["tests"]\n')


def mutmut(work: Path, *args: str, log: Path | None = None) -> str:
    if log is None:
        return subprocess.run([str(MUTMUT), *args], cwd=work, capture_output=True, text=True,
                              check=True).stdout
    with log.open("ab") as out:
        code = subprocess.call([str(MUTMUT), *args], cwd=work, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"mutmut {' '.join(args)} failed ({code}); see {log}")
    return ""


def run(work: Path, name: str) -> dict[str, int]:
    """Mutates one module (the tests reaching each mutated function), and returns the counts."""
    prefix = "sixminutes." + name.replace("/", ".") + "."
    started = time.monotonic()
    mutmut(work, "run", "--max-children", "1", prefix + "*", log=work / "mutmut.log")
    counts: dict[str, int] = {}
    survivors = []
    for line in mutmut(work, "results", "--all", "true").splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if mutant.startswith(prefix):
            counts[status] = counts.get(status, 0) + 1
            if status in ("survived", "no tests"):
                survivors.append(mutant)
    with (work / f"survivors-{name.replace('/', '-')}.txt").open("w") as out:
        for mutant in survivors:
            out.write(mutmut(work, "show", mutant) + "\n")
    counts["seconds"] = round(time.monotonic() - started)
    return counts


def score(c: dict[str, int]) -> tuple[int, int, float]:
    killed = c.get("killed", 0) + c.get("timeout", 0)
    tested = killed + c.get("survived", 0) + c.get("no tests", 0) + c.get("suspicious", 0)
    return killed, tested, 100.0 * killed / tested if tested else 100.0


def main(argv: list[str]) -> int:
    if "--list" in argv:
        print("modules:", " ".join(MODULES))
        print("tests:  ", " ".join(TESTS))
        return 0
    resume = "--resume" in argv
    names = [a for a in argv if not a.startswith("--")] or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        sys.exit(f"unknown module(s): {', '.join(unknown)} (see --list)")
    work = OUT / "work"
    if not (resume and work.exists()):
        prepare(work)
    total: dict[str, int] = {}
    for name in names:
        c = run(work, name)
        for key, n in c.items():
            total[key] = total.get(key, 0) + n
        killed, tested, pct = score(c)
        print(f"{name:16} {killed:5} / {tested:<5} killed  {pct:5.1f}%   survived {c.get('survived', 0)}, "
              f"no tests {c.get('no tests', 0)}, timeout {c.get('timeout', 0)}  ({c['seconds']} s)",
              flush=True)
    killed, tested, pct = score(total)
    print(f"{'mutation score':16} {killed:5} / {tested:<5} killed  {pct:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
