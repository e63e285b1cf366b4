"""Durable state in one SQLite file: windows, alerts, dedup memory, source positions, the
hourly history of the baselines, how far the traffic rules judged, and what plugins remember.

A snapshot writes only what changed since the previous one, and writes it in one
transaction together with every source's position, so that a restart resumes from a
consistent point: the CouchDB sequences and the ingest journal position say exactly
which CDRs the saved windows already hold. CDRs POSTed over HTTP are appended to the
journal (journal.py, beside this file) before they are counted, and the journal is
replayed past the saved position at start, so a ``kill -9`` at any moment loses nothing
and counts nothing twice.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .dedup import Packed, from_v2, id_hash, id_hash_v2

__all__ = ["State", "Delta", "Saved", "StateError", "StateInUse", "StateLock", "SCHEMA_VERSION"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS cells (
    timestamp INTEGER, key TEXT, sum REAL, count INTEGER, squares REAL, min REAL, max REAL,
    PRIMARY KEY (timestamp, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS occupancy (timestamp INTEGER, key TEXT, seconds BLOB,
    PRIMARY KEY (timestamp, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, timestamp INTEGER, record BLOB);
CREATE TABLE IF NOT EXISTS seen (timestamp INTEGER, id TEXT, PRIMARY KEY (timestamp, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_hashes (timestamp INTEGER, hash INTEGER, PRIMARY KEY (timestamp, hash))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_packed (timestamp INTEGER PRIMARY KEY, hashes BLOB);
CREATE TABLE IF NOT EXISTS positions (source TEXT PRIMARY KEY, position TEXT);
CREATE TABLE IF NOT EXISTS outcomes (source TEXT, outcome TEXT, n INTEGER, PRIMARY KEY (source, outcome));
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, received REAL, source TEXT, body BLOB);
CREATE TABLE IF NOT EXISTS history (hour INTEGER, key TEXT, calls REAL, windows INTEGER,
    PRIMARY KEY (hour, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_hours (hour INTEGER PRIMARY KEY, folded INTEGER, windows INTEGER);
CREATE TABLE IF NOT EXISTS plugin_state (name TEXT PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS bad_bodies (
    id INTEGER PRIMARY KEY AUTOINCREMENT, received REAL, source TEXT, content_type TEXT, error TEXT, body BLOB);
"""
SCHEMA_VERSION = 3
"""The layout this version writes. 1: ids of dedup may still be text rows in ``seen`` (0.1).
2: the dedup hashes are 64-bit, a packed window a blob of ``array('q')``; the tables
``history``, ``history_hours`` and ``plugin_state`` may be missing (a file from before the
baselines: they are created empty), or hold the history without the windows of each hour
(``windows``, added by 3: such hours read as the hour's mean, see
:class:`sixminutes.baselines.History`). 3: 56-bit dedup hashes, a packed window a
:class:`~sixminutes.dedup.Packed` blob, the history's windows. A version-2 program refuses a
version-3 file rather than fail at every snapshot writing 3 values into 4 columns."""


class StateError(RuntimeError):
    """The state file cannot be used (unreadable, not SQLite, from a newer version)."""


class StateInUse(StateError):
    """Another process holds the state file: two writers would each lose the other's counts."""


class StateLock:
    """An exclusive ``flock`` on ``<path>.lock``, held until :meth:`release` or process end.

    On a separate file, not the database: closing any descriptor of the database would drop
    SQLite's own POSIX locks in this process. The holder's pid is written in the file, only
    for the message a second process prints.
    """

    def __init__(self, path: str) -> None:
        self._fd: int | None = None
        if path == ":memory:" or path.startswith("file::memory:"):
            return  # a database of this process alone: nothing to share, no file to lock
        self.path = f"{os.path.realpath(path)}.lock"  # one lock whatever the name (links)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise StateError(f"cannot use state file {path} (--state): {self.path}: "
                             f"{error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise StateInUse(
                f"state file {path} is in use by another sixminutes process{who}: one process "
                f"per state file. Stop that one, or give this one --state with another file."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # (the lock file stays: removing it would race another opener)
            self._fd = None


def _from_1(db: sqlite3.Connection) -> None:
    """Version 1 -> 2: dedup ids kept as text (0.1) become the 64-bit hashes read since."""
    rows = db.execute("SELECT timestamp, id FROM seen").fetchall()
    db.executemany("INSERT OR IGNORE INTO seen_hashes VALUES (?, ?)",
                   [(t, id_hash_v2(doc_id)) for t, doc_id in rows])
    db.execute("DELETE FROM seen")


