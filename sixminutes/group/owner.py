"""The owner of a partition: counts its CDRs from the stream and writes its Stats to the bucket.

An instance that owns a partition reads it from the stream's first message on (the stream
keeps the retention, so a new owner rebuilds every window the last one had), counts each
message with an engine of its own, and every ``publish_seconds`` writes the windows that
changed, each with the stream position it holds every CDR up to, into the group's cells
bucket. A write only replaces a record that holds less (compare-and-set on the bucket's
revision): two owners for a moment (while the group re-balances) both count the same
messages the same way, and the view never goes back. Counting is exactly once because a
window's record is a function of the partition's messages up to its position.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Callable

import nats.errors
import nats.js.errors
from nats.js import api

from ..config import Config
from ..engine import Engine
from ..thresholds import Thresholds
from .partitions import Names, encode_outcomes, encode_window
from .view import View

__all__ = ["Owner"]

log = logging.getLogger("sixminutes.group")
BATCH = 1000
SOURCE_HEADER = "Sixminutes-Source"


class Owner:
    """Counts one partition; :meth:`run` until cancelled (the partition moved, or stop)."""

    def __init__(self, js: Any, cells: Any, names: Names, partition: int, config: Config,
                 view: View, revisions: dict[str, int], take: Callable[[str, bytes, int], None],
                 publish_seconds: float = 0.1) -> None:
        self.js, self.cells, self.names, self.partition = js, cells, names, partition
        # the rules run once, on the merged view; the POSTing instance already refused
        # what is too old or from the future, so the count depends on the messages only
        self.engine = Engine(dataclasses.replace(config, retention_hours=None, rules={}))
        self.engine.thresholds = Thresholds([])
        self.engine.check_every = 10**9
        self.engine.store.track_changes = True
        self.view, self.revisions, self.take = view, revisions, take
        self.publish_seconds = publish_seconds
        self.upto = 0
        """The stream position of the last message counted."""
        self.published = 0
        self._dirty: set[int] = set()
        self._all_written = False

    async def run(self) -> None:
        sub = await self.js.subscribe(self.names.subject(self.partition), stream=self.names.stream,
                                      ordered_consumer=True, deliver_policy=api.DeliverPolicy.ALL)
        writer = asyncio.create_task(self._write_forever())
        try:
            while True:
                try:
                    msgs = [await sub.next_msg(timeout=1.0)]
                except nats.errors.TimeoutError:
                    check_cancelled()
                    continue
                while len(msgs) < BATCH and sub.pending_msgs > 0:
                    msgs.append(await sub.next_msg(timeout=1.0))
                check_cancelled()  # (before counting: the partition may have moved away)
                self.count(msgs)
        finally:
            writer.cancel()
            try:
                await sub.unsubscribe()
            except Exception:  # the connection may be gone: the consumer goes when idle
                pass

    def count(self, msgs: list[Any]) -> None:
        """Count messages in stream order, a run of one source at a time."""
        start = 0
        for i in range(1, len(msgs) + 1):
            if i == len(msgs) or _source(msgs[i]) != _source(msgs[start]):
                self.engine.feed_batch([m.data for m in msgs[start:i]], _source(msgs[start]))
                start = i
        self.upto = msgs[-1].metadata.sequence.stream
        self._dirty.update(self.engine.store.drain_changes())

    async def _write_forever(self) -> None:
        while True:
            check_cancelled()
            await asyncio.sleep(self.publish_seconds)
            try:
                await self.write()
            except Exception:  # the cluster may be electing a leader: the next round retries
                log.warning("partition %d: writing its Stats failed", self.partition, exc_info=True)

    async def write(self) -> None:
        """Write the changed windows (all of them, the first time this owner is ahead of the
        bucket) and the outcome counts, when this owner holds at least what the bucket has."""
        if self.upto == 0 or self.upto < self.view.upto.get(self.partition, 0):
            return  # still rebuilding: the last owner's records hold more
        if not self._all_written:
            windows = set(self.engine.store.windows())
        else:
            windows = self._dirty
        self._dirty = set()
        p, upto = self.partition, self.upto
        # every record of this round is encoded before the first wait, so that each holds
        # exactly the messages up to ``upto`` (the reader counts more while we wait)
        busy = self.engine.store.occupancy.windows
        records = [(f"c.{p}.{t}", encode_window(upto, *cells.rows_table(), busy.get(t)),
                    self.view.held(p, t))
                   for t in sorted(windows) if (cells := self.engine.store.peek(t)) is not None]
        records.append((f"o.{p}", encode_outcomes(upto, dict(self.engine.outcomes)),
                        lambda: self.view.outcomes.get(p, (0,))[0]))
        try:
            for key, value, held in records:  # the outcomes last: they say the round is whole
                await self._put(key, value, upto, held)
        except BaseException:
            self._dirty |= windows  # written again next round
            raise
        self._all_written = True
        self.published = upto

    async def _put(self, key: str, value: bytes, upto: int, held: Callable[[], int]) -> None:
        """Compare-and-set: replace only the revision this instance has seen, and only when
        the record seen holds no more than ``upto``, the position this record holds (checked
        here, with no wait between the check and the request: the watcher may have brought a
        newer record meanwhile). Never ``self.upto``: the reader counts on while a round
        waits, so a record seen after the round began may hold more than the round's records
        and less than the reader."""
        if held() > upto:
            return
        try:
            revision = await self.cells.update(key, value, last=self.revisions.get(key, 0))
            self.take(key, value, revision)  # the view holds what its revision says, always
        except nats.js.errors.KeyWrongLastSequenceError:
            # another owner wrote it: the view takes theirs (write() then waits while they
            # hold more), and the next round compares with their revision
            entry = await self.cells.get(key)
            self.take(key, entry.value, entry.revision)
            raise

    def purge(self, before: int) -> None:
        """Drop the windows past retention."""
        self.engine.store.purge(before)
        self.engine.seen.purge(before)


def check_cancelled() -> None:
    """Raise CancelledError when this task was cancelled. nats-py waits with asyncio.wait_for,
    which in Python 3.11 returns a result that came at the moment of the cancellation and
    drops the cancellation: a loop around it would run on, and whoever awaits it, forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _source(msg: Any) -> str:
    return (msg.headers or {}).get(SOURCE_HEADER, "http")
