"""The service's group commit and its journal's segments, in-process on a real state file."""
from __future__ import annotations

import asyncio
import os

from helpers import END, raw
from sixminutes.config import Config
from sixminutes.service import Service


def test_a_snapshot_unlinks_the_segments_it_covers_and_a_restart_counts_nothing_twice(tmp_path):
    state = str(tmp_path / "s.sqlite")
    directory = state + ".journal"

    async def first() -> tuple[list[str], list[str]]:
        svc = Service(Config(token="t", state=state), clock=lambda: END + 60.0)
        await svc.start()
        svc.journal.segment_bytes = 150  # (a segment every few CDRs)
        try:
            reasons = await asyncio.gather(*(svc.ingest(raw(uuid=f"u-{n}")) for n in range(4)))
            for n in range(4, 12):
                reasons.append(await svc.ingest(raw(uuid=f"u-{n}")))
            assert reasons == [None] * 12 and svc.engine.accepted == 12
            before = sorted(os.listdir(directory))
            await svc.snapshot()
            return before, sorted(os.listdir(directory))
        finally:
            await svc.stop()

    before, after = asyncio.run(first())
    assert len(before) > 2 and after == before[-1:]  # only the one being written is left

    async def again() -> int:
        svc = Service(Config(token="t", state=state), clock=lambda: END + 60.0)
        await svc.start()
        try:
            return svc.engine.accepted
        finally:
            await svc.stop()
    assert asyncio.run(again()) == 12


def test_posts_that_come_within_a_few_rounds_of_the_loop_share_one_group_commit(tmp_path):
    async def main() -> tuple[list[int], list[str | None]]:
        svc = Service(Config(token="t", state=str(tmp_path / "s.sqlite")), clock=lambda: END + 60.0)
        await svc.start()
        groups: list[int] = []
        append = svc.journal.append

        def counted_append(rows: list[tuple[str, bytes]], now: float | None = None) -> list[int]:
            groups.append(len(rows))
            return append(rows, now)
        svc.journal.append = counted_append  # type: ignore[method-assign]

        async def later(uuid: str, rounds: int) -> str | None:
            for _ in range(rounds):  # (its bytes still on their way, as it were)
                await asyncio.sleep(0)
            return await svc.ingest(raw(uuid=uuid))
        try:
            reasons = await asyncio.gather(later("a", 0), later("b", 2), later("c", 3))
            reasons.append(await svc.ingest(raw(uuid="d")))  # alone: nothing else on its way
            return groups, reasons
        finally:
            await svc.stop()
    groups, reasons = asyncio.run(main())
    assert reasons == [None] * 4
    assert groups == [3, 1]
