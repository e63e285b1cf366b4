"""Members of a group in one process, on a real NATS cluster: hand-overs never send the view back.

Two :class:`Group` members share the partitions; the second joins while the first counts,
then the first dies without a word (its tasks cancelled, its heartbeat left to expire). Every
record written to the cells bucket is watched: per key, its stream position never goes
down, and at the end the merged view equals one engine counting every CDR."""
from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from helpers import raw
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.group.cluster import Group
from sixminutes.group.partitions import decode_outcomes, decode_window
from sixminutes.store import Store

_groups = itertools.count()


async def _wait(check, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _records(group: Group, seen: dict[str, list[int]], stop: asyncio.Event) -> None:
    """Every record the bucket holds or gets: key → the positions, in the order written."""
    watcher = await group.cells.watchall()
    while not stop.is_set():
        try:
            entry = await watcher.updates(timeout=0.2)
        except Exception:
            continue
        if entry is not None and entry.value:
            decode = decode_window if entry.key.startswith("c.") else decode_outcomes
            seen.setdefault(entry.key, []).append(decode(entry.value)[0])
    await watcher.stop()


def test_hand_overs_never_send_a_record_back_and_the_view_ends_exact(nats_cluster) -> None:
    now = int(time.time())
    docs = [raw(uuid=f"u-{i}", ccnq_profile=f"p{i % 7}", end_epoch=now - 60 * (i % 40),
                billsec=i % 90) for i in range(1200)]
    config = Config(nats=nats_cluster.urls, group=f"unit{next(_groups)}", retention_hours=None)

    async def scenario() -> Store:
        engine = Engine(config)
        first, second = Group(config, "a-first"), Group(config, "b-second")
        await first.start()
        await _wait(lambda: first.joined and len(first.owners) == 16, 30, "the first member")
        seen: dict[str, list[int]] = {}
        stop = asyncio.Event()
        watching = asyncio.create_task(_records(first, seen, stop))
        for start in range(0, 600, 100):
            assert await first.ingest_many(engine, docs[start:start + 100], "http") == [None] * 100
        await second.start()  # joins while the first counts: the partitions are dealt again
        await _wait(lambda: second.joined, 30, "the second member to join")
        for start in range(600, 1000, 100):
            await second.ingest_many(engine, docs[start:start + 100], "http")
        await _wait(lambda: len(second.owners) == 8, 10, "8 partitions each")
        for task in [*first._tasks, *first._owning.values()]:  # dies: no word to the others
            task.cancel()
        await _wait(lambda: len(second.owners) == 16, 20, "the survivor to own everything")
        for start in range(1000, 1200, 100):
            await second.ingest_many(engine, docs[start:start + 100], "http")
        await _wait(lambda: second.view.upto and sum(
            n for _, counts in second.view.outcomes.values() for n in counts.values()) == 1200,
            30, "every CDR in the view")
        store = Store()
        second.view.apply(store)
        stop.set()
        await watching
        for key, positions in seen.items():
            assert positions == sorted(positions), f"{key} went back: {positions}"
        await second.stop()
        await first.nc.close()
        return store

    store = asyncio.run(scenario())
    whole = Engine(Config(retention_hours=None))
    whole.feed_batch(docs)
    assert store.to_json() == whole.store.to_json()


async def _alone(config: Config) -> Group:
    """A member joined alone whose owners and tasks are stopped: the test plays them."""
    group = Group(config, "solo")
    await group.start()
    await _wait(lambda: group.joined, 30, "joining")
    for task in [*group._owning.values(), *group._tasks]:
        task.cancel()
    await asyncio.gather(*group._owning.values(), *group._tasks, return_exceptions=True)
    return group


def test_an_owner_behind_the_bucket_writes_nothing_and_a_stale_revision_is_refused(nats_cluster) -> None:
    import nats.js.errors

    from sixminutes.group.owner import Owner
    from sixminutes.group.partitions import encode_window

    now = int(time.time())
    config = Config(nats=nats_cluster.urls, group=f"unit{next(_groups)}", retention_hours=None)

    async def scenario() -> None:
        group = await _alone(config)  # (what the view sees and who owns: the test's own)
        window = (now - 10) - (now - 10) % 360  # the window of the CDR below
        ahead = encode_window(50, ["calls"], [[9.0, 9, 9, 1, 1]])
        group.revisions[f"c.3.{window}"] = await group.cells.put(f"c.3.{window}", ahead)
        group.take(f"c.3.{window}", ahead, group.revisions[f"c.3.{window}"])
        owner = Owner(group.js, group.cells, group.names, 3, config, group.view, group.revisions,
                      group.take)
        owner.engine.feed_batch([raw(uuid="x", end_epoch=now - 10)])
        owner.upto = 20  # behind the bucket's 50: still rebuilding
        owner._dirty = {window}
        await owner.write()
        assert decode_window((await group.cells.get(f"c.3.{window}")).value)[0] == 50
        # another owner writes 55, which this one has not seen: its write over 50 is refused
        await group.cells.put(f"c.3.{window}", encode_window(55, ["calls"], [[9.0, 9, 9, 1, 1]]))
        owner.upto = 60
        with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
            await owner.write()
        assert decode_window((await group.cells.get(f"c.3.{window}")).value)[0] == 55
        assert group.view.upto[3] == 55  # what it read back is in the view
        await owner.write()  # the revision it read back: written
        upto, keys, _, _ = decode_window((await group.cells.get(f"c.3.{window}")).value)
        assert (upto, keys) == (60, owner.engine.store.peek(window).rows_table()[0])
        await group.stop()

    asyncio.run(scenario())


class _Paused:
    """The real cells bucket, with the first update of a window record held until released:
    an owner slow at that await (as on a busy machine), while the group goes on around it."""

    def __init__(self, cells) -> None:
        self.cells, self.entered, self.release = cells, asyncio.Event(), asyncio.Event()

    async def update(self, key: str, value: bytes, last: int) -> int:
        if key.startswith("c.") and not self.entered.is_set():
            self.entered.set()
            await self.release.wait()
        return await self.cells.update(key, value, last=last)

    async def get(self, key: str):
        return await self.cells.get(key)


def test_a_round_written_while_the_reader_moved_on_never_replaces_a_newer_record(nats_cluster) -> None:
    """A round's records hold the position the round began at; while its first write waits,
    another owner writes a newer record (seen by this member) and this owner's reader counts
    past it. The round's older record must not replace the newer one."""
    from sixminutes.group.owner import Owner
    from sixminutes.group.partitions import encode_outcomes

    now = int(time.time())
    config = Config(nats=nats_cluster.urls, group=f"unit{next(_groups)}", retention_hours=None)

    async def scenario() -> None:
        group = await _alone(config)  # (the test plays the others)
        cells = _Paused(group.cells)
        owner = Owner(group.js, cells, group.names, 3, config, group.view, group.revisions,
                      group.take)
        owner.engine.feed_batch([raw(uuid="x", end_epoch=now - 10)])
        owner.upto = 20
        writing = asyncio.create_task(owner.write())  # a round at 20: c.3.<window>, then o.3
        await asyncio.wait_for(cells.entered.wait(), 10)
        # meanwhile another owner of the partition writes its outcomes at 30, and this
        # member's watcher brings them into the view
        newer = encode_outcomes(30, {("http", "accepted"): 2})
        group.take("o.3", newer, await group.cells.put("o.3", newer))
        owner.upto = 40  # and this owner's reader counted on past 30
        cells.release.set()
        await asyncio.wait_for(writing, 10)
        assert decode_outcomes((await group.cells.get("o.3")).value)[0] == 30
        window = (now - 10) - (now - 10) % 360
        assert decode_window((await group.cells.get(f"c.3.{window}")).value)[0] == 20
        await group.stop()

    asyncio.run(scenario())
