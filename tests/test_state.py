"""The SQLite state file: what a snapshot saves comes back, dedup hashes included."""
from __future__ import annotations

import sqlite3
from array import array

import numpy as np

from sixminutes.dedup import Packed, id_hash, id_hash_v2
from sixminutes.state import Delta, State

W = 1_700_000_000 - 1_700_000_000 % 360


def test_saved_cells_hashes_and_positions_come_back(tmp_path):
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    state.save(Delta(cells=[(W, "calls", 3.0, 3, 3.0, 1.0, 1.0)], seen=[(W, 9), (W, 4), (W + 360, 1)],
                     positions={"couchdb:x": "42"}))
    state.close()
    saved = State(path).load()
    assert list(saved.cells) == [(W, "calls", 3.0, 3, 3.0, 1.0, 1.0)]
    assert {t: list(h) for t, h in saved.seen.items()} == {W: [4, 9], W + 360: [1]}
    assert saved.positions == {"couchdb:x": "42"}


def test_ids_saved_by_0_1_as_text_are_read_as_hashes(tmp_path):
    path = str(tmp_path / "s.sqlite")
    State(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO seen VALUES (?, ?)", (W, "doc-1"))
    saved = State(path).load()
    assert list(saved.seen[W]) == [id_hash("doc-1")]


def test_deleting_seen_rows_deletes_both_kinds(tmp_path):
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    state.save(Delta(seen=[(W, 1), (W + 360, 2)]))
    state._db.execute("INSERT INTO seen VALUES (?, ?)", (W, "old"))
    state.save(Delta(deletions=[("seen", W + 360)]))
    assert {t: list(h) for t, h in state.load().seen.items()} == {W + 360: [2]}


def test_a_packed_window_is_one_blob_that_replaces_its_rows_and_late_rows_merge(tmp_path):
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    state.save(Delta(seen=[(W, 5), (W, 2), (W + 360, 8)]))
    packed = Packed.of(np.array([2, 3, 5], np.uint64))
    state.save(Delta(packed={W: packed.to_bytes()}, seen=[(W, 11)]))  # 11: late, after packing
    assert state._db.execute("SELECT count(*) FROM seen_hashes WHERE timestamp = ?", (W,)).fetchone() == (1,)
    assert {t: list(h) for t, h in state.load().seen.items()} == {W: [2, 3, 5, 11], W + 360: [8]}
    state.save(Delta(deletions=[("seen", W + 360)]))
    assert {t: list(h) for t, h in state.load().seen.items()} == {W + 360: [8]}


def test_a_big_packed_window_comes_back_quotient_compressed_read_in_place(tmp_path):
    hashes = np.unique(np.array([id_hash(f"doc-{i}") for i in range(100_000)], np.uint64))
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    state.save(Delta(packed={W: Packed.of(hashes).to_bytes()}))
    loaded = state.load().seen[W]
    assert loaded.values is None and not loaded.low.flags.owndata  # (a view of the blob)
    assert np.array_equal(loaded.hashes(), hashes) and id_hash("doc-7") in loaded
    state.close()


# -- one owner per state file, and its schema version ----------------------------------------

import os
import signal
import subprocess
import sys

import pytest

from sixminutes.state import SCHEMA_VERSION, StateError, StateInUse


def _holder(path: str) -> subprocess.Popen:
    """Another process that opens the state file and keeps it until killed."""
    code = ("import sys; from sixminutes.state import State; s = State(sys.argv[1]); "
            "print('open', flush=True); sys.stdin.read()")
    process = subprocess.Popen([sys.executable, "-c", code, path], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"open\n"
    return process


def test_a_state_file_open_in_another_process_is_refused_until_that_process_dies(tmp_path):
    path = str(tmp_path / "s.sqlite")
    holder = _holder(path)
    try:
        with pytest.raises(StateInUse, match=f"{path} is in use by another sixminutes process "
                                             f"\\(pid {holder.pid}\\)"):
            State(path)
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to clean anything up
        holder.wait()
    State(path).close()  # the kernel dropped the lock with the process
    assert os.path.exists(path + ".lock")  # left, empty of meaning, and reused


def test_a_second_open_in_the_same_process_is_refused_and_close_releases_it(tmp_path):
    path = str(tmp_path / "s.sqlite")
    first = State(path)
    with pytest.raises(StateInUse):
        State(path)
    first.close()
    State(path).close()


def test_the_same_file_under_another_name_is_the_same_lock(tmp_path):
    path = tmp_path / "s.sqlite"
    first = State(str(path))
    os.symlink(path, tmp_path / "link.sqlite")
    with pytest.raises(StateInUse):
        State(str(tmp_path / "link.sqlite"))
    with pytest.raises(StateInUse):
        State(str(tmp_path / "." / "s.sqlite"))
    first.close()


def _version_of(path: str) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0]


def test_a_new_file_records_the_schema_version(tmp_path):
    path = str(tmp_path / "s.sqlite")
    State(path).close()
    assert _version_of(path) == str(SCHEMA_VERSION)


def test_a_version_1_file_is_migrated_its_text_ids_becoming_hashes(tmp_path):
    path = str(tmp_path / "s.sqlite")
    with sqlite3.connect(path) as db:  # the layout version 1 wrote, with 0.1's text ids
        db.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
            INSERT INTO meta VALUES ('schema', '1');
            CREATE TABLE cells (timestamp INTEGER, key TEXT, sum REAL, count INTEGER,
                squares REAL, min REAL, max REAL, PRIMARY KEY (timestamp, key)) WITHOUT ROWID;
            CREATE TABLE seen (timestamp INTEGER, id TEXT, PRIMARY KEY (timestamp, id)) WITHOUT ROWID;
            CREATE TABLE positions (source TEXT PRIMARY KEY, position TEXT);""")
        db.execute("INSERT INTO seen VALUES (?, 'doc-1'), (?, 'doc-2')", (W, W + 360))
        db.execute("INSERT INTO cells VALUES (?, 'calls', 2, 2, 2, 1, 1)", (W,))
        db.execute("INSERT INTO positions VALUES ('couchdb:x', '7')")
    state = State(path)
    saved = state.load()
    assert {t: list(h) for t, h in saved.seen.items()} == {W: [id_hash("doc-1")],
                                                          W + 360: [id_hash("doc-2")]}
    assert list(saved.cells) == [(W, "calls", 2.0, 2, 2.0, 1.0, 1.0)]
    assert saved.positions == {"couchdb:x": "7"}
    state.close()
    assert _version_of(path) == str(SCHEMA_VERSION)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM seen").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM seen_hashes").fetchone() == (2,)


def test_a_version_2_file_is_migrated_its_64_bit_hashes_and_array_blobs_becoming_56_bit(tmp_path):
    """The same ids stay known after the upgrade: the packed window's (sorted as signed
    64-bit, negatives first), its late rows' and an open window's."""
    path = str(tmp_path / "s.sqlite")
    State(path).close()
    packed_ids, late, open_ids = [f"p-{i}" for i in range(50)], ["late-1"], ["open-1", "open-2"]
    assert any(id_hash_v2(i) < 0 for i in packed_ids) and any(id_hash_v2(i) > 0 for i in packed_ids)
    with sqlite3.connect(path) as db:  # what version 2 wrote
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")
        blob = array("q", sorted(map(id_hash_v2, packed_ids))).tobytes()
        db.execute("INSERT INTO seen_packed VALUES (?, ?)", (W, blob))
        db.executemany("INSERT INTO seen_hashes VALUES (?, ?)",
                       [(W, id_hash_v2(i)) for i in late] + [(W + 360, id_hash_v2(i)) for i in open_ids])
    state = State(path)
    seen = state.load().seen
    assert _version_of(path) == str(SCHEMA_VERSION)
    assert list(seen[W]) == sorted(map(id_hash, packed_ids + late))
    assert list(seen[W + 360]) == sorted(map(id_hash, open_ids))
    blob = state._db.execute("SELECT hashes FROM seen_packed").fetchone()[0]
    assert list(Packed.from_bytes(blob)) == sorted(map(id_hash, packed_ids))
    state.close()


@pytest.mark.parametrize("version", [str(SCHEMA_VERSION + 1), "99"])
def test_a_file_from_a_newer_version_is_refused_and_left_as_it_was(tmp_path, version):
    path = str(tmp_path / "s.sqlite")
    State(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (version,))
    with pytest.raises(StateError, match=f"written by a newer sixminutes \\(schema {version}; "
                                         f"this version reads up to {SCHEMA_VERSION}\\)"):
        State(path)
    assert _version_of(path) == version
    with pytest.raises(StateError, match="newer"):  # refused again: the lock was released
        State(path)


def test_a_file_that_is_not_sqlite_is_refused_with_its_name(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match=f"cannot use state file {path}"):
        State(str(path))


def test_an_in_memory_state_has_no_owner_and_no_lock_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = State(":memory:"), State(":memory:")  # each its own database
    first.close()
    second.close()
    assert list(tmp_path.iterdir()) == []


def test_a_snapshot_that_fails_half_way_leaves_nothing_behind_and_the_next_one_is_written(tmp_path):
    """save() is one transaction: the cells written before the failing row are rolled back,
    the file keeps the previous snapshot, and the next snapshot starts a transaction of its own."""
    import pytest

    path = str(tmp_path / "s.sqlite")
    state = State(path)
    state.save(Delta(cells=[(W, "calls", 1.0, 1, 1.0, 1.0, 1.0)], positions={"couchdb:x": "1"}))
    with pytest.raises(sqlite3.Error):  # a position SQLite cannot bind, after the cells
        state.save(Delta(cells=[(W + 360, "calls", 5.0, 5, 5.0, 1.0, 1.0)],
                         positions={"couchdb:x": object()}))
    saved = state.load()
    assert list(saved.cells) == [(W, "calls", 1.0, 1, 1.0, 1.0, 1.0)]
    assert saved.positions == {"couchdb:x": "1"}
    state.save(Delta(cells=[(W, "calls", 2.0, 2, 2.0, 1.0, 1.0)], positions={"couchdb:x": "2"}))
    state.close()
    saved = State(path).load()
    assert list(saved.cells) == [(W, "calls", 2.0, 2, 2.0, 1.0, 1.0)]
    assert saved.positions == {"couchdb:x": "2"}


def test_a_migration_that_fails_leaves_the_file_as_it_was_and_unlocked(tmp_path):
    """The upgrade is one transaction: when a version-1 file cannot be migrated (here its
    seen table lacks the id column), nothing of the new layout is left in it, and the
    connection holds no write lock on it while the error is handled."""
    path = str(tmp_path / "s.sqlite")
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
            INSERT INTO meta VALUES ('schema', '1');
            CREATE TABLE seen (timestamp INTEGER, other TEXT);""")
    with pytest.raises(StateError, match="cannot use state file") as refused:
        State(path)
    assert refused.value is not None  # (the traceback, and the connection it holds, still alive)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # "database is locked" if the failed upgrade kept its lock
    other.execute("ROLLBACK")
    assert _version_of(path) == "1"
    assert other.execute("SELECT name FROM sqlite_master WHERE name = 'seen_hashes'").fetchone() is None
    other.close()


