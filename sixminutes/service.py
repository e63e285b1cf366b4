"""The long-running service: sources in, engine, snapshots to SQLite, live events out.

Everything that touches the engine runs on the event loop, one document at a time;
SQLite work runs on one thread of its own. The ingest journal is committed before a
POSTed CDR is counted, and a snapshot saves the windows together with every source's
position, so after a crash the service resumes exactly where its saved state ends.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import re
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import orjson

from .alerts import Alert
from .config import Config
from .engine import BATCH, Engine
from .notify import Notifier
from .plugin_health import PluginHealth
from .sources.batching import ready_batches
from .sources.couchdb import ChangesFollower, redact
from .sources.synthetic import Generator
from .state import Delta, State
from .web.events import Hub, series_name

__all__ = ["Service"]

log = logging.getLogger("sixminutes")
T = TypeVar("T")
JOURNAL = "journal"
REJECTIONS_KEPT = 100
"""The newest rejections listed in the status, each with where it came from."""
DEMO_TROUBLED_SHARE = 0.1
"""The share of the demo's calls its carrier in trouble carries."""
_ROW_ID = re.compile(rb'"id"\s*:\s*"((?:[^"\\]|\\.){0,200})"')


class Service:
    """Owns the engine, the state file, the sources and the live-event hub."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.engine = Engine(config, clock=clock)
        self.engine.track_seen = True
        self.engine.store.track_changes = True
        self.engine.check_every = 10**9  # the tick checks thresholds, not the CDR count
        self.engine.live = True
        self.hub = Hub()
        self.state: State | None = None
        self.followers: dict[str, ChangesFollower] = {}
        self._counted: dict[str, str] = {}
        """Follower → the seq of the last row counted (its reader runs ahead of it)."""
        self.journal_position = 0
        self.snapshots = {"count": 0, "last_at": None, "last_seconds": None, "last_error": None}
        self._positions: dict[str, str] = {}
        self._unsaved: dict[int, set[str]] = {}
        self._alerts_live: dict[str, Alert] = {}
        self._alerts_unsaved: dict[str, Alert] = {}
        self._deletions: list[tuple[str, int | None]] = []
        self._queue: list[tuple[str, bytes, asyncio.Future]] = []
        self._queued = asyncio.Event()
        self._db = ThreadPoolExecutor(1, thread_name_prefix="sixminutes-state")
        self._tasks: list[asyncio.Task] = []
        self._saving: asyncio.Future | None = None
        self._rate: deque[tuple[float, int]] = deque(maxlen=41)
        self.rejections: deque[dict[str, Any]] = deque(maxlen=REJECTIONS_KEPT)
        """The newest rejections: source, reason, detail and the CouchDB id and sequence, or
        the journal row of the POST (whose body GET /6minutes/rejected keeps)."""
        self._purged_at = 0.0
        self.engine.alerts.listeners.append(self._alert_changed)
        self.plugin_health = PluginHealth(clock, log)
        self.notifier = Notifier(
            config.alertmanager, config.webhook, secret=config.webhook_secret,
            public_url=config.public_url or f"http://{config.host}:{config.port}",
            resend=max(1.0, config.alertmanager_resend_seconds), max_queue=config.notify_queue,
            firing=self.engine.alerts.lifecycle.firing, incident=self.engine.alerts.incident,
            clock=clock)
        if self.notifier:
            self.engine.alerts.listeners.append(self.notifier.changed)

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the saved state, replay the journal past it, then start the sources.

        The state file is opened here unless it was opened before (the CLI does, so that a
        file in use is refused before anything else, the port and the token file included)."""
        if self.state is None:
            self.open_state()
        assert self.state is not None
        saved = await self._run(self.state.load)
        seen = (saved.seen.popitem() for _ in range(len(saved.seen)))  # handed over, not copied
        self.engine.restore(saved.cells, [orjson.loads(a) for a in saved.alerts], seen,
                            saved.outcomes)
        self._positions = {k: v for k, v in saved.positions.items() if k != JOURNAL}
        self.journal_position = int(saved.positions.get(JOURNAL, "0"))
        journal = await self._run(lambda: list(self.state.journal_after(self.journal_position)))
        for start in range(0, len(journal), BATCH):
            rows = journal[start:start + BATCH]
            for source, run in itertools.groupby(rows, key=lambda row: row[1]):
                self.engine.feed_batch([body for _, _, body in run], source)
            self.journal_position = rows[-1][0]
        replayed = len(journal)
        self._purge()
        log.info("state %s: %d windows, %d alerts restored; %d journal CDRs replayed",
                 self.config.state, len(self.engine.store.windows()), len(self.engine.alerts),
                 replayed)
        self.plugin_health.check(self.engine.status())  # files that failed to load, said now
        for url in self.config.couchdb:
            name = f"couchdb:{redact(url)}"
            while name in self.followers:  # the same database under other credentials
                name += "+"
            follower = self.followers[name] = ChangesFollower(
                url, self._positions.get(name, self.config.since),
                heartbeat_ms=self.config.couchdb_heartbeat_ms,
                backoff_max=self.config.couchdb_backoff_max)
            self._tasks.append(asyncio.create_task(
                self._forever(name, lambda n=name, f=follower: self._follow(n, f)), name=name))
        self._tasks += [asyncio.create_task(self._journal_writer(), name="journal"),
                        asyncio.create_task(self._every(0.25, self.tick), name="tick"),
                        asyncio.create_task(self._every(self.config.snapshot_seconds, self.snapshot),
                                            name="snapshot")]
        if self.config.demo:
            self._tasks.append(asyncio.create_task(self._forever("demo", self._demo), name="demo"))
        if self.notifier:
            self.notifier.resend_firing()  # what was firing at the last stop, Alertmanager hears again
            self._tasks.append(asyncio.create_task(self._forever("notifications", self.notifier.run),
                                                   name="notifications"))

    def open_state(self) -> None:
        """Open and lock the state file; StateError when another process owns it or it is
        from a newer version. (The CLI opens it itself, before anything else.)"""
        self.state = State(self.config.state)

    async def stop(self) -> None:
        """Stop the sources, then save a last snapshot (SIGTERM/SIGINT come here)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.snapshot()  # waits for a write a cancelled snapshot left running
        if self.state is not None:
            await self._run(self.state.close)
        self._db.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn)

    async def _every(self, seconds: float, action: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                result = action()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # a failing tick must not stop the next one
                log.exception("%s failed", getattr(action, "__name__", action))

    # -- sources ----------------------------------------------------------------------

    async def ingest(self, body: bytes, source: str = "http") -> str | None:
        """Count one CDR once it is durable in the journal; the engine's outcome."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((source, body, future))
        self._queued.set()
        return await future

    async def _journal_writer(self) -> None:
        """Group commit: every body waiting is written in one transaction, then counted in order."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                ids = await self._run(lambda: self.state.journal_append([(s, b) for s, b, _ in batch]))
            except Exception as error:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            reasons: list[str | None] = []
            for source, run in itertools.groupby(batch, key=lambda item: item[0]):
                reasons += self.engine.feed_batch([body for _, body, _ in run], source)
            self.journal_position = ids[-1]
            for row_id, reason, (source, _, future) in zip(ids, reasons, batch):
                if reason is not None:
                    self._rejected(source, reason, journal=row_id)
                if not future.done():
                    future.set_result(reason)

    async def keep_bad_body(self, source: str, content_type: str | None, error: str,
                            body: bytes, *, count: bool = True) -> None:
        """Keep a body for GET /6minutes/rejected; ``count`` it unless the engine already did."""
        if count:
            self.engine.outcomes[(source, "bad_body")] += 1
        await self._run(lambda: self.state.keep_bad_body(source, content_type, error, body))

    async def _follow(self, name: str, follower: ChangesFollower) -> None:
        """Count a feed's rows in batches of those waiting (a catch-up brings thousands).

        The follower reads ahead of what is counted, so a snapshot saves the seq of the last
        row counted (``_counted``), and when counting stops the follower rewinds to it."""
        begun, counted = follower.position, None
        try:
            async with contextlib.aclosing(ready_batches(follower.rows(), BATCH)) as batches:
                async for batch in batches:
                    if name not in self._positions and follower.started_from is not None:
                        # "now" was resolved: save it before counting anything from it, or a
                        # kill -9 before the first snapshot would resolve a later "now"
                        start = {name: follower.started_from}
                        await self._run(lambda: self.state.save(Delta(positions=start)))
                        self._positions.update(start)
                    reasons = self.engine.feed_batch([row for row, _ in batch], name)
                    counted = self._counted[name] = batch[-1][1]
                    for (row, seq), reason in zip(batch, reasons):
                        if reason is not None:
                            found = _ROW_ID.search(row, 0, 4096)
                            self._rejected(name, reason, id=found[1].decode("utf-8", "replace")
                                           if found else None, seq=seq)
        finally:
            if counted is None:  # nothing counted: where this run began ("now" as it resolved)
                counted = follower.started_from if begun == "now" and follower.started_from \
                    else begun
            follower.rewind(counted)

    def _rejected(self, source: str, reason: str, **where: Any) -> None:
        detail = self.engine.last_rejection.get(reason, "")
        self.rejections.append({"time": self.clock(), "source": source, "reason": reason,
                                "detail": detail[:200], **where})

    async def _forever(self, what: str, run: Callable[[], Any]) -> None:
        """Run a source again after an unexpected error, so that one bad moment never stops it."""
        while True:
            try:
                await run()
                return
            except Exception:
                log.exception("%s stopped unexpectedly; starting it again in 1 s", what)
                await asyncio.sleep(1)

    async def _demo(self) -> None:
        """Synthetic traffic through the same path as POSTed CDRs: twenty carriers, one of
        them (kestrel) in trouble and carrying a tenth of the calls, so that at the default
        rate its incidents open on evidence within the first minutes (docs/alerts.md)."""
        seed = int(self.clock())
        generator, jitter = Generator(seed=seed, troubled_share=DEMO_TROUBLED_SHARE), random.Random(seed)
        interval = 1.0 / max(self.config.demo_rate, 0.01)
        while True:
            raw, _ = generator.cdr(int(self.clock()) - jitter.randrange(0, 30))
            await self.ingest(raw, "demo")
            await asyncio.sleep(interval * jitter.uniform(0.2, 1.8))

    # -- periodic work ----------------------------------------------------------------

    def tick(self) -> None:
        """Check thresholds, publish what changed as live events, remember it for the snapshot."""
        self.engine.hold_resolution = self._sources_behind()
        try:
            self.engine.flush()
        except Exception:  # a broken rule must not stop the events and snapshots behind it
            log.exception("checking the threshold rules failed")
        changes = self.engine.store.drain_changes()
        items = []
        listening = self.hub.clients > 0  # nobody to tell: only remember it for the snapshot
        for t, keys in changes.items():
            self._unsaved.setdefault(t, set()).update(keys)
            for key in keys if listening else ():
                stat = self.engine.store.get(t, key)
                if stat is not None:
                    items.append({"timestamp": t, "name": series_name(key), "label": key,
                                  "data": stat.to_json()})
        if items:
            self.hub.publish("stats", items)
        alerts, self._alerts_live = self._alerts_live, {}
        incidents = {}
        for alert in alerts.values():
            self.hub.publish("alert", alert.to_json(with_doc=False))  # the CDR: /6minutes/alerts/{id}
            incident = self.engine.alerts.incident(alert)
            incidents[incident.id] = incident
        for incident in incidents.values():  # one event per incident changed in this tick
            self.hub.publish("incident", incident.to_json())
        self.plugin_health.check(self.engine.status())  # logged once per change of state
        now = self.clock()
        self._rate.append((now, self.engine.accepted))
        if now - self._purged_at >= 60:
            self._purge()

    def _alert_changed(self, alert: Alert) -> None:
        self._alerts_live[alert.id] = alert
        self._alerts_unsaved[alert.id] = alert

    def _purge(self) -> None:
        self._purged_at = self.clock()
        oldest = self.engine.purge()
        if oldest is not None:
            self._forget(oldest, ("cells", "alerts", "seen"))

    def _forget(self, before: int | None, tables: tuple[str, ...]) -> None:
        for table in tables:
            self._deletions.append((table, before))
        if "cells" in tables:
            for t in [t for t in self._unsaved if before is None or t < before]:
                del self._unsaved[t]
        if "alerts" in tables:
            self._alerts_unsaved = {i: a for i, a in self._alerts_unsaved.items()
                                    if before is not None and a.timestamp >= before}

    def delete_data(self, before: int | None) -> int:
        """DELETE /6minutes/data: drop windows (all, or older than ``before``)."""
        dropped = self.engine.store.purge(before)
        self._forget(before, ("cells",))
        self.hub.publish("resync", {"lost": 0})  # open pages refetch instead of showing stale data
        return len(dropped)

    def _sources_behind(self) -> bool:
        """A CouchDB feed down or more than a few hundred changes behind: quiet may mean late."""
        for follower in self.followers.values():
            status = follower.status()
            if not status.get("connected") or (status.get("lag") or 0) > 500:
                return True
        return False

    def delete_alerts(self, before: int | None) -> int:
        dropped = self.engine.alerts.purge(before)
        kept = self.engine.alerts.ids()
        self._alerts_live = {i: a for i, a in self._alerts_live.items() if i in kept}
        self.notifier.forget(kept.__contains__)
        self._forget(before, ("alerts",))
        self.hub.publish("resync", {"lost": 0})
        return dropped

    async def snapshot(self) -> None:
        """Save what changed since the last snapshot, with every source's position, atomically.

        The write runs as a task of its own that a cancellation (service stop) does not
        interrupt: :meth:`stop` waits for it before its last snapshot, so nothing taken
        out of the unsaved sets is ever dropped.
        """
        if self.state is None:
            return
        if self._saving is not None:
            await asyncio.shield(self._saving)  # one write at a time, in order
        self.tick()  # the saved cells must hold every CDR the saved positions cover
        store = self.engine.store
        delta = Delta(deletions=self._deletions, journal_upto=self.journal_position)
        for t, keys in self._unsaved.items():
            for key in keys:
                stat = store.get(t, key)
                if stat is not None:
                    delta.cells.append((t, key, stat.sum, stat.count, stat.squares, stat.min, stat.max))
        delta.alerts = [(a.id, a.timestamp, _alert_record(a)) for a in self._alerts_unsaved.values()]
        delta.seen = self.engine.seen_new
        packed = self.engine.seen.take_packed()
        delta.packed = {t: hashes.tobytes() for t, hashes in packed.items()}
        resolved = {name: f.started_from for name, f in self.followers.items()  # "now", before
                    if name not in self._counted and f.started_from is not None}  # any row came
        delta.positions = {**self._positions, **resolved, **self._counted,
                           JOURNAL: str(self.journal_position)}
        delta.outcomes = dict(self.engine.outcomes)
        taken = (self._unsaved, self._alerts_unsaved, self.engine.seen_new, list(packed))
        self._unsaved, self._alerts_unsaved, self._deletions = {}, {}, []
        self.engine.seen_new = []
        self._saving = asyncio.ensure_future(self._save(delta, *taken))
        await asyncio.shield(self._saving)

    async def _save(self, delta: Delta, unsaved: dict[int, set[str]], alerts: dict[str, Alert],
                    seen: list[tuple[int, Any]], packed: list[int]) -> None:
        started = time.perf_counter()
        try:
            await self._run(lambda: self.state.save(delta))
        except Exception as error:  # keep what was not saved for the next snapshot
            for t, keys in unsaved.items():
                self._unsaved.setdefault(t, set()).update(keys)
            kept = self.engine.alerts.ids()  # not those deleted while the write ran
            self._alerts_unsaved = {**{i: a for i, a in alerts.items() if i in kept},
                                    **self._alerts_unsaved}
            self.engine.seen_new = seen + self.engine.seen_new
            self.engine.seen.repack_later(packed)
            self._deletions = delta.deletions + self._deletions
            self.snapshots["last_error"] = f"{type(error).__name__}: {error}"
            log.error("snapshot failed: %s", error)
            return
        self.snapshots.update(count=self.snapshots["count"] + 1, last_at=self.clock(),
                              last_seconds=round(time.perf_counter() - started, 4),
                              last_error=None, last_cells=len(delta.cells))

    # -- status -----------------------------------------------------------------------

    def rate(self) -> float:
        """Accepted CDRs per second over the last ten seconds."""
        if len(self._rate) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def status(self) -> dict[str, Any]:
        by_source: dict[str, dict[str, int]] = {}
        for (source, outcome), n in self.engine.outcomes.items():
            by_source.setdefault(source, {})[outcome] = n
        sources = [{"name": name, **f.status()} for name, f in self.followers.items()]
        sources.append({"name": "http", "state": "listening", "connected": True,
                        "position": self.journal_position, "lag": len(self._queue)})
        if self.config.demo:
            sources.append({"name": "demo", "state": "running", "connected": True,
                            "rate": self.config.demo_rate})
        return {
            **self.engine.status(),
            "rate": round(self.rate(), 2),
            "sources": sources,
            "by_source": by_source,
            "last_rejection": self.engine.last_rejection,
            "rejections": list(self.rejections),
            "windows": len(self.engine.store.windows()),
            "rules": [{"name": r.name, "series": r.series, "per": r.per, "op": r.op,
                       "bound": r.bound, "min_count": r.min_count, "labels": list(r.labels),
                       "severity": r.severity, "confidence": r.confidence,
                       "strong_confidence": r.strong_confidence, "for_windows": r.for_windows}
                      for r in self.engine.thresholds.rules],
            "events": {"clients": self.hub.clients, "dropped": self.hub.dropped},
            "plugin_health": self.plugin_health.to_json(),
            "notifications": self.notifier.status(),
            "snapshots": self.snapshots,
            "state": self.config.state,
        }


def _alert_record(alert: Alert) -> bytes:
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