def _from_2(db: sqlite3.Connection) -> None:
    """Version 2 -> 3: the hourly history gains the windows of each hour (``windows``; NULL
    in the rows of before: unknown; the tables may have been created just now, already with
    the column: a version-2 file from before the baselines). The 64-bit dedup hashes become
    the 56-bit ones of this version (their top bits: the same ids stay known), a packed
    window's ``array('q')`` blob a Packed one."""
    for table in ("history", "history_hours"):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if "windows" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN windows INTEGER")
    rows = db.execute("SELECT timestamp, hash FROM seen_hashes").fetchall()
    db.execute("DELETE FROM seen_hashes")
    db.executemany("INSERT OR IGNORE INTO seen_hashes VALUES (?, ?)",
                   [(t, (digest & 0xFFFFFFFFFFFFFFFF) >> 8) for t, digest in rows])
    for t, blob in db.execute("SELECT timestamp, hashes FROM seen_packed").fetchall():
        packed = Packed.of(from_v2(np.frombuffer(blob, "<i8")))
        db.execute("UPDATE seen_packed SET hashes = ? WHERE timestamp = ?", (packed.to_bytes(), t))


_MIGRATIONS = {1: _from_1, 2: _from_2}
"""Version N -> N + 1, applied in order in one transaction."""


@dataclass
class Delta:
    """What changed since the last snapshot; written in one transaction."""

    cells: list[tuple[int, str, float, int, float, float, float]] = field(default_factory=list)
    occupancy: list[tuple[int, str, bytes]] = field(default_factory=list)
    """(window, key, calls in progress per second as int32 bytes) of the cells that have them."""
    alerts: list[tuple[str, int, bytes]] = field(default_factory=list)
    seen: list[tuple[int, int]] = field(default_factory=list)
    """(window, hash of an id counted in it): see sixminutes/dedup.py."""
    packed: dict[int, bytes] = field(default_factory=dict)
    """Window → all its hashes, a Packed blob (sixminutes/dedup.py): replaces that window's rows."""
    positions: dict[str, str] = field(default_factory=dict)
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    deletions: list[tuple[str, int | None]] = field(default_factory=list)
    """("cells" | "alerts" | "seen", before) — rows of windows older than ``before``; all when None."""
    journal_upto: int | None = None
    """Journal rows up to this id are in the saved windows now and can go."""
    history: list[tuple[int, str, float, int | None]] = field(default_factory=list)
    """(hour, key, calls, the hour's windows with calls as bits) of the hourly history's hours
    that changed (sixminutes/baselines.py)."""
    history_hours: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    """Hour → (how many windows were folded into it, which as bits), for the same hours: each
    replaces that hour's rows."""
    history_before: int | None = None
    """The hours before this are forgotten (eight days)."""
    plugin_state: dict[str, bytes] = field(default_factory=dict)
    """Plugin name → its export_state() as JSON (sixminutes/plugin_state.py), when it changed."""
    traffic: str | None = None
    """The traffic rules' judgement as JSON (``Traffic.export``: the next window to judge, the
    runs under way), when it changed: kept in ``meta`` under ``traffic``."""


@dataclass
class Saved:
    """Everything a restart restores."""

    cells: Iterable[tuple[int, str, float, int, float, float, float]]
    """Read while restored, not held as a list: millions of rows."""
    alerts: list[bytes]
    seen: dict[int, Packed]
    """Window → the hashes of its ids, sorted (sixminutes/dedup.py)."""
    positions: dict[str, str]
    outcomes: dict[tuple[str, str], int]
    occupancy: Iterable[tuple[int, str, bytes]] = ()
    """(window, key, int32 bytes) of the calls in progress per second (sixminutes/occupancy.py)."""
    history: Iterable[tuple[int, str, float, int | None]] = ()
    """(hour, key, calls, windows with calls) of the hourly history (read while restored)."""
    history_hours: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    plugin_state: dict[str, bytes] = field(default_factory=dict)
    traffic: str | None = None