def test_a_bad_body_that_cannot_be_written_leaves_no_transaction_open(tmp_path):
    state = State(str(tmp_path / "s.sqlite"))
    with pytest.raises(sqlite3.Error):  # a content type SQLite cannot bind
        state.keep_bad_body("http", {"not": "a string"}, "bad_json", b"{")
    state.keep_bad_body("http", "application/json", "bad_json", b"{")
    state.save(Delta(positions={"couchdb:x": "1"}))
    assert [b["body"] for b in state.bad_bodies()] in ([b"{"], ["{"])
    state.close()


def test_deletions_before_a_window_or_all_and_the_journal_rows_a_snapshot_covers(tmp_path):
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    state.save(Delta(cells=[(W, "calls", 1.0, 1, 1.0, 1.0, 1.0), (W + 360, "calls", 1.0, 1, 1.0, 1.0, 1.0)],
                     alerts=[("a1", W, b"{}"), ("a2", W + 360, b"{}")],
                     seen=[(W, 1), (W + 360, 2)], packed={W: Packed.of(np.array([5], np.uint64)).to_bytes()}))
    state._db.executemany("INSERT INTO journal (received, source, body) VALUES (0, 'http', ?)",
                          [(b"1",), (b"2",), (b"3",)])  # (rows an older version kept here)
    state.save(Delta(deletions=[("cells", W + 360), ("seen", W + 360)], journal_upto=2))
    saved = state.load()
    assert [t for t, *_ in saved.cells] == [W + 360] and set(saved.seen) == {W + 360}
    assert len(saved.alerts) == 2  # (only the tables named)
    assert [row[0] for row in state.journal_after(0)] == [3]
    state.save(Delta(deletions=[("alerts", None), ("seen", None)]))
    saved = state.load()
    assert saved.alerts == [] and saved.seen == {} and len(list(saved.cells)) == 1
    state.close()


