"""The engine: one document in, a Call filed into its window, plugins run, alerts checked.

No I/O happens here: sources hand documents to :meth:`Engine.feed` (live, one at a time) or
:meth:`Engine.feed_many` (a replay, decoded in batches), and the web, state and report
layers read :attr:`Engine.store` and :attr:`Engine.alerts`.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .alerts import Alert, Alerts, Thresholds, rules_from_config
from .baselines import Traffic
from .batch import Batch
from .lifecycle import Condition, Lifecycle
from .call import Decoded, Rejected
from .columns import SKIP, Chunk, Columns, batch_of, decode_columns
from .config import Config
from .dedup import SeenIds, id_hash
from .deferred import Waiting
from .plugin_state import export_state, forget_data, import_state
from .plugins import PluginSet, load_plugins
from .share import Share, absorb, share_of
from .stats import Stat
from .store import Store
from .traffic_rules import traffic_rules_from_config
from .windows import WINDOW, Clock, Retention, window_of

__all__ = ["Engine", "Share", "BATCH", "BATCH_BYTES", "KEPT_REJECTIONS"]

BATCH = 4096
"""Documents :meth:`Engine.feed_many` decodes before it counts them (see there why)..."""
BATCH_BYTES = 64 << 20
"""... or fewer, once their raw bytes add up to this (a directory of huge documents)."""
KEPT_REJECTIONS = 1000
"""Rejections kept with their position, per reason, when ``Engine.keep_rejections`` is set."""
LATE = 60
"""Seconds after its end before a window is judged against its baseline (CDRs arrive late)."""


def _batch(items: Iterator[Any], held: list[Chunk] | None = None
           ) -> tuple[list[Any], Exception | None]:
    """The next documents to decode together, and the error that cut them short, if any.

    A :class:`~sixminutes.columns.Chunk` among the items is taken in whole or, when it does
    not fit, up to ``BATCH``: the rest waits in ``held`` for the next batch (so batches end
    at the same documents as when each comes alone)."""
    held = [] if held is None else held
    batch: list[Any] = []
    size = 0
    try:
        while held and len(batch) < BATCH and size < BATCH_BYTES:
            size += _take(held.pop(), batch, held)
        if len(batch) == BATCH or size >= BATCH_BYTES:
            return batch, None
        for item in items:
            if type(item) is Chunk:
                size += _take(item, batch, held)
            else:
                batch.append(item)
                if type(item) is bytes:
                    size += len(item)
            if len(batch) == BATCH or size >= BATCH_BYTES:
                break
    except Exception as error:  # the source failed: what it gave before is still counted
        return batch, error
    return batch, None


def _take(chunk: Chunk, batch: list[Any], held: list[Chunk]) -> int:
    """Move what fits of a chunk into the batch, the rest into ``held``; return its bytes."""
    room = BATCH - len(batch)
    if len(chunk) <= room:
        batch += chunk
        return chunk.nbytes
    batch += chunk[:room]
    rest = Chunk(chunk[room:], chunk.nbytes * (len(chunk) - room) // len(chunk))
    held.append(rest)
    return chunk.nbytes - rest.nbytes


def _data_time(alert: Alert) -> float:
    """When, in data time, an alert was raised: the end of the CDR that raised it."""
    sample = alert.sample
    if isinstance(sample, Decoded):
        return sample.call.end_epoch
    return alert.timestamp + WINDOW  # restored from a state file: its window's end


class Engine:
    """Counts CDRs into the store; every document is either accepted or rejected with a reason."""

    def __init__(self, config: Config | None = None, *, clock: Clock = time.time,
                 plugins: PluginSet | None = None) -> None:
        self.config = config or Config()
        self.retention = Retention(self.config.retention_hours, clock)
        self.store = Store()
        self.clock = clock
        c = self.config
        self.alerts = Alerts(clock, Lifecycle(c.alert_quiet_windows, c.alert_grace_seconds,
                                              c.alert_clear_windows))
        self.live = False
        """When set, alerts resolve by the wall clock; else (a replay) by the newest CDR's end."""
        self.hold_resolution = False
        """Set while a source is down or behind: the windows that look quiet may only be late."""
        self.thresholds = Thresholds(rules_from_config(self.config.rules))
        self.traffic = Traffic(traffic_rules_from_config(self.config.rules))
        """The traffic rules: each complete window's calls against its baseline."""
        self.plugins = plugins if plugins is not None else self.load_plugins()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        """(source, "accepted" or the rejection reason) → documents."""
        self.last_rejection: dict[str, str] = {}
        self.read = 0
        """Documents read, counted here or by another process (the position in the inputs)."""
        self._first_seen: dict[tuple[str, str], int] = {}  # outcome → where it was first seen
        self._rejected_at: dict[str, int] = {}  # reason → where last_rejection's was read
        self.check_every = BATCH
        self.track_seen = False
        """When set, ids newly counted are listed in ``seen_new`` for the snapshot to save."""
        self.seen_new: list[tuple[int, int]] = []
        self.seen = SeenIds()
        self._newest = 0
        self._newest_epoch = 0.0
        self._pending = 0
        self.keep_rejections = False
        """When set (a replay), each rejection is kept with its position, for the report to
        say where it was read: the first ``KEPT_REJECTIONS`` of each reason."""
        self.rejections: list[tuple[int, str, str]] = []
        self._kept: Counter[str] = Counter()
        self.waiting = Waiting()
        """Rows :meth:`admit_batch` accepted, not counted yet (:meth:`count_waiting`)."""

    def load_plugins(self) -> PluginSet:
        c = self.config
        return load_plugins(c.plugin_dirs, c.disabled, c.plugin_options)

    def reload(self) -> PluginSet:
        """Load the whole plugin set again and swap it in at once; the old one runs until then.
        What the old plugins remember (``export_state``) the new ones are given."""
        plugins = self.load_plugins()
        self.count_waiting()  # (the rows admitted before are the old plugins' to count)
        import_state(plugins, export_state(self.plugins))
        self.plugins = plugins
        return self.plugins

    def admit_batch(self, items: list[Any], source: str = "http",
                    columns: Columns | None = None) -> list[str | None]:
        """Admit documents that arrived together (a group commit of POSTs): return each
        one's rejection reason (None: accepted), exactly as :meth:`feed_batch` would, but
        leave the accepted rows to be counted later, with those of the next batches, by
        :meth:`count_waiting`. Whoever reads the store, the alerts or the plugins' health
        calls that first (the engine's own methods do): see :mod:`sixminutes.deferred`.
        ``columns``: ``decode_columns(items)`` done already (the group commit decodes
        before it writes: :mod:`sixminutes.unchecked`)."""
        return self._count_batch(list(items), source, wait=True, columns=columns)

    def count_waiting(self) -> int:
        """Count the rows :meth:`admit_batch` left waiting, as one batch; return how many."""
        taken = self.waiting.take()
        if taken is None:
            return 0
        batch, positions = taken
        self._count_accepted(batch, positions)
        return batch.n

    @property
    def accepted(self) -> int:
        return sum(n for (_, outcome), n in self.outcomes.items() if outcome == "accepted")

    @property
    def rejected(self) -> Counter[str]:
        """Rejected documents by reason, all sources together."""
        counts: Counter[str] = Counter()
        for (_, outcome), n in self.outcomes.items():
            if outcome != "accepted":
                counts[outcome] += n
        return counts

    def feed(self, item: bytes | dict, source: str = "replay") -> str | None:
        """Count one document; return None when accepted, else the rejection reason."""
        return self.feed_batch([item], source)[0]

    def feed_batch(self, items: list[Any], source: str = "replay") -> list[str | None]:
        """Count documents that arrived together (a group commit of POSTs) as one batch;
        return each one's rejection reason, None when accepted.

        The rules are checked every ``check_every`` documents (and by the live service's
        timer), not after each batch: live batches are small and frequent."""
        self.count_waiting()  # (in the order they were admitted)
        reasons = self._count_batch(list(items), source)
        self.read += len(items)
        self._pending += len(items)
        if self._pending >= self.check_every:
            self.flush()
        return reasons

    def feed_many(self, items: Iterable[Any], source: str = "replay",
                  keep: Callable[[Any], bool] | None = None) -> None:
        """Count documents in order, each as :meth:`feed` would; those for which ``keep`` is
        false are only passed over (another process counts them: :mod:`sixminutes.parallel`).

        They are decoded ``BATCH`` at a time (fewer once their bytes reach ``BATCH_BYTES``),
        then counted: decoding reads ~10 KB of JSON per CDR, which between two CDRs pushes
        the store's cells out of the CPU caches, so in batches the engine runs faster
        (``bench/engine.py`` prints by how much). Plugins see the same CDRs in the same
        order, and the rules are checked at the same documents. As a batch is read before it
        is decoded, ``items`` must not reuse an object it gave. When ``items`` raises, the
        documents it gave before are counted, then the error goes on.
        """
        self.count_waiting()
        it = iter(items)
        held: list[Chunk] = []
        while True:
            batch, failed = _batch(it, held)
            if batch:
                self._count_batch(batch if keep is None else
                                  [item if keep(item) else SKIP for item in batch], source)
                self.read += len(batch)
                self.flush()
            if failed is not None:
                raise failed
            if not batch:
                return

    def _count_batch(self, items: list[Any], source: str, wait: bool = False,
                     columns: Columns | None = None) -> list[str | None]:
        """Count a batch of documents (SKIP: one another process counts) from position ``read``
        on, without moving it; return each one's rejection reason, None if accepted. With
        ``wait``, the accepted rows wait in :attr:`waiting` and ``read`` moves past them."""
        if columns is None:
            columns = decode_columns(items)
        elif len(columns.items) != len(items):
            raise ValueError("the columns are not those of these items")
        rejected = [(row, found.reason, found.detail) for row, found in columns.outcome.items()
                    if isinstance(found, Rejected)]
        accepted, windows = self._admit(columns, rejected)
        reasons: list[str | None] = [None] * len(items)
        if rejected:
            rejected.sort()
            for row, reason, _ in rejected:
                reasons[row] = reason
        self._tally(source, rejected, accepted)
        if wait:
            self.waiting.add(columns, accepted, windows, self.read)
            self.read += len(items)
        elif len(accepted):
            self._count_accepted(batch_of(columns, accepted, windows),
                                 (accepted + self.read).tolist())
        return reasons

    def _admit(self, columns: Columns, rejected: list[tuple[int, str, str]]
               ) -> tuple[np.ndarray, np.ndarray]:
        """The rows that count and their windows; those from the future, too old or an id
        already counted in its window are added to ``rejected``.

        One Python pass: the dedup memory is asked row by row anyway, and a live batch is a
        few rows, for which numpy's cost per call would be most of the work."""
        rows = np.flatnonzero(columns.ok).tolist()
        newest_epoch = self.retention.newest_epoch()
        oldest = self.retention.oldest_window()
        if oldest is None:
            oldest = -1
        ids = columns.values[0]
        add, track, new = self.seen.add, self.track_seen, self.seen_new
        kept: list[int] = []
        windows: list[int] = []
        for row, end, code in zip(rows, columns.ints[0, rows].tolist(),
                                  columns.codes[0, rows].tolist()):
            window = end - end % WINDOW
            if end > newest_epoch or window < oldest:
                rejected.append((row, "future" if end > newest_epoch else "too_old",
                                 f"end_epoch {end}"))
                continue
            doc_id = ids[code]
            if doc_id is not None:
                digest = id_hash(doc_id)
                if not add(window, digest):
                    rejected.append((row, "duplicate", str(doc_id)))
                    continue
                if track:
                    new.append((window, digest))
            kept.append(row)
            windows.append(window)
        return np.array(kept, np.int64), np.array(windows, np.int64)

    def _tally(self, source: str, rejected: list[tuple[int, str, str]], accepted: np.ndarray
               ) -> None:
        """Count each outcome, in the order the documents were read."""
        outcomes, first_seen, read = self.outcomes, self._first_seen, self.read
        events: list[tuple[int, str, str, int]] = [(row, reason, detail, 1)
                                                   for row, reason, detail in rejected]
        if len(accepted):
            events.append((int(accepted[0]), "accepted", "", len(accepted)))
            if rejected:
                events.sort(key=lambda event: event[0])
        for row, reason, detail, n in events:
            position = read + row
            if reason != "accepted":
                self.last_rejection[reason] = detail
                self._rejected_at[reason] = position
                if self.keep_rejections and self._kept[reason] < KEPT_REJECTIONS:
                    self._kept[reason] += 1
                    self.rejections.append((position, reason, detail))
            outcome = (source, reason)
            if outcome not in outcomes:
                first_seen[outcome] = position
            outcomes[outcome] += n

    def _count_accepted(self, batch: Batch, positions: list[int]) -> None:
        """Run the plugins over the accepted CDRs of a batch, mark their windows for the rules,
        and compact the windows the data has left behind."""
        self.plugins.run_batch(batch, self.store, self._raise_alert, positions)
        self.thresholds.touch_batch(batch)
        self.traffic.touch_batch(batch)
        newest_epoch = int(batch.end_epoch.max())
        if newest_epoch > self._newest_epoch:
            self._newest_epoch = newest_epoch
            timestamp = window_of(newest_epoch)
            if timestamp > self._newest:
                self._newest = timestamp
                self.store.compact(timestamp - 2 * WINDOW)
                self.seen.freeze(timestamp - 2 * WINDOW)

    def pass_over(self) -> None:
        """One more document read elsewhere: the rules are checked every ``check_every``."""
        self.read += 1
        self._pending += 1
        if self._pending >= self.check_every:
            self.flush()

    def flush(self) -> None:
        """Check the threshold rules over what arrived since the last check, then resolve
        the alerts whose cause has gone.

        Runs every ``check_every`` documents read (see :meth:`pass_over`); a live service
        also calls it four times a second and a replay at its end, so that no crossing waits
        for more traffic.
        """
        self.count_waiting()
        self._pending = 0
        for rule, labels, value, samples, timestamp, decoded in self.thresholds.check(self.store):
            fields = {"rule": rule.name, "labels": labels, "value": value, "bound": rule.bound,
                      "samples": samples, "severity": rule.severity}
            self.alerts.raise_alert(rule.name, rule.describe(labels, value, samples),
                                    list(labels.values()), timestamp, decoded, fields)
        if not self.hold_resolution:
            now = self.clock() if self.live else self._newest_epoch
            self._check_traffic(window_of(int(now) - LATE))
            self.alerts.resolve(now, self._judge)

    def _check_traffic(self, complete: int) -> None:
        """Judge the windows before ``complete`` against their baselines (traffic rules)."""
        for rule, labels, timestamp, msg, fields in self.traffic.check(self.store, complete):
            self.alerts.raise_alert(rule.name, msg, list(labels.values()), timestamp, None, fields)

    def settle(self) -> None:
        """A replay's end: resolve the alert conditions as if data time had flowed, in order.

        The firing records are joined into conditions again in the order of their CDRs' end
        times; before each, the conditions gone by then resolve, judged on the final counts.
        So a replay's lifecycle depends on its data alone: not on where the rules happened to
        be checked, nor on how many processes counted it (see :mod:`sixminutes.parallel`).
        """
        if self._newest_epoch:  # every window but the last (it may have ended part way)
            self._check_traffic(window_of(int(self._newest_epoch)))
        lifecycle = self.alerts.lifecycle
        timed = [(_data_time(alert), alert) for alert in lifecycle.firing()]
        timed.sort(key=lambda pair: (pair[0], pair[1].timestamp, pair[1].seq))
        lifecycle.settle(timed, self._newest_epoch, self._judge)

    def _judge(self, condition: Condition, timestamp: int) -> bool | None:
        """Whether a window crosses a threshold condition's rule (None: a plugin's, or unknown)."""
        rule = condition.alerts[0].fields.get("rule") if condition.alerts else None
        if rule != condition.plugin:  # a plugin's alert (even with a field named rule)
            return None
        return self.thresholds.verdict(rule, condition.subject, timestamp, self.store)

    def _raise_alert(self, decoded: Decoded, timestamp: int, plugin: str, msg: str, key: Any,
                     fields: dict[str, Any]) -> None:
        self.alerts.raise_alert(plugin, msg, key, timestamp, decoded, fields)

    def purge(self) -> int | None:
        """Drop the windows (and their alerts and seen ids) past retention; return the cut-off."""
        self.count_waiting()
        oldest = self.retention.oldest_window()
        if oldest is not None:
            self.traffic.keep(self.store, oldest, self._newest)  # (their hourly history)
            self.store.purge(oldest)
            self.alerts.purge(oldest)
            self.thresholds.purge(oldest)
            self.seen.purge(oldest)
            self.seen_new = [(t, i) for t, i in self.seen_new if t >= oldest]
        return oldest

    def clear(self, before: int | None) -> list[int]:
        """DELETE /6minutes/data: drop the windows before ``before`` (all when None), and what
        was learned from them: the baselines' hourly history, the traffic rules' memory of
        those windows, what plugins remember (``forget_data``). Return the windows dropped.
        (The dedup memory stays: a CDR of a deleted window is not counted again.)"""
        self.count_waiting()
        dropped = self.store.purge(before)
        self.traffic.forget(before)
        forget_data(self.plugins, before)
        return dropped

    def restore(self, cells: Iterable[tuple[int, str, float, int, float, float, float]],
                alerts: Iterable[dict[str, Any]], seen: Iterable[tuple[int, Iterable[int]]],
                outcomes: dict[tuple[str, str], int],
                occupancy: Iterable[tuple[int, str, bytes]] = ()) -> None:
        """Load a saved state (before any document is fed)."""
        spans: set[tuple[int, str]] = set()  # (window, key) of the calls-in-progress Stats
        last = None
        for t, key, total, count, squares, low, high in cells:
            if t != last:  # (rows come window by window: each frozen once restored, so a
                self.store.compact(t)  # restart never holds the whole day in Cells)
                last = t
            self.store.merge(t, key, Stat(total, count, squares, low, high))
            self._newest = max(self._newest, t)
            self._newest_epoch = max(self._newest_epoch, t)
            if count == WINDOW and key.startswith("peak_concurrent{"):
                spans.add((t, key))
        for t, key, seconds in occupancy:
            self.store.occupancy.restore(t, key, seconds)
            spans.discard((t, key))
        self.store.occupancy.freeze({t for t, _ in spans})  # (saved without their seconds)
        self.store.compact()
        self.store.drain_changes()
        if self._newest:  # (the windows before were judged before the stop)
            self.traffic.judged = self._newest
        traffic = {rule.name for rule in self.traffic.rules}
        for record in alerts:
            alert = self.alerts.restore(record)
            if alert.fields.get("rule") == alert.plugin:
                self.thresholds.mark_fired(alert.fields["rule"], alert.timestamp, alert.key)
                if alert.plugin in traffic:  # (a window judged again does not raise it twice)
                    self.traffic.mark_fired(alert.plugin, alert.key, alert.timestamp)
        for t, digests in seen:  # per window, its ids' hashes, sorted (see dedup.py, state.py)
            self.seen.restore(t, digests)
        self.outcomes.update(outcomes)

    def share(self) -> Share:
        """What this engine counted, to be absorbed by another (see :mod:`sixminutes.parallel`)."""
        self.count_waiting()
        return share_of(self)

    def absorb(self, share: Share) -> None:
        """Add another engine's counts, alerts and plugin health to this one's (its alerts
        join this lifecycle; :meth:`settle` then resolves them over the whole store)."""
        absorb(self, share)

    def status(self) -> dict[str, Any]:
        """Counts and plugin health, for reports and the status endpoint."""
        self.count_waiting()
        return {
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "plugins": [p.status() for p in self.plugins.plugins],
            "plugin_load_errors": [str(e) for e in self.plugins.errors],
            "alerts": len(self.alerts),
        }
