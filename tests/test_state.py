"""The SQLite state file: what a snapshot saves comes back, dedup hashes included."""
from __future__ import annotations

import sqlite3

from sixminutes.dedup import id_hash
from sixminutes.state import Delta, State

W = 1_700_000_000 - 1_700_000_000 % 360


def test_saved_cells_hashes_and_positions_come_back(tmp_path):
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    state.save(Delta(cells=[(W, "calls", 3.0, 3, 3.0, 1.0, 1.0)], seen=[(W, 9), (W, -4), (W + 360, 1)],
                     positions={"couchdb:x": "42"}))
    state.close()
    saved = State(path).load()
    assert list(saved.cells) == [(W, "calls", 3.0, 3, 3.0, 1.0, 1.0)]
    assert {t: list(h) for t, h in saved.seen.items()} == {W: [-4, 9], W + 360: [1]}
    assert saved.seen[W].itemsize == 8
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
    from array import array
    path = str(tmp_path / "s.sqlite")
    state = State(path)
    state.save(Delta(seen=[(W, 5), (W, -2), (W + 360, 8)]))
    packed = array("q", [-2, 3, 5])
    state.save(Delta(packed={W: packed.tobytes()}, seen=[(W, 11)]))  # 11: late, after packing
    assert state._db.execute("SELECT count(*) FROM seen_hashes WHERE timestamp = ?", (W,)).fetchone() == (1,)
    assert {t: list(h) for t, h in state.load().seen.items()} == {W: [-2, 3, 5, 11], W + 360: [8]}
    state.save(Delta(deletions=[("seen", W + 360)]))
    assert dict(state.load().seen) == {W + 360: array("q", [8])}