def test_bad_bodies_come_newest_first_with_every_field(tmp_path):
    state = State(str(tmp_path / "s.sqlite"))
    state.keep_bad_body("http", "application/json", "bad_json: x", b"{")
    state.keep_bad_body("http", None, "bad_body: y", b"\xff\xfe")
    newest, oldest = state.bad_bodies()
    assert (newest["source"], newest["content_type"], newest["error"], newest["body"]) == (
        "http", None, "bad_body: y", "\ufffd\ufffd")
    assert (oldest["content_type"], oldest["body"]) == ("application/json", "{")
    assert newest["id"] > oldest["id"] and newest["received"] >= oldest["received"] > 0
    assert state.bad_bodies(limit=1) == [newest]
    state.close()


V2_BEFORE_BASELINES = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    INSERT INTO meta VALUES ('schema', '2');
    CREATE TABLE cells (timestamp INTEGER, key TEXT, sum REAL, count INTEGER, squares REAL,
        min REAL, max REAL, PRIMARY KEY (timestamp, key)) WITHOUT ROWID;
    CREATE TABLE alerts (id TEXT PRIMARY KEY, timestamp INTEGER, record BLOB);
    CREATE TABLE seen (timestamp INTEGER, id TEXT, PRIMARY KEY (timestamp, id)) WITHOUT ROWID;
    CREATE TABLE seen_hashes (timestamp INTEGER, hash INTEGER, PRIMARY KEY (timestamp, hash))
        WITHOUT ROWID;
    CREATE TABLE seen_packed (timestamp INTEGER PRIMARY KEY, hashes BLOB);
    CREATE TABLE positions (source TEXT PRIMARY KEY, position TEXT);
    CREATE TABLE outcomes (source TEXT, outcome TEXT, n INTEGER, PRIMARY KEY (source, outcome));
    CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, received REAL, source TEXT, body BLOB);
    CREATE TABLE bad_bodies (id INTEGER PRIMARY KEY AUTOINCREMENT, received REAL, source TEXT,
        content_type TEXT, error TEXT, body BLOB);
