"""`kill -9` of the service at 20 random moments mid-stream, each followed by a restart on the
same state file (tests/integration/crash_run.py holds the procedure; bench/crash.py runs it
at a larger scale).

Nothing the service acknowledged may be lost and nothing may be counted twice: every CouchDB
document (from a pouchdb-server on disk) is counted exactly once, because the saved position
and the saved windows go together; every CDR whose POST got a 200 is counted exactly once,
because the journal is committed before the 200. A POST cut by a kill is sent again, as
mod_json_cdr retries; if the service had journaled it, the answer is `duplicate` and the
totals stay exact. Every series of every window is compared with the engine counting the
same CDRs offline. The kill moments come from a seeded RNG: a failure names the seed, and
CRASH_SEED=<seed> replays the same schedule.
"""
from __future__ import annotations

import os
import random

from crash_run import crash_couchdb, crash_http

KILLS = 20


def _seed() -> int:
    return int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1, 10**6))


def test_20_kill_9_while_couchdb_docs_arrive_count_every_doc_exactly_once(tmp_path):
    seed = _seed()
    result = crash_couchdb(tmp_path, n=1200, kills=KILLS, seed=seed, seconds=20)
    print(result.summary())
    assert result.kills == KILLS and result.restarts == KILLS, result.summary()
    assert result.exact, f"{result.summary()}\nkill moments: {result.moments}"


def test_20_kill_9_while_cdrs_are_posted_count_every_acknowledged_cdr_exactly_once(tmp_path):
    seed = _seed()
    # 8 posters: since the journal is a file, a POST is durable in well under a millisecond,
    # and with 3 in flight too few kills landed on one (6 of 20 in one CI run)
    result = crash_http(tmp_path, n=1500, kills=KILLS, seed=seed, posters=8)
    print(result.summary())
    assert result.kills == KILLS and result.restarts == KILLS, result.summary()
    assert result.exact, f"{result.summary()}\nkill moments: {result.moments}"
    # Kills that cut no POST would not have tested the retry path at all.
    assert result.retried >= KILLS // 2, (
        f"only {result.retried} POSTs were cut by {KILLS} kills (seed {seed})")
