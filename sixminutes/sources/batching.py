"""Batches from a live source: whatever has arrived, counted together.

A CouchDB feed hands over one row at a time, each in its own chunk of the HTTP stream. Counted
one by one, every row would pay the engine's cost per batch. Here a reader task takes the rows
as they come, and the consumer takes everything waiting at once: one row when the feed is
quiet (no added latency), hundreds at a time when it catches up.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, TypeVar

__all__ = ["ready_batches"]

T = TypeVar("T")


async def ready_batches(items: AsyncIterator[T], limit: int, buffer: int = 10_000
                        ) -> AsyncIterator[list[T]]:
    """The items of ``items`` in lists of those already waiting (at most ``limit`` a list),
    in order. The reader runs ahead by up to ``buffer`` items: a consumer that must not lose
    them on a failure has to know which ones it counted. An error of ``items`` comes out
    after the items read before it."""
    queue: asyncio.Queue[T] = asyncio.Queue(buffer)

    async def read() -> None:
        async with contextlib.aclosing(items):  # type: ignore[type-var]
            async for item in items:
                await queue.put(item)

    reader = asyncio.create_task(read())
    try:
        while True:
            batch: list[T] = []
            if queue.empty():  # wait for the next item, or for the reader to end
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                getter.cancel()  # (a no-op when it has its item: it is kept below)
                try:
                    batch.append(await getter)
                except asyncio.CancelledError:
                    if queue.empty():  # the reader has ended: with an error, or the feed did
                        reader.result()
                        return
            while len(batch) < limit and not queue.empty():
                batch.append(queue.get_nowait())
            yield batch
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
