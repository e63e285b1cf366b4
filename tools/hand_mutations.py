"""The hand-made mutations of issue 20, each applied to a copy of the package and checked to
make its killing test fail (`make mutation` runs it after mutmut).

    python tools/hand_mutations.py            # every mutation below
    python tools/hand_mutations.py purge      # those whose name contains "purge"

Most of these live in the edges (the web app, the CouchDB feed, the state file, the service's
loops) that mutmut cannot reach, because their tests run `sixminutes serve` in a subprocess.
Here the package and the tests are copied to a temporary directory, one mutation is applied,
and the named tests run there with PYTHONPATH pointing at the copy (the service processes
the tests start inherit it): first without the mutation (they must pass, none skipped), then
with it. A mutation is killed when its tests then fail; it prints one line per mutation and
exits 1 if any survived.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


class Mutation(NamedTuple):
    name: str
    path: str  # under sixminutes/
    old: str  # found exactly once
    new: str
    tests: tuple[str, ...]  # the tests that must fail


MUTATIONS = [
    Mutation("couchdb backoff off by one", "sources/couchdb.py",
             "2 ** min(failures, 32)", "2 ** min(failures + 1, 32)",
             ("tests/sources/test_couchdb.py::test_backoff_doubles_from_the_initial_delay_up_to_the_cap",)),
    Mutation("notify backoff off by one", "notify.py",
             "2.0 ** min(failures, 16)", "2.0 ** min(failures + 1, 16)",
             ("tests/test_notify.py::test_the_first_retry_comes_one_second_after_the_first_failure",)),
    Mutation("?limit off by one", "web/app.py",
             "rows[:limit] if limit else rows", "rows[:limit + 1] if limit else rows",
             ("tests/web/test_app.py::test_limit_cuts_the_alerts_and_incidents_at_exactly_n",)),
    Mutation("anti-framing: no X-Frame-Options", "web/app.py",
             '"X-Frame-Options": "DENY"', '"X-Frame-Options": "SAMEORIGIN"',
             ("tests/web/test_app.py::test_the_page_may_not_be_framed",)),
    Mutation("anti-framing: no frame-ancestors", "web/app.py",
             "\"frame-ancestors 'none'\"", "\"frame-ancestors *\"",
             ("tests/web/test_app.py::test_the_page_may_not_be_framed",)),
    Mutation("gzip: static files never compressed", "web/static.py",
             'if "gzip" in request.headers.get("accept-encoding", ""):',
             'if "gzip" in request.headers.get("accept-encoding", "") and False:',
             ("tests/browser/test_static_files.py::test_gzip_when_accepted",)),
    Mutation("gzip: responses of the API never compressed", "web/app.py",
             "Middleware(GZipMiddleware, minimum_size=1024)",
             "Middleware(GZipMiddleware, minimum_size=1 << 30)",
             ("tests/web/test_app.py::test_large_json_is_gzipped_for_a_client_that_takes_it_and_small_json_is_not",)),
    Mutation("resync after DELETE /6minutes/data", "service.py",
             'self.hub.publish("resync", {"lost": 0})  # open pages refetch',
             "pass  # open pages refetch",
             ("tests/web/test_app.py::test_a_delete_tells_open_pages_to_refetch_everything",)),
    Mutation("resync after DELETE /6minutes/alerts", "service.py",
             '        self.hub.publish("resync", {"lost": 0})\n        return dropped',
             "        return dropped",
             ("tests/web/test_app.py::test_a_delete_tells_open_pages_to_refetch_everything",)),
    Mutation("couchdb lag off by one", "sources/couchdb.py",
             "max(0, theirs - ours)", "max(0, theirs - ours - 1)",
             ("tests/sources/test_couchdb.py::test_lag_is_reported",
              "tests/sources/test_couchdb.py::test_couchdb3_string_seqs_are_passed_back_verbatim_and_give_a_lag")),
    Mutation("restoring mark_fired", "engine.py",
             "self.thresholds.mark_fired(alert.fields[\"rule\"], alert.timestamp, alert.key)",
             "pass",
             ("tests/test_engine.py::test_a_restored_alert_does_not_fire_again_when_its_window_is_counted_into",)),
    Mutation("lifecycle loop: one clean window too many", "lifecycle.py",
             "if clean >= self.clear_windows:", "if clean > self.clear_windows:",
             ("tests/test_lifecycle.py",)),
    Mutation("lifecycle loop: a window beyond the bound does not restart the count", "lifecycle.py",
             "            clean = 0\n            condition.last = following",
             "            condition.last = following",
             ("tests/test_lifecycle.py",)),
    Mutation("lifecycle loop: the live service resolves on data time, not its clock", "engine.py",
             "self.alerts.resolve(self.clock() if self.live else self._newest_epoch, self._judge)",
             "self.alerts.resolve(self._newest_epoch, self._judge)",
             ("tests/test_lifecycle.py",)),
    Mutation("lifecycle loop: resolution not held while a feed catches up", "engine.py",
             "        if not self.hold_resolution:\n            self.alerts.resolve(",
             "        if True:\n            self.alerts.resolve(",
             ("tests/test_lifecycle.py::test_nothing_resolves_while_the_sources_are_behind",)),
    Mutation("state ROLLBACK of a failed snapshot", "state.py",
             '            db.execute("COMMIT")\n        except BaseException:\n            db.execute("ROLLBACK")\n            raise\n\n    def journal_after',
             '            db.execute("COMMIT")\n        except BaseException:\n            raise\n\n    def journal_after',
             ("tests/test_state.py::test_a_snapshot_that_fails_half_way_leaves_nothing_behind_and_the_next_one_is_written",)),
    # A parallel replay's join is made independent of the order the shares come in (parallel.py
    # joins them in process order, but reversing that is an equivalent mutant: see
    # docs/architecture.md); the order lives in Engine.absorb and Engine.settle.
    Mutation("state ROLLBACK of a failed migration", "state.py",
             "            if db.in_transaction:\n                db.execute(\"ROLLBACK\")\n", "",
             ("tests/test_state.py::test_a_migration_that_fails_leaves_the_file_as_it_was_and_unlocked",)),
    Mutation("state ROLLBACK of a failed bad-body write", "state.py",
             '            db.execute("COMMIT")\n        except BaseException:\n            db.execute("ROLLBACK")\n            raise\n\n    def bad_bodies',
             '            db.execute("COMMIT")\n        except BaseException:\n            raise\n\n    def bad_bodies',
             ("tests/test_state.py::test_a_bad_body_that_cannot_be_written_leaves_no_transaction_open",)),
    Mutation("join order: rejections kept in arrival order, not the inputs'", "engine.py",
             "kept = sorted(self.rejections + share.rejections)",
             "kept = self.rejections + share.rejections",
             ("tests/test_parallel.py",)),
    Mutation("join order: an outcome placed where it was last seen", "engine.py",
             "self._first_seen[outcome] = min(at, self._first_seen.get(outcome, at))",
             "self._first_seen[outcome] = max(at, self._first_seen.get(outcome, at))",
             ("tests/test_parallel.py",)),
    Mutation("join order: the newest rejection detail taken from the last share", "engine.py",
             "if at > self._rejected_at.get(reason, -2):", "if True:",
             ("tests/test_parallel.py::test_the_last_rejection_of_each_reason_is_the_last_the_inputs_gave",)),
    Mutation("join order: settle in the order the records were joined", "engine.py",
             "        timed.sort(key=lambda pair: (pair[0], pair[1].timestamp, pair[1].seq))\n", "",
             ("tests/test_parallel.py", "tests/test_lifecycle.py")),
    Mutation("purge: dedup memory kept", "engine.py",
             "            self.seen.purge(oldest)\n", "",
             ("tests/test_engine.py",)),
    Mutation("purge: alerts kept", "engine.py",
             "            self.alerts.purge(oldest)\n", "",
             ("tests/test_engine.py",)),
    Mutation("purge: the cut-off window dropped too (store)", "store.py",
             "dropped = [t for t in self._windows if before is None or t < before]",
             "dropped = [t for t in self._windows if before is None or t <= before]",
             ("tests/test_store.py", "tests/test_engine.py")),
    Mutation("purge: the cut-off window's ids forgotten (dedup)", "dedup.py",
             "for window in [w for w in table if before is None or w < before]:",
             "for window in [w for w in table if before is None or w <= before]:",
             ("tests/test_dedup.py", "tests/test_engine.py")),
    Mutation("purge: the crossings the rules remember are kept", "thresholds.py",
             "        for t in [t for t in self._fired if before is None or t < before]:\n            del self._fired[t]\n",
             "",
             ("tests/test_engine.py::test_a_purged_windows_crossing_fires_again_when_that_window_is_counted_again",)),
    Mutation("DELETE /6minutes/data: the windows stay in the state file", "service.py",
             '        self.writer.forget(before, ("cells",))\n', "",
             ("tests/web/test_app.py::test_deleted_windows_and_alerts_leave_the_state_file_at_the_next_snapshot",)),
    Mutation("DELETE /6minutes/alerts: the alerts stay in the state file", "service.py",
             '        self.writer.forget(before, ("alerts",))\n', "",
             ("tests/web/test_app.py::test_deleted_windows_and_alerts_leave_the_state_file_at_the_next_snapshot",)),
    Mutation("SSE: events queued after a loss, before the resync", "web/events.py",
             "        if self.lost:\n            self._lose(1)\n        elif self._queue",
             "        if self._queue",
             ("tests/web/test_events.py",)),
    Mutation("purge: never run by the live service", "service.py",
             "if now - self._purged_at >= 60:", "if now - self._purged_at >= 60 and False:",
             ("tests/web/test_app.py::test_the_live_service_purges_past_retention_once_a_minute_on_its_clock",)),
    Mutation("DELETE /6minutes/data: the hourly history and plugins' memory kept", "engine.py",
             "        self.traffic.forget(before)\n        forget_data(self.plugins, before)\n", "",
             ("tests/web/test_app.py::test_deleting_all_data_erases_the_hourly_history_and_the_plugins_memory_of_it",)),
    Mutation("restart: the traffic rules' judgement not resumed", "service.py",
             "            self.engine.traffic.resume(orjson.loads(saved))", "            pass",
             ("tests/web/test_app.py::test_a_restart_after_the_snapshot_raises_no_traffic_alert_again",)),
    Mutation("restart: a restored traffic alert not marked fired", "engine.py",
             "self.traffic.mark_fired(alert.plugin, alert.key, alert.timestamp)", "pass",
             ("tests/web/test_app.py::test_a_restart_after_the_snapshot_raises_no_traffic_alert_again",)),
    Mutation("history: a window without calls read as the mean of those with calls", "history.py",
             "        if not packed & bit:\n            return 0.0\n", "",
             ("tests/test_baselines.py::test_a_carrier_silent_yesterday_in_part_of_an_hour_is_no_drop_there_today",)),
]


def copy_project(into: Path) -> Path:
    """The package and the tests in ``into``/sixminutes-copy, with ../shared beside it as the
    tests expect (they read ../shared/fixtures)."""
    project = into / "sixminutes-copy"
    junk = shutil.ignore_patterns("__pycache__", "test-artifacts", ".hypothesis")
    shutil.copytree(ROOT / "sixminutes", project / "sixminutes", ignore=junk)
    shutil.copytree(ROOT / "tests", project / "tests", ignore=junk, symlinks=True)
    (project / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    shared = ROOT.parent / "shared"
    if shared.exists():
        os.symlink(shared.resolve(), into / "shared")
    return project


def pytest(project: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                           *tests], cwd=project, env=env, capture_output=True, text=True)


def check(mutation: Mutation) -> tuple[bool, str]:
    """Applies one mutation to a fresh copy; True when its tests fail (and passed before)."""
    with tempfile.TemporaryDirectory(prefix="sixminutes-mutant-") as tmp:
        project = copy_project(Path(tmp))
        clean = pytest(project, mutation.tests)
        if clean.returncode != 0 or " skipped" in clean.stdout:
            sys.exit(f"{mutation.name}: the tests do not pass cleanly without the mutation:\n"
                     f"{clean.stdout[-3000:]}")
        target = project / "sixminutes" / mutation.path
        source = target.read_text()
        if source.count(mutation.old) != 1:
            sys.exit(f"{mutation.name}: {mutation.old!r} is not found exactly once in {mutation.path}")
        target.write_text(source.replace(mutation.old, mutation.new))
        result = pytest(project, mutation.tests)
        if result.returncode not in (0, 1):  # 2+: interrupted, usage or collection error
            sys.exit(f"{mutation.name}: pytest exited {result.returncode}\n{result.stdout[-3000:]}")
        failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
        return result.returncode == 1, failed[0] if failed else result.stdout.strip().splitlines()[-1]


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not argv or any(a in m.name for a in argv)]
    survived = 0
    for mutation in chosen:
        started = time.monotonic()
        killed, detail = check(mutation)
        survived += not killed
        print(f"{'killed  ' if killed else 'SURVIVED'} {mutation.name} ({mutation.path}; "
              f"{time.monotonic() - started:.0f} s): {detail}", flush=True)
    print(f"hand mutations: {len(chosen) - survived} / {len(chosen)} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
