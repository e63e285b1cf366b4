"""The long-running service: sources in, engine, snapshots to SQLite, live events out.

Everything that touches the engine runs on the event loop, a batch at a time; SQLite
work runs on one thread of its own, and the ingest journal (journal.py) on another, so
that a POST never waits behind a snapshot. A POSTed CDR is durable in the journal before
it is counted, and a snapshot saves the windows together with every source's position,
so after a crash the service resumes exactly where its saved state ends.
The CouchDB feeds are followers.py's, the snapshot writes snapshots.py's; this module
starts them, runs the HTTP journal's group commit, and publishes what changed.
"""
from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import orjson

from .alerts import Alert
from .config import Config
from .columns import Columns
from .engine import BATCH, Engine
from .followers import Followers
from .journal import Journal
from .looplag import LoopLag
from .notify import Notifier
from .plugin_health import PluginHealth
from .plugin_state import import_state
from .snapshots import SnapshotWriter
from .unchecked import decode_checked
from .sources import synthetic
from .state import Delta, State
from .status import rate, service_status
from .web.body import repaired
from .web.events import Hub, series_name

__all__ = ["Service"]

log = logging.getLogger("sixminutes")
T = TypeVar("T")
JOURNAL = "journal"
REJECTIONS_KEPT = 100  # the newest rejections listed in the status, with where they came from
GATHER_ROUNDS = 4
"""Rounds of the event loop a group commit lets go by before it takes the POSTs waiting."""
PROMPT = 0.02  # seconds after CDRs are counted that open event streams hear of them (coalesced)
WAIT_SECONDS = 0.02
"""The longest the POSTs' accepted rows wait to be counted (with the next group commits'),
unless something reads the counts before: see :meth:`Service.count_waiting`."""
WAIT_ROWS = 384
"""... or less, once this many wait (counted in ~2 ms of the event loop: bench/live_batch.py)."""


