"""One instance's membership of a group: the connection, the stream, the buckets, the owners.

Each instance writes a heartbeat to the members bucket (its records expire after
``MEMBER_TTL`` seconds), reads the live members every second, and runs an :class:`Owner`
for each partition :func:`assign` deals it; when a member joins or dies the partitions
are dealt again, the same way on every instance. A watcher of the cells bucket feeds
the :class:`View`, which the service merges into its store.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import Counter
from typing import Any, Callable

import nats
import nats.errors
import nats.js.errors
from nats.js import api

from ..config import Config
from ..engine import Engine
from . import GroupUnavailable
from .owner import SOURCE_HEADER, Owner, check_cancelled
from .partitions import (PARTITIONS, Names, admission, assign, decode_outcomes, decode_window,
                         partition_of)
from .view import View

__all__ = ["Group"]

log = logging.getLogger("sixminutes.group")
MEMBER_TTL = 5.0
"""Seconds after its last heartbeat that a member counts as gone and its partitions move."""
DUPLICATE_WINDOW = 600.0
"""Seconds JetStream remembers a message id: a CDR POSTed again within them is stored once
(later copies reach the same partition's owner, whose engine finds the duplicate)."""
PUBLISH_TIMEOUT = 5.0


class Group:
    """Joins the group named in the config; :meth:`start`, then :meth:`publish` and the view."""

    def __init__(self, config: Config, instance: str | None = None) -> None:
        self.config = config
        self.names = Names(config.group)
        self.instance = instance or _instance_name(config.port)
        self.view = View()
        self.revisions: dict[str, int] = {}
        self.outcome_changes: Counter[tuple[str, str]] = Counter()
        self.owners: dict[int, Owner] = {}
        self._owning: dict[int, asyncio.Task] = {}
        self.members: list[str] = []
        self.synced = False
        """Set once the watcher has read every record the bucket held when it started."""
        self.damaged = 0
        self.changed: Callable[[], None] = lambda: None
        """Called when a record changed the view (the service then shows it promptly)."""
        self.published = self.duplicates = 0
        self.nc: Any = None
        self.joined = False
        self.join_error: str | None = None
        self.replicas = 0
        self._queue: list[tuple[str, bytes, str, asyncio.Future]] = []
        self._queued = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Join in the background: the service answers at once (503 to POSTs until the
        stream and buckets are reached), and a cluster that is down is waited for."""
        self._tasks = [asyncio.create_task(self._join(), name="group join")]

    async def _join(self) -> None:
        while True:
            try:
                if self.nc is None:
                    self.nc = await nats.connect(
                        servers=self.config.nats, name=f"sixminutes {self.instance}",
                        max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=2,
                        allow_reconnect=True, error_cb=self._error,
                        disconnected_cb=self._disconnected, reconnected_cb=self._reconnected)
                    self.js = self.nc.jetstream(timeout=PUBLISH_TIMEOUT)
                await self._stream()
                hours = self.config.retention_hours or 24.0
                self.member_kv = await self._bucket(self.names.members, MEMBER_TTL)
                self.cells = await self._bucket(self.names.cells, hours * 3600 + 3600)
                await self._heartbeat()
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:  # no server yet, or a leader being elected
                self.join_error = repr(error)
                log.warning("group %s: cannot join yet: %r; trying again", self.names.group, error)
                await asyncio.sleep(1)
        self.joined, self.join_error = True, None
        log.info("group %s joined as %s (stream replicas %d)", self.names.group, self.instance,
                 self.replicas)
        self._tasks += [asyncio.create_task(self._watch(), name="group view"),
                        asyncio.create_task(self._writer(), name="group writer"),
                        asyncio.create_task(self._membership(), name="group members")]

    async def _error(self, error: Exception) -> None:
        log.warning("NATS: %r", error)  # (one line: the client retries on its own)

    async def _disconnected(self) -> None:
        log.warning("NATS: disconnected; reconnecting")

    async def _reconnected(self) -> None:
        log.info("NATS: reconnected to %s", self.nc.connected_url.netloc if self.nc else "?")

    async def _stream(self) -> None:
        """Create the stream when absent: replicas min(3, cluster), retention + 1 h, dedup."""
        hours = self.config.retention_hours or 24.0
        try:  # (made by another member: used as it is)
            info = await self.js.stream_info(self.names.stream)
            self.replicas = info.config.num_replicas or 1
            return
        except nats.js.errors.NotFoundError:
            pass
        last: Exception | None = None
        for replicas in (3, 2, 1):
            try:
                info = await self.js.add_stream(
                    name=self.names.stream, subjects=[self.names.subjects],
                    num_replicas=replicas, max_age=hours * 3600 + 3600,
                    duplicate_window=DUPLICATE_WINDOW, storage=api.StorageType.FILE)
                self.replicas = info.config.num_replicas or replicas
                return
            except nats.js.errors.BadRequestError as error:
                if error.err_code == 10058:  # it exists (another instance made it): use it
                    info = await self.js.stream_info(self.names.stream)
                    self.replicas = info.config.num_replicas or 1
                    return
                last = error  # more replicas than the cluster has servers: fewer
        raise GroupUnavailable(f"cannot create the stream {self.names.stream}: {last}")

    async def _bucket(self, name: str, ttl: float) -> Any:
        """A key-value bucket of the group, made when absent (as many replicas as the stream)."""
        try:
            return await self.js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            return await self.js.create_key_value(bucket=name, ttl=ttl, history=1,
                                                  replicas=self.replicas)

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._owning.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.owners, self._owning = {}, {}
        if self.joined:
            try:
                await self.member_kv.delete(self.instance)  # the others take over at once
            except Exception:
                pass
        if self.nc is not None:
            await self.nc.close()

    # -- the durable log ----------------------------------------------------------------

    async def ingest(self, engine: Engine, body: bytes, source: str) -> str | None:
        """Store a POSTed CDR in the stream: None once JetStream has it, "duplicate" when
        it had it already, or the reason it cannot count (counted in ``engine``);
        GroupUnavailable when JetStream did not answer in time."""
        reason, cdr_id = admission(engine, body, source)
        if reason is not None:
            return reason
        if not self.joined:
            raise GroupUnavailable(f"not joined to the group yet: {self.join_error}")
        future = asyncio.get_running_loop().create_future()
        self._queue.append((source, body, cdr_id, future))
        self._queued.set()
        duplicate = await future
        if duplicate:
            engine.outcomes[(source, "duplicate")] += 1
        return "duplicate" if duplicate else None

    async def ingest_many(self, engine: Engine, items: list[bytes], source: str
                          ) -> list[str | None]:
        """Store the rows of a feed in the stream, in one round trip: each one's outcome as
        :meth:`ingest` says it (a feed saves its position once this returns)."""
        reasons: list[str | None] = []
        admitted: list[tuple[int, tuple[str, bytes, str]]] = []
        for item in items:
            reason, cdr_id = admission(engine, item, source)
            if reason is None:
                admitted.append((len(reasons), (source, item, cdr_id)))
            reasons.append(reason)
        if admitted:
            duplicates = await self.publish([item for _, item in admitted])
            for (i, _), duplicate in zip(admitted, duplicates):
                if duplicate:
                    reasons[i] = "duplicate"
                    engine.outcomes[(source, "duplicate")] += 1
        return reasons

    async def _writer(self) -> None:
        """Group commit: every body waiting is published together, one round trip."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                duplicates = await self.publish([(s, b, i) for s, b, i, _ in batch])
            except Exception as error:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for duplicate, (*_, future) in zip(duplicates, batch):
                if not future.done():
                    future.set_result(duplicate)

    async def publish(self, items: list[tuple[str, bytes, str]]) -> list[bool]:
        """Store (source, body, id) items in the stream, pipelined: one round trip for the
        lot. Each answer says whether JetStream already held that id (a duplicate)."""
        if not self.joined:
            raise GroupUnavailable(f"not joined to the group yet: {self.join_error}")
        futures = []
        try:
            for source, body, cdr_id in items:
                futures.append(await self.js.publish_async(
                    self.names.subject(partition_of(cdr_id)), body,
                    headers={"Nats-Msg-Id": cdr_id, SOURCE_HEADER: source},
                    wait_stall=PUBLISH_TIMEOUT))
            acks = await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_TIMEOUT)
        except (asyncio.TimeoutError, nats.errors.Error) as error:
            for future in futures:
                future.cancel()
            raise GroupUnavailable(f"JetStream did not store the batch: {error!r}") from None
        duplicates = [bool(ack.duplicate) for ack in acks]
        self.published += len(acks)
        self.duplicates += sum(duplicates)
        return duplicates

    # -- members and owners -------------------------------------------------------------

    async def _heartbeat(self) -> None:
        await self.member_kv.put(self.instance, self.config.public_url.encode()
                                 if self.config.public_url else b"")

    async def _membership(self) -> None:
        while True:
            check_cancelled()
            try:
                await self._heartbeat()
                try:
                    members = await self.member_kv.keys()
                except nats.js.errors.NoKeysError:
                    members = []
                self.members = sorted(set(members) | {self.instance})
                self._deal(assign(self.members, PARTITIONS)[self.instance])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # cut off from the cluster: the others take over
                log.warning("group membership: %r", error)
            await asyncio.sleep(MEMBER_TTL / 5)

    def _deal(self, mine: list[int]) -> None:
        for p in [p for p in self._owning if p not in mine]:
            self._owning.pop(p).cancel()
            self.owners.pop(p, None)
            log.info("partition %d moved away from %s", p, self.instance)
        for p in mine:
            if p not in self._owning:
                self._owning[p] = asyncio.create_task(self._own(p), name=f"partition {p}")
                log.info("partition %d owned by %s", p, self.instance)

    async def _own(self, partition: int) -> None:
        """Count a partition until it moves away; after an error, from the start again."""
        while True:
            owner = self.owners[partition] = Owner(
                self.js, self.cells, self.names, partition, self.config, self.view,
                self.revisions, self.take)
            try:
                await owner.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a node gone, say
                log.warning("partition %d: %r; reading it again", partition, error)
                await asyncio.sleep(1)

    # -- the view -----------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            try:
                watcher = await self.cells.watchall()
                async for entry in watcher:  # (no timeout: see owner.check_cancelled)
                    check_cancelled()
                    if entry is None:
                        self.synced = True
                    elif entry.operation is None and entry.value:
                        self.take(entry.key, entry.value, entry.revision)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("group view: %r; watching again", error)
                await asyncio.sleep(1)

    def show(self, engine: Engine) -> None:
        """Merge what the bucket brought since the last call into ``engine``'s store and
        outcome counts, and mark the changed series for its rules."""
        for t in self.view.apply(engine.store):
            cells = engine.store.peek(t)
            if cells is not None:
                engine.thresholds.touch_keys(t, list(cells.changed))
        engine.outcomes.update(self.outcome_changes)
        self.outcome_changes.clear()

    def take(self, key: str, value: bytes, revision: int) -> None:
        """A record of the cells bucket into the view (from the watcher, or read back)."""
        self.revisions[key] = max(self.revisions.get(key, 0), revision)
        try:
            kind, _, rest = key.partition(".")
            if kind == "c":
                partition, _, window = rest.partition(".")
                upto, keys, table, seconds = decode_window(value)
                if self.view.put(int(partition), int(window), upto, keys, table, seconds):
                    self.changed()
            elif kind == "o":
                upto, outcomes = decode_outcomes(value)
                change = self.view.put_outcomes(int(rest), upto, outcomes)
                if change:
                    self.outcome_changes.update(change)
        except ValueError as error:
            self.damaged += 1
            log.warning("group view: record %s: %s", key, error)

    def leads(self) -> bool:
        """Whether this instance notifies for the group: the first live member, by name."""
        return bool(self.members) and self.members[0] == self.instance

    def purge(self, before: int) -> None:
        self.view.purge(before)
        for owner in self.owners.values():
            owner.purge(before)

    def status(self) -> dict[str, Any]:
        return {"name": "nats", "group": self.config.group, "instance": self.instance,
                "connected": bool(self.nc and self.nc.is_connected),
                "state": ("joining" if not self.joined else
                          "member" if self.nc and self.nc.is_connected else "cut off"),
                "last_error": self.join_error,
                "members": self.members, "leads": self.leads(),
                "partitions": sorted(self.owners),
                "replicas": self.replicas, "synced": self.synced,
                "published": self.published, "duplicates": self.duplicates,
                "damaged_records": self.damaged,
                "position": {p: o.upto for p, o in sorted(self.owners.items())}}


def _instance_name(port: int) -> str:
    """Unique per process: a restarted instance is a new member (its partitions were dealt)."""
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())
    return f"{host}_{port}_{os.getpid()}_{secrets.token_hex(2)}"
