"""The snapshot writer: what changed since the last snapshot, saved in one SQLite transaction.

The service tells it which cells and alerts changed and which windows were deleted; a
snapshot takes those sets, the dedup ids counted since, the hours of the baselines' history
folded into since, the plugins' state that changed, how far the traffic rules have judged,
and every source's position, and
writes them together, so that a restart resumes from a consistent point. A write that fails
puts back what it took, for the next snapshot.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

import orjson

from .alerts import Alert
from .plugin_state import export_state
from .state import Delta, State

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["SnapshotWriter", "alert_record"]

log = logging.getLogger("sixminutes")
T = TypeVar("T")
Run = Callable[[Callable[[], T]], Awaitable[T]]
"""Runs a function on the state's own thread (the service's ``_run``)."""


class SnapshotWriter:
    """Remembers what changed and writes it, one write at a time, in order."""

    def __init__(self, engine: Engine, run: Run, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.run = run
        self.clock = clock
        self.unsaved: dict[int, set[str]] = {}
        """Window → the series keys changed since the last snapshot."""
        self.alerts: dict[str, Alert] = {}
        """Alerts raised, counted again or resolved since the last snapshot."""
        self.deletions: list[tuple[str, int | None]] = []
        self.stats: dict[str, Any] = {"count": 0, "last_at": None, "last_seconds": None,
                                      "last_error": None}
        """What GET /6minutes/status and /metrics say of the snapshots."""
        self._saving: asyncio.Future[bool] | None = None
        self.plugin_saved: dict[str, bytes] = {}
        """Plugin name → its state as last saved (or restored): written again only when it
        changes."""
        self.traffic_saved: str | None = None
        """The traffic rules' judgement as last saved (or restored), likewise."""

    def cells_changed(self, changes: dict[int, set[str]]) -> None:
        for t, keys in changes.items():
            self.unsaved.setdefault(t, set()).update(keys)

    def alert_changed(self, alert: Alert) -> None:
        self.alerts[alert.id] = alert

    def forget(self, before: int | None, tables: tuple[str, ...]) -> None:
        """Rows of windows older than ``before`` (all when None) go from the file at the next
        snapshot, and what was unsaved of them is not written."""
        for table in tables:
            self.deletions.append((table, before))
        if "cells" in tables:
            for t in [t for t in self.unsaved if before is None or t < before]:
                del self.unsaved[t]
        if "alerts" in tables:
            self.alerts = {i: a for i, a in self.alerts.items()
                           if before is not None and a.timestamp >= before}

    async def idle(self) -> None:
        """Wait for the write in progress, if any (a cancellation does not interrupt it)."""
        if self._saving is not None:
            await asyncio.shield(self._saving)

    async def write(self, state: State, positions: dict[str, str], journal_upto: int) -> bool:
        """Save what changed with ``positions``, in one transaction; whether it was saved.
        Call it right after :meth:`idle` and the service's tick, with nothing awaited
        between: the saved cells must hold every CDR the saved positions cover."""
        store = self.engine.store
        delta = Delta(deletions=self.deletions, journal_upto=journal_upto)
        occupancy = store.occupancy
        for t, keys in self.unsaved.items():
            for key in keys:
                stat = store.get(t, key)
                if stat is not None:
                    delta.cells.append((t, key, stat.sum, stat.count, stat.squares, stat.min, stat.max))
                    seconds = occupancy.saved(t, key)  # (peak_concurrent's: calls per second)
                    if seconds is not None:
                        delta.occupancy.append((t, key, seconds))
        delta.alerts = [(a.id, a.timestamp, alert_record(a)) for a in self.alerts.values()]
        delta.seen = self.engine.seen_new
        packed = self.engine.seen.take_packed()
        delta.packed = {t: hashes.to_bytes() for t, hashes in packed.items()}
        delta.positions = positions
        delta.outcomes = dict(self.engine.outcomes)
        delta.history, delta.history_hours, delta.history_before = self.engine.traffic.history.take()
        states = export_state(self.engine.plugins)
        delta.plugin_state = {name: data for name, data in states.items()
                              if self.plugin_saved.get(name) != data}
        self.plugin_saved.update(delta.plugin_state)
        judged = self.engine.traffic.export()
        if judged is not None:
            text = orjson.dumps(judged).decode()
            if text != self.traffic_saved:
                delta.traffic = self.traffic_saved = text
        taken = (self.unsaved, self.alerts, self.engine.seen_new, list(packed))
        self.unsaved, self.alerts, self.deletions = {}, {}, []
        self.engine.seen_new = []
        self._saving = asyncio.ensure_future(self._save(state, delta, *taken))
        return await asyncio.shield(self._saving)

    async def _save(self, state: State, delta: Delta, unsaved: dict[int, set[str]],
                    alerts: dict[str, Alert], seen: list[tuple[int, Any]], packed: list[int]) -> bool:
        started = time.perf_counter()
        try:
            await self.run(lambda: state.save(delta))
        except Exception as error:  # keep what was not saved for the next snapshot
            self.cells_changed(unsaved)
            kept = self.engine.alerts.ids()  # not those deleted while the write ran
            self.alerts = {**{i: a for i, a in alerts.items() if i in kept}, **self.alerts}
            self.engine.seen_new = seen + self.engine.seen_new
            self.engine.seen.repack_later(packed)
            self.deletions = delta.deletions + self.deletions
            self.engine.traffic.history.put_back(delta.history_hours, delta.history_before)
            for name in delta.plugin_state:  # (written again at the next snapshot)
                self.plugin_saved.pop(name, None)
            if delta.traffic is not None:
                self.traffic_saved = None
            self.stats["last_error"] = f"{type(error).__name__}: {error}"
            log.error("snapshot failed: %s", error)
            return False
        self.stats.update(count=self.stats["count"] + 1, last_at=self.clock(),
                          last_seconds=round(time.perf_counter() - started, 4),
                          last_error=None, last_cells=len(delta.cells))
        return True


def alert_record(alert: Alert) -> bytes:
    """An alert as saved; a sample CDR that cannot be written is replaced by a note, so one
    odd document never stops every later snapshot."""
    record = alert.to_record()
    try:
        return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError) as error:
        log.warning("alert %s: its sample CDR cannot be saved (%s); saving a note instead",
                    alert.id, error)
        record["doc"] = {"unsaved": f"the sample CDR could not be saved: {error}"}
        return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)
