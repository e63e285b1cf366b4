"""Durable state in one SQLite file: windows, alerts, dedup memory, source positions, journal.

A snapshot writes only what changed since the previous one, and writes it in one
transaction together with every source's position, so that a restart resumes from a
consistent point: the CouchDB sequences and the ingest journal position say exactly
which CDRs the saved windows already hold. CDRs POSTed over HTTP are appended to the
journal (committed) before they are counted, and the journal is replayed past the
saved position at start, so a ``kill -9`` at any moment loses nothing and counts
nothing twice.
"""
from __future__ import annotations

import sqlite3
import time
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .dedup import id_hash

__all__ = ["State", "Delta", "Saved", "StateError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS cells (
    timestamp INTEGER, key TEXT, sum REAL, count INTEGER, squares REAL, min REAL, max REAL,
    PRIMARY KEY (timestamp, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, timestamp INTEGER, record BLOB);
CREATE TABLE IF NOT EXISTS seen (timestamp INTEGER, id TEXT, PRIMARY KEY (timestamp, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_hashes (timestamp INTEGER, hash INTEGER, PRIMARY KEY (timestamp, hash))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_packed (timestamp INTEGER PRIMARY KEY, hashes BLOB);
CREATE TABLE IF NOT EXISTS positions (source TEXT PRIMARY KEY, position TEXT);
CREATE TABLE IF NOT EXISTS outcomes (source TEXT, outcome TEXT, n INTEGER, PRIMARY KEY (source, outcome));
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, received REAL, source TEXT, body BLOB);
CREATE TABLE IF NOT EXISTS bad_bodies (
    id INTEGER PRIMARY KEY AUTOINCREMENT, received REAL, source TEXT, content_type TEXT, error TEXT, body BLOB);
"""
SCHEMA_VERSION = "1"


class StateError(RuntimeError):
    """The state file cannot be used (unreadable, not SQLite, from a newer version)."""


@dataclass
class Delta:
    """What changed since the last snapshot; written in one transaction."""

    cells: list[tuple[int, str, float, int, float, float, float]] = field(default_factory=list)
    alerts: list[tuple[str, int, bytes]] = field(default_factory=list)
    seen: list[tuple[int, int]] = field(default_factory=list)
    """(window, hash of an id counted in it): see sixminutes/dedup.py."""
    packed: dict[int, bytes] = field(default_factory=dict)
    """Window → all its hashes, a sorted array('q') as bytes: replaces that window's rows."""
    positions: dict[str, str] = field(default_factory=dict)
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    deletions: list[tuple[str, int | None]] = field(default_factory=list)
    """("cells" | "alerts" | "seen", before) — rows of windows older than ``before``; all when None."""
    journal_upto: int | None = None
    """Journal rows up to this id are in the saved windows now and can go."""


@dataclass
class Saved:
    """Everything a restart restores."""

    cells: Iterable[tuple[int, str, float, int, float, float, float]]
    """Read while restored, not held as a list: millions of rows."""
    alerts: list[bytes]
    seen: dict[int, array]
    """Window → the hashes of its ids, sorted, 8 bytes each."""
    positions: dict[str, str]
    outcomes: dict[tuple[str, str], int]


class State:
    """One SQLite connection; use it from a single thread (the service gives it its own)."""

    def __init__(self, path: str, bad_body_limit: int = 1000) -> None:
        self.path = path
        self.bad_body_limit = bad_body_limit
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            version = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as error:
            raise StateError(f"cannot use state file {path}: {error}") from None
        if version is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif version[0] != SCHEMA_VERSION:
            raise StateError(f"state file {path} has schema {version[0]}, this version reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def load(self) -> Saved:
        """The saved state; its cells are read as they are restored, on the caller's thread."""
        db = self._db
        seen: dict[int, array] = {}
        for t, blob in db.execute("SELECT timestamp, hashes FROM seen_packed"):
            seen[t] = array("q")
            seen[t].frombytes(blob)
        rows: dict[int, array] = {}
        for t, digest in db.execute("SELECT timestamp, hash FROM seen_hashes"):  # in key order
            hashes = rows.get(t)
            if hashes is None:
                hashes = rows[t] = array("q")
            hashes.append(digest)
        for t, doc_id in db.execute("SELECT timestamp, id FROM seen"):  # from version 0.1
            rows.setdefault(t, array("q")).append(id_hash(doc_id))
        for t, hashes in rows.items():  # the open windows' ids, and late ones of packed windows
            packed = seen.get(t)
            seen[t] = array("q", sorted(set(hashes).union(packed) if packed else set(hashes)))
        return Saved(
            cells=db.execute("SELECT timestamp, key, sum, count, squares, min, max FROM cells"),
            alerts=[row[0] for row in db.execute("SELECT record FROM alerts ORDER BY timestamp")],
            seen=seen,
            positions=dict(db.execute("SELECT source, position FROM positions")),
            outcomes={(s, o): n for s, o, n in db.execute("SELECT source, outcome, n FROM outcomes")},
        )

    def save(self, delta: Delta) -> None:
        """Write a snapshot's changes atomically."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, before in delta.deletions:
                where = "" if before is None else " WHERE timestamp < ?"
                for name in ("seen", "seen_hashes", "seen_packed") if table == "seen" else (table,):
                    db.execute(f"DELETE FROM {name}{where}", () if before is None else (before,))
            db.executemany("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?)", delta.cells)
            db.executemany("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?)", delta.alerts)
            for t, blob in delta.packed.items():  # a packed window: one blob instead of its rows
                db.execute("INSERT OR REPLACE INTO seen_packed VALUES (?, ?)", (t, blob))
                db.execute("DELETE FROM seen_hashes WHERE timestamp = ?", (t,))
                db.execute("DELETE FROM seen WHERE timestamp = ?", (t,))
            db.executemany("INSERT OR IGNORE INTO seen_hashes VALUES (?, ?)", delta.seen)
            db.executemany("INSERT OR REPLACE INTO positions VALUES (?, ?)", delta.positions.items())
            db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?)",
                           [(s, o, n) for (s, o), n in delta.outcomes.items()])
            if delta.journal_upto is not None:
                db.execute("DELETE FROM journal WHERE id <= ?", (delta.journal_upto,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def journal_append(self, rows: list[tuple[str, bytes]]) -> list[int]:
        """Append (source, body) rows durably, in one transaction; return their ids in order."""
        db = self._db
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            ids = [db.execute("INSERT INTO journal (received, source, body) VALUES (?, ?, ?)",
                              (now, source, body)).lastrowid for source, body in rows]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return [int(i) for i in ids if i is not None]

    def journal_after(self, position: int) -> Iterator[tuple[int, str, bytes]]:
        """The journal rows not yet in the saved windows, oldest first."""
        yield from self._db.execute(
            "SELECT id, source, body FROM journal WHERE id > ? ORDER BY id", (position,))

    def keep_bad_body(self, source: str, content_type: str | None, error: str, body: bytes,
                      max_bytes: int = 64 << 10) -> None:
        """Keep an unreadable body for inspection; only the newest ``bad_body_limit`` stay."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO bad_bodies (received, source, content_type, error, body) "
                       "VALUES (?, ?, ?, ?, ?)", (time.time(), source, content_type, error, body[:max_bytes]))
            db.execute("DELETE FROM bad_bodies WHERE id <= (SELECT max(id) FROM bad_bodies) - ?",
                       (self.bad_body_limit,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def bad_bodies(self, limit: int = 100) -> list[dict]:
        rows = self._db.execute(
            "SELECT id, received, source, content_type, error, body FROM bad_bodies "
            "ORDER BY id DESC LIMIT ?", (limit,))
        return [{"id": i, "received": r, "source": s, "content_type": c, "error": e,
                 "body": b.decode("utf-8", "replace")} for i, r, s, c, e, b in rows]
