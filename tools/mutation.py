"""Mutation testing with mutmut, one module at a time, and the score it prints (`make mutation`).

    python tools/mutation.py                 # every module of MODULES, in turn
    python tools/mutation.py windows stats   # just these
    python tools/mutation.py --list          # the modules and the tests they are checked with
    python tools/mutation.py --resume lifecycle   # reuse build/mutation/lifecycle (mutants, stats)

Each module is mutated in a work directory of its own, build/mutation/<module>: a copy of the
package and the tests with a `[tool.mutmut]` section naming that module and its tests (see
MODULES). mutmut runs those tests once to learn which reach which function, then checks each
mutant with the tests that reach the function it changes; one worker (two cores are shared).
The compiled modules (`*.so`) are copied with the package; mutmut only mutates `.py`
files, so the editable install and the C extension are no obstacle.

It prints, per module, killed / tested and the score (killed and timed out over tested, as
`mutmut badge` counts it; a mutant no test reaches counts as not killed), then the total; the
diffs of the mutants that survived are written to build/mutation/<module>/survivors.txt. The
hand-made mutations of the edges (tests that need a running service) are checked by
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

# module (under sixminutes/) -> the tests it is checked with: its own, and the few that test
# it through another door. In-process tests only (mutmut's trampolines live in the test
# process: a test that runs `sixminutes serve` in a subprocess cannot kill a mutant; the
# hand-made mutations of tools/hand_mutations.py cover those edges). Narrow on purpose: a
# function such as window_of is reached by 200 tests, and a mutant that survives runs every
# test that reaches it, so the score is what these tests kill, a lower bound.
MODULES: dict[str, list[str]] = {
    "windows": ["tests/test_windows.py"],
    "evidence": ["tests/test_evidence.py", "tests/test_thresholds.py"],
    "dedup": ["tests/test_dedup.py"],
    "board": ["tests/test_board.py"],
    "incidents": ["tests/test_incidents.py"],
    "lifecycle": ["tests/test_lifecycle.py"],
    "stats": ["tests/test_stats.py"],
    "thresholds": ["tests/test_thresholds.py", "tests/test_lifecycle.py"],  # (verdict: the judge)
    "alerts": ["tests/test_alerts.py", "tests/test_incidents.py"],
    "store": ["tests/test_store.py", "tests/test_series.py", "tests/test_frozen.py"],  # (the batch path fills the cells)
    "frozen": ["tests/test_frozen.py", "tests/test_store.py"],
    "series": ["tests/test_series.py", "tests/test_fold.py"],  # (the fold without a compiler)
    "batch": ["tests/test_series.py"],
    "rawjson": ["tests/test_rawjson.py", "tests/test_call.py"],
    "state": ["tests/test_state.py", "tests/test_snapshots.py"],
    "snapshots": ["tests/test_snapshots.py", "tests/web/test_app.py"],
    "web/static": ["tests/browser/test_static_files.py"],
    "plugins": ["tests/test_plugins.py", "tests/test_plugin_health.py"],
    "engine": ["tests/test_engine.py"],
    "deferred": ["tests/test_deferred.py"],
    "call": ["tests/test_call.py"],
    "parallel": ["tests/test_parallel.py"],
    "occupancy": ["tests/test_occupancy.py"],
    "sources/shards": ["tests/sources/test_shards.py", "tests/test_parallel.py"],
    "sources/segments": ["tests/sources/test_segments.py"],  # (the readers in threads: mutants seen)
    "group/view": ["tests/group/test_view.py"],
}


def prepare(work: Path, name: str) -> None:
    """A fresh work directory for one module: package, tests, ../shared, and its config."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    junk = shutil.ignore_patterns("__pycache__", "node_modules", "test-artifacts", ".hypothesis")
    shutil.copytree(ROOT / "sixminutes", work / "sixminutes", ignore=junk)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=junk)
    shared = ROOT.parent / "shared"  # the tests read ../shared/fixtures
    if shared.exists():
        os.symlink(shared.resolve(), work / "shared")
    (work / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        'source_paths = ["sixminutes"]\n'
        f'only_mutate = ["sixminutes/{name}.py"]\n'
        f"pytest_add_cli_args_test_selection = {json.dumps(MODULES[name])}\n"
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


def run(name: str, resume: bool) -> dict[str, int]:
    """Mutates one module, and returns mutmut's counts of its mutants by outcome."""
    work = OUT / name.replace("/", "-")
    if not (resume and work.exists()):
        prepare(work, name)
    prefix = "sixminutes." + name.replace("/", ".") + "."
    started = time.monotonic()
    mutmut(work, "run", "--max-children", "1", log=work / "mutmut.log")
    counts: dict[str, int] = {}
    survivors = []
    for line in mutmut(work, "results", "--all", "true").splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if mutant.startswith(prefix):
            counts[status] = counts.get(status, 0) + 1
            if status in ("survived", "no tests"):
                survivors.append(mutant)
    with (work / "survivors.txt").open("w") as out:
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
        for name, tests in MODULES.items():
            print(f"{name:12} {' '.join(tests)}")
        return 0
    resume = "--resume" in argv
    names = [a for a in argv if not a.startswith("--")] or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        sys.exit(f"unknown module(s): {', '.join(unknown)} (see --list)")
    total: dict[str, int] = {}
    for name in names:
        c = run(name, resume)
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