def _decoded_runs(batch: list[tuple[str, bytes, Any, bool]]
                  ) -> list[tuple[str, list[bytes], Columns]]:
    """A group commit's (source, bodies, columns) for each run of one source, in order, the
    unchecked bodies repaired where they need it (:mod:`sixminutes.unchecked`)."""
    runs = []
    for source, group in itertools.groupby(batch, key=lambda item: item[0]):
        items = list(group)
        runs.append((source, *decode_checked([item[1] for item in items],
                                             [item[3] for item in items], repaired)))
    return runs


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
        self.loop_lag = LoopLag()
        self.freeze_heap = False
        """Set by ``sixminutes serve``: the heap as it is once started (modules, plugins, the
        restored state) is moved out of the cyclic garbage collector's reach (:meth:`_freeze`)."""
        self.state: State | None = None
        self.journal_position = 0
        self._alerts_live: dict[str, Alert] = {}
        self._queue: list[tuple[str, bytes, asyncio.Future, bool]] = []
        self._queued = asyncio.Event()
        self._prompt: asyncio.TimerHandle | None = None
        self._waiting: asyncio.TimerHandle | None = None  # counts the rows left waiting
        self._admitted = 0  # the journal's last row admitted (its CDR counted or waiting)
        self._db = ThreadPoolExecutor(1, thread_name_prefix="sixminutes-state")
        self._journal_io = ThreadPoolExecutor(1, thread_name_prefix="sixminutes-journal")
        self.journal: Journal | None = None
        self._journal_dir: tempfile.TemporaryDirectory | None = None
        self._tasks: list[asyncio.Task] = []
        self.writer = SnapshotWriter(self.engine, self._run, clock)
        self.feeds = Followers(config, self.engine, self._save_positions, self._rejected,
                               counted=self._counted)
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
        self.group: Any = None  # with --nats: this instance's membership (group/cluster.py)
        if config.nats:
            from .group.cluster import Group  # (nats is imported only by a group's members)
            self.group = group = Group(config)
            self.notifier.speaks = group.leads
            self.feeds.count = lambda rows, source: group.ingest_many(self.engine, rows, source)
            group.changed = self._counted  # (the view's records, shown as promptly)

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the saved state, replay the journal past it, then start the sources.

        The state file is opened here unless it was opened before (the CLI does, so that a
        file in use is refused before anything else, the port and the token file included)."""
        if self.state is None:
            self.open_state()
        assert self.state is not None
        saved = await self._run(self.state.load)
        alerts = [orjson.loads(a) for a in saved.alerts]
        self.feeds.open({k: v for k, v in saved.positions.items() if k != JOURNAL})
        self.engine.traffic.history.restore(saved.history, saved.history_hours)  # (baselines)
        import_state(self.engine.plugins, saved.plugin_state)  # (what the plugins remember)
        self.writer.plugin_saved = dict(saved.plugin_state)
        if self.group is not None:  # the counts come from the group's bucket, not the file
            self.engine.restore([], alerts, [], {})
            self._resume_traffic(saved.traffic)
            await self.group.start()
            return self._start_tasks()
        seen = (saved.seen.popitem() for _ in range(len(saved.seen)))  # handed over, not copied
        self.engine.restore(saved.cells, alerts, seen, saved.outcomes, saved.occupancy)
        self._resume_traffic(saved.traffic)
        self.journal_position = int(saved.positions.get(JOURNAL, "0"))
        # (the rows an older version kept in the state file's journal table come first)
        journal = await self._run(lambda: list(self.state.journal_after(self.journal_position)))
        self.journal = await self._journal(lambda: self._open_journal(
            max([self.journal_position, *(row[0] for row in journal[-1:])])))
        journal += await self._journal(lambda: list(self.journal.after(self.journal_position)))
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
        self._tasks.append(asyncio.create_task(self._journal_writer(), name="journal"))
        self._start_tasks()

    def _resume_traffic(self, saved: str | None) -> None:
        """The windows the traffic rules judged before the stop are not judged again."""
        if saved is None:
            return
        try:
            self.engine.traffic.resume(orjson.loads(saved))
        except orjson.JSONDecodeError as error:  # (the restored windows are judged again)
            log.warning("state %s: the traffic rules' judgement cannot be read: %s",
                        self.config.state, error)
            return
        self.writer.traffic_saved = saved

    def _start_tasks(self) -> None:
        """The feeds, the timers, the demo and the notifications, alone or in a group."""
        self._freeze()
        self.plugin_health.check(self.engine.status())  # files that failed to load, said now
        for name, follow in self.feeds.runs().items():
            self._tasks.append(asyncio.create_task(self._forever(name, follow), name=name))
        self._tasks += [asyncio.create_task(self._every(0.25, self.tick), name="tick"),
                        asyncio.create_task(self.loop_lag.run(), name="loop lag"),
                        asyncio.create_task(self._every(self.config.snapshot_seconds, self.snapshot),
                                            name="snapshot")]
        if self.config.demo:
            demo = lambda: synthetic.demo(self.ingest, self.clock, self.config.demo_rate)  # noqa: E731
            self._tasks.append(asyncio.create_task(self._forever("demo", demo), name="demo"))
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
        if self.journal is not None:
            await self._journal(self.journal.close)
        if self.group is not None:
            await self.group.stop()
        self._db.shutdown(wait=True)
        self._journal_io.shutdown(wait=True)
        if self._journal_dir is not None:
            self._journal_dir.cleanup()

    def _freeze(self) -> None:
        """With :attr:`freeze_heap`: collect, then freeze what is left (``gc.freeze``).

        A full collection walks every object the collector tracks, and about 48,000 of them
        (modules, functions, plugins, phonenumbers' tables) are there before the first CDR:
        every few seconds of ingest, the oldest generation's collection held the event loop
        for 12-17 ms, the POSTs waiting through it. Frozen, they are skipped; they are still
        freed by reference counting, only a cycle among them would stay (plugins reloaded:
        :meth:`reload_plugins` collects and freezes again)."""
        if self.freeze_heap:
            gc.collect()
            gc.freeze()

    def reload_plugins(self) -> Any:
        """POST /6minutes/restart: the engine's new plugin set; the old one is collected."""
        self.count_waiting()
        plugins = self.engine.reload()
        if self.freeze_heap:  # (a module and its functions are a cycle: unfrozen, collected)
            gc.unfreeze()
            self._freeze()
        return plugins

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn)

    async def _journal(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._journal_io, fn)

    def _open_journal(self, after: int) -> Journal:
        """The journal beside the state file (in a directory of its own for an in-memory one)."""
        path = self.config.state
        if path == ":memory:" or path.startswith("file::memory:"):
            self._journal_dir = tempfile.TemporaryDirectory(prefix="sixminutes-journal-")
            path = self._journal_dir.name
        else:
            path += ".journal"
        return Journal(path, after)

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
        """Count one CDR once it is durable in the journal (in a group: once JetStream has
        stored it, else GroupUnavailable); the engine's outcome (:meth:`journaled`)."""
        if self.group is not None:
            reason = await self.group.ingest(self.engine, body, source)
            if reason not in (None, "duplicate"):
                self._rejected(source, reason)
            return reason
        return await self.journaled(body, source)

    def journaled(self, body: bytes, source: str = "http",
                  unchecked: bool = False) -> asyncio.Future[str | None]:
        """Alone (not in a group): the outcome of one CDR, once the group commit that takes
        it has made it durable and admitted it (counted within :data:`WAIT_SECONDS`, and
        before anything reads the counts: :meth:`count_waiting`). (POST /6minutes/cdr awaits
        it directly: one coroutine fewer to suspend and resume per POST.) ``unchecked``: a
        percent-decoded document that may need web/body.py's ``repaired`` (the group
        commit repairs it before it is written: :mod:`sixminutes.unchecked`)."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._queue.append((source, body, future, unchecked))
        self._queued.set()
        return future

    async def _journal_writer(self) -> None:
        """Group commit: every body waiting is written in one transaction, then admitted in
        order and answered; the accepted rows are counted later (:meth:`count_waiting`).

        Before it takes the bodies waiting, it lets the event loop go round a few times
        (:data:`GATHER_ROUNDS`, microseconds when it has nothing else to do): the POSTs whose
        bytes have arrived meanwhile join this group instead of the next. Under wrk -c32
        the groups went from ~15 POSTs (half the connections, the two halves taking turns)
        to 26-31: the write, the wake of the journal's thread and the fixed part of counting
        a batch are paid once for twice as many. The bodies are decoded before they are
        written, so that an encode=true one is checked for repair once (unchecked.py)."""
        while True:
            await self._queued.wait()
            for _ in range(GATHER_ROUNDS):  # (one round: what arrived is read, or its handler runs)
                await asyncio.sleep(0)
            self._queued.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                runs = _decoded_runs(batch)
                ids = await self._journal(lambda: self.journal.append(
                    [(source, body) for source, bodies, _ in runs for body in bodies]))
            except Exception as error:
                for _, _, future, _ in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            reasons: list[str | None] = []
            for source, bodies, columns in runs:
                reasons += self.engine.admit_batch(bodies, source, columns)
            self._admitted = ids[-1]
            self._counted()
            for row_id, reason, (source, _, future, _) in zip(ids, reasons, batch):
                if reason is not None:
                    self._rejected(source, reason, journal=row_id)
                if not future.done():
                    future.set_result(reason)
            if len(self.engine.waiting) >= WAIT_ROWS:  # (once the POSTs have their answers)
                self.count_waiting()
            elif self._waiting is None:
                self._waiting = asyncio.get_running_loop().call_later(WAIT_SECONDS,
                                                                      self.count_waiting)

    def count_waiting(self) -> None:
        """Count the POSTs' accepted rows that wait (admitted, answered, not counted yet).

        Each group commit's POSTs are admitted at once (decoded, deduplicated, answered once
        durable); their counting waits up to :data:`WAIT_SECONDS` or :data:`WAIT_ROWS`, so
        that several commits are counted as one batch (:mod:`sixminutes.deferred`). Whatever
        reads the counts calls this first: every request but the POSTs themselves (the web
        app's ``before``), the tick (rules, events), a snapshot, a reload, the stop; the
        engine's own reads and sources do too (:meth:`Engine.count_waiting`). Once it
        returns, every row the journal holds up to :attr:`journal_position` is counted:
        what a snapshot saves with that position."""
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        self.engine.count_waiting()
        self.journal_position = max(self.journal_position, self._admitted)

    async def keep_bad_body(self, source: str, content_type: str | None, error: str,
                            body: bytes, *, count: bool = True) -> None:
        """Keep a body for GET /6minutes/rejected; ``count`` it unless the engine already did."""
        if count:
            self.engine.outcomes[(source, "bad_body")] += 1
        await self._run(lambda: self.state.keep_bad_body(source, content_type, error, body))

    async def _save_positions(self, delta: Delta) -> None:
        await self._run(lambda: self.state.save(delta))

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

    # -- periodic work ----------------------------------------------------------------

    @property
    def snapshots(self) -> dict[str, Any]:
        """What the status and /metrics say of the snapshots."""
        return self.writer.stats

    def _counted(self) -> None:
        """CDRs were counted: open event streams hear of them in PROMPT s, not at the tick."""
        if self.hub.clients and self._prompt is None:
            self._prompt = asyncio.get_running_loop().call_later(PROMPT, self._publish_stats)

    def _publish_stats(self) -> None:
        """Publish the Stats changed since the last time, and remember them for the snapshot."""
        self._prompt = None
        self.count_waiting()
        if self.group is not None:
            self.group.show(self.engine)
        changes = self.engine.store.drain_changes()
        self.writer.cells_changed(changes)
        if not self.hub.clients:  # nobody to tell: only remember it for the snapshot
            return
        items = [{"timestamp": t, "name": series_name(key), "label": key, "data": stat.to_json()}
                 for t, keys in changes.items() for key in keys
                 if (stat := self.engine.store.get(t, key)) is not None]
        if items:
            self.hub.publish("stats", items)

    def tick(self) -> None:
        """Check thresholds, publish what changed as live events, remember it for the snapshot."""
        self.count_waiting()
        if self.group is not None:
            self.group.show(self.engine)
        self.engine.hold_resolution = self.feeds.behind()
        try:
            self.engine.flush()
        except Exception:  # a broken rule must not stop the events and snapshots behind it
            log.exception("checking the threshold rules failed")
        self._publish_stats()
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
        self.writer.alert_changed(alert)

    def _purge(self) -> None:
        self._purged_at = self.clock()
        oldest = self.engine.purge()
        if oldest is not None:
            if self.group is not None:
                self.group.purge(oldest)
            self.writer.forget(oldest, ("cells", "alerts", "seen"))

    def delete_data(self, before: int | None) -> int:
        """DELETE /6minutes/data: drop windows (all, or older than ``before``), the hourly
        history and plugins' memory of them (:meth:`Engine.clear`); the file follows at the
        next snapshot."""
        self.count_waiting()
        dropped = self.engine.clear(before)
        self.writer.forget(before, ("cells",))
        self.hub.publish("resync", {"lost": 0})  # open pages refetch instead of showing stale data
        return len(dropped)

    def delete_alerts(self, before: int | None) -> int:
        self.count_waiting()  # (the alerts those rows raise are older than this deletion)
        dropped = self.engine.alerts.purge(before)
        kept = self.engine.alerts.ids()
        self._alerts_live = {i: a for i, a in self._alerts_live.items() if i in kept}
        self.notifier.forget(kept.__contains__)
        self.writer.forget(before, ("alerts",))
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
        await self.writer.idle()  # one write at a time, in order
        self.tick()  # the saved cells must hold every CDR the saved positions cover (the tick
        # counts the rows waiting first, outside its guard: a failure there stops the snapshot)
        upto = self.journal_position
        positions = {**self.feeds.positions(), JOURNAL: str(upto)}
        if await self.writer.write(self.state, positions, upto) and self.journal is not None:
            # what the state now holds: unlinked on the state's thread, not the journal's
            covered = await self._journal(lambda: self.journal.detach(upto))
            if covered:
                await self._run(lambda: _unlink(covered))

    # -- status -----------------------------------------------------------------------

    def rate(self) -> float:
        """Accepted CDRs per second over the last ten seconds."""
        return rate(self._rate)

    def status(self) -> dict[str, Any]:
        """GET /6minutes/status (status.py)."""
        return service_status(self)


def _unlink(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