"""
"""The layout of version 2 as 8fb93c4 wrote it (before calls in progress and baselines)."""

V2_WITH_HISTORY = V2_BEFORE_BASELINES + """
    CREATE TABLE occupancy (timestamp INTEGER, key TEXT, seconds BLOB,
        PRIMARY KEY (timestamp, key)) WITHOUT ROWID;
    CREATE TABLE history (hour INTEGER, key TEXT, calls REAL, PRIMARY KEY (hour, key)) WITHOUT ROWID;
    CREATE TABLE history_hours (hour INTEGER PRIMARY KEY, folded INTEGER);
    CREATE TABLE plugin_state (name TEXT PRIMARY KEY, data BLOB);
"""
"""Version 2 as 68a74f3 wrote it: the hourly history without the windows of each hour."""


def test_a_version_2_file_from_before_the_baselines_opens_with_an_empty_history(tmp_path):
    path = str(tmp_path / "s.sqlite")
    with sqlite3.connect(path) as db:
        db.executescript(V2_BEFORE_BASELINES)
        db.execute("INSERT INTO cells VALUES (?, 'calls', 2, 2, 2, 1, 1)", (W,))
    state = State(path)
    saved = state.load()
    assert list(saved.cells) == [(W, "calls", 2.0, 2, 2.0, 1.0, 1.0)]
    assert (list(saved.history), saved.history_hours, saved.plugin_state) == ([], {}, {})
    state.save(Delta(history=[(W - W % 3600, "calls", 5.0, 2)], history_hours={W - W % 3600: (1, 2)},
                     plugin_state={"fraud": b"{}"}))
    saved = state.load()
    assert list(saved.history) == [(W - W % 3600, "calls", 5.0, 2)]
    assert saved.history_hours == {W - W % 3600: (1, 2)}
    state.close()
    assert _version_of(path) == str(SCHEMA_VERSION)


def test_a_version_2_history_is_kept_and_reads_as_the_hours_mean_until_it_ages_out(tmp_path):
    """A file of version 2 holds hours without their windows: migrated, they come back with
    windows None, and a History reads them as before (calls spread over the windows folded);
    the hours folded from then on keep their windows. A version-2 program could not write
    this file any more (3 values into 4 columns): it refuses it as newer."""
    from sixminutes.baselines import History

    hour = W - W % 3600
    path = str(tmp_path / "s.sqlite")
    with sqlite3.connect(path) as db:
        db.executescript(V2_WITH_HISTORY)
        db.execute("INSERT INTO history VALUES (?, 'calls{profile=\"p\"}', 40)", (hour,))
        db.execute("INSERT INTO history_hours VALUES (?, 4)", (hour,))
        db.execute("INSERT INTO plugin_state VALUES ('fraud', ?)", (b'{"version": 1}',))
    state = State(path)
    saved = state.load()
    assert list(saved.history) == [(hour, 'calls{profile="p"}', 40.0, None)]
    assert saved.history_hours == {hour: (4, None)} and saved.plugin_state == {"fraud": b'{"version": 1}'}
    history = History()
    history.restore(state.load().history, saved.history_hours)  # (a cursor: read again)
    assert [history.per_window(hour + s * 360, 'calls{profile="p"}') for s in (0, 9)] == [10, 10]
    history.fold(hour + 3600, ['calls{profile="p"}'], [7.0])  # (the next hour: with its window)
    history.fold(hour + 360, ['calls{profile="p"}'], [5.0])   # (into the old hour: still spread)
    assert history.per_window(hour, 'calls{profile="p"}') == 9
    rows, hours, _ = history.take()
    state.save(Delta(history=rows, history_hours=hours))
    saved = state.load()
    assert saved.history_hours == {hour: (5, None), hour + 3600: (1, 1)}
    assert sorted(saved.history) == [(hour, 'calls{profile="p"}', 45.0, 2),
                                     (hour + 3600, 'calls{profile="p"}', 7.0, 1)]
    state.close()
    assert _version_of(path) == str(SCHEMA_VERSION) == "3"
