"""How late the event loop runs what is due: the stalls a POST or an SSE client waits through.

Everything the service does between two awaits (counting a batch, checking the rules,
gathering a snapshot's cells) holds up every request. :class:`LoopLag` asks to be woken
every ``every`` seconds and records how much later than asked it ran: the loop's stall.
/metrics exports the worst one since the last scrape and a histogram of them all, so
a stall that recurs (a snapshot every few seconds, say) shows however short the scrape.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable

__all__ = ["LoopLag", "BUCKETS"]

BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
"""Upper bounds (seconds) of the lag histogram's buckets; +Inf is added after them."""


class LoopLag:
    """The event loop's lag, measured by a task that sleeps ``every`` seconds at a time."""

    def __init__(self, every: float = 0.05, clock: Callable[[], float] = time.perf_counter) -> None:
        self.every = every
        self.clock = clock
        self.buckets = [0] * (len(BUCKETS) + 1)
        """Wake-ups per lag bucket (the last one: beyond every bound)."""
        self.count = 0
        self.total = 0.0
        self.worst = 0.0
        """The longest lag since :meth:`take_worst` was last called."""
        self.worst_ever = 0.0

    def record(self, lag: float) -> None:
        """Count one wake-up that came ``lag`` seconds after it was due."""
        lag = max(lag, 0.0)
        self.count += 1
        self.total += lag
        self.worst = max(self.worst, lag)
        self.worst_ever = max(self.worst_ever, lag)
        for i, bound in enumerate(BUCKETS):
            if lag <= bound:
                self.buckets[i] += 1
                return
        self.buckets[-1] += 1

    def take_worst(self) -> float:
        """The longest lag since the last call (a scrape), and start again."""
        worst, self.worst = self.worst, 0.0
        return worst

    def cumulative(self) -> list[tuple[str, int]]:
        """The histogram as Prometheus buckets: (upper bound, wake-ups at most that late)."""
        out, running = [], 0
        for bound, n in zip([*map(str, BUCKETS), "+Inf"], self.buckets):
            running += n
            out.append((bound, running))
        return out

    async def run(self) -> None:
        """Measure until cancelled."""
        while True:
            due = self.clock() + self.every
            await asyncio.sleep(self.every)
            self.record(self.clock() - due)