def _version(value: str, path: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StateError(f"state file {path} has an unknown schema {value!r}") from None


class State:
    """One SQLite connection; use it from a single thread (the service gives it its own)."""

    def __init__(self, path: str, bad_body_limit: int = 1000) -> None:
        self.path = path
        self.bad_body_limit = bad_body_limit
        self._lock = StateLock(path)  # first: a second process must not touch the file at all
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._upgrade()
        except sqlite3.DatabaseError as error:
            self._lock.release()
            raise StateError(f"cannot use state file {path}: {error}") from None
        except StateError:
            self._db.close()
            self._lock.release()
            raise

    def _upgrade(self) -> None:
        """Create the tables, then migrate an older file to SCHEMA_VERSION; refuse a newer one."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() \
                if has_meta else None
            found = SCHEMA_VERSION if row is None else _version(row[0], self.path)
            if found > SCHEMA_VERSION:
                raise StateError(
                    f"state file {self.path} was written by a newer sixminutes (schema {found}; "
                    f"this version reads up to {SCHEMA_VERSION}): upgrade sixminutes, or give "
                    f"--state another file")
            for statement in _SCHEMA.split(";"):  # (executescript would commit)
                if statement.strip():
                    db.execute(statement)
            for version in range(found, SCHEMA_VERSION):
                _MIGRATIONS[version](db)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()
        self._lock.release()

    def load(self) -> Saved:
        """The saved state; its cells are read as they are restored, on the caller's thread."""
        db = self._db
        seen: dict[int, Packed] = {}
        for t, blob in db.execute("SELECT timestamp, hashes FROM seen_packed"):
            seen[t] = Packed.from_bytes(blob)
        rows: dict[int, list[int]] = {}
        for t, digest in db.execute("SELECT timestamp, hash FROM seen_hashes"):  # in key order
            hashes = rows.get(t)
            if hashes is None:
                hashes = rows[t] = []
            hashes.append(digest)
        for t, doc_id in db.execute("SELECT timestamp, id FROM seen"):  # from version 0.1
            rows.setdefault(t, []).append(id_hash(doc_id))
        for t, hashes in rows.items():  # the open windows' ids, and late ones of packed windows
            packed = seen.get(t)
            merged = np.array(hashes, np.uint64)
            seen[t] = Packed.of(np.union1d(packed.hashes(), merged) if packed else np.unique(merged))
        return Saved(
            cells=db.execute("SELECT timestamp, key, sum, count, squares, min, max FROM cells"),
            alerts=[row[0] for row in db.execute("SELECT record FROM alerts ORDER BY timestamp")],
            seen=seen,
            positions=dict(db.execute("SELECT source, position FROM positions")),
            outcomes={(s, o): n for s, o, n in db.execute("SELECT source, outcome, n FROM outcomes")},
            occupancy=db.execute("SELECT timestamp, key, seconds FROM occupancy"),
            history=db.execute("SELECT hour, key, calls, windows FROM history"),
            history_hours={hour: (folded, windows) for hour, folded, windows in db.execute(
                "SELECT hour, folded, windows FROM history_hours")},
            plugin_state=dict(db.execute("SELECT name, data FROM plugin_state")),
            traffic=next((v for (v,) in db.execute("SELECT value FROM meta WHERE key='traffic'")),
                         None),
        )

    def save(self, delta: Delta) -> None:
        """Write a snapshot's changes atomically."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, before in delta.deletions:
                where = "" if before is None else " WHERE timestamp < ?"
                for name in {"seen": ("seen", "seen_hashes", "seen_packed"),
                             "cells": ("cells", "occupancy")}.get(table, (table,)):
                    db.execute(f"DELETE FROM {name}{where}", () if before is None else (before,))
            db.executemany("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?)", delta.cells)
            db.executemany("INSERT OR REPLACE INTO occupancy VALUES (?, ?, ?)", delta.occupancy)
            db.executemany("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?)", delta.alerts)
            for t, blob in delta.packed.items():  # a packed window: one blob instead of its rows
                db.execute("INSERT OR REPLACE INTO seen_packed VALUES (?, ?)", (t, blob))
                db.execute("DELETE FROM seen_hashes WHERE timestamp = ?", (t,))
                db.execute("DELETE FROM seen WHERE timestamp = ?", (t,))
            db.executemany("INSERT OR IGNORE INTO seen_hashes VALUES (?, ?)", delta.seen)
            db.executemany("INSERT OR REPLACE INTO positions VALUES (?, ?)", delta.positions.items())
            db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?)",
                           [(s, o, n) for (s, o), n in delta.outcomes.items()])
            if delta.history_before is not None:
                for name in ("history", "history_hours"):
                    db.execute(f"DELETE FROM {name} WHERE hour < ?", (delta.history_before,))
            for hour, (folded, windows) in delta.history_hours.items():  # replaced whole
                db.execute("DELETE FROM history WHERE hour = ?", (hour,))
                db.execute("INSERT OR REPLACE INTO history_hours VALUES (?, ?, ?)",
                           (hour, folded, windows))
            db.executemany("INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?)", delta.history)
            db.executemany("INSERT OR REPLACE INTO plugin_state VALUES (?, ?)",
                           delta.plugin_state.items())
            if delta.traffic is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('traffic', ?)", (delta.traffic,))
            if delta.journal_upto is not None:
                db.execute("DELETE FROM journal WHERE id <= ?", (delta.journal_upto,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def journal_after(self, position: int) -> Iterator[tuple[int, str, bytes]]:
        """The rows of the journal table not yet in the saved windows, oldest first: versions
        before journal.py journaled POSTs here; a snapshot deletes them once they count."""
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
