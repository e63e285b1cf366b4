"""Batches of what has arrived from a live source: in order, none lost, errors after the items."""
from __future__ import annotations

import asyncio

import pytest

from sixminutes.sources.batching import ready_batches


async def collect(items, limit: int = 100) -> list[list[int]]:
    return [batch async for batch in ready_batches(items, limit)]


async def burst(n: int):
    for i in range(n):  # all there at once: a catch-up
        yield i


def test_items_that_are_waiting_come_together_in_order_within_the_limit():
    batches = asyncio.run(collect(burst(250), limit=100))
    assert [i for b in batches for i in b] == list(range(250))
    assert all(0 < len(b) <= 100 for b in batches) and len(batches) < 250


def test_a_quiet_feed_hands_over_each_item_as_it_comes():
    async def main() -> list[list[int]]:
        arrive = asyncio.Queue()

        async def feed():
            for _ in range(3):
                yield await arrive.get()

        got = []
        batches = ready_batches(feed(), 100)
        for i in range(3):
            arrive.put_nowait(i)
            got.append(await anext(batches))  # without waiting for a next item
        await batches.aclose()
        return got

    assert asyncio.run(main()) == [[0], [1], [2]]


def test_an_error_comes_after_the_items_read_before_it():
    async def failing():
        yield 1
        yield 2
        raise OSError("the feed broke")

    async def main() -> list[int]:
        got = []
        with pytest.raises(OSError, match="the feed broke"):
            async for batch in ready_batches(failing(), 100):
                got += batch
        return got

    assert asyncio.run(main()) == [1, 2]


def test_closing_the_batches_closes_the_source():
    closed = []

    async def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
                await asyncio.sleep(0)
        finally:
            closed.append(True)

    async def main() -> None:
        batches = ready_batches(endless(), 10, buffer=20)
        assert (await anext(batches))[0] == 0
        await batches.aclose()

    asyncio.run(main())
    assert closed == [True]
