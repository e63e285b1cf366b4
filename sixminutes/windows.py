"""The 6-minute window of a call, and the clock that decides what is too old or too new.

A call belongs to the window of its end time: ``end_epoch - end_epoch % 360``. The
clock is injected so that tests and replays never depend on the wall clock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

WINDOW = 360
"""Seconds in a window (a deci-hour)."""

FUTURE_TOLERANCE = 3600
"""A CDR ending further than this in the future comes from a broken clock."""

Clock = Callable[[], float]


def window_of(epoch: int) -> int:
    """The start of the 6-minute window holding ``epoch`` (seconds, UTC)."""
    return epoch - epoch % WINDOW


@dataclass(frozen=True, slots=True)
class Retention:
    """How long windows are kept; ``hours=None`` keeps everything (file replay)."""

    hours: float | None = 24.0
    clock: Clock = time.time

    def oldest_window(self) -> int | None:
        """The oldest window still kept (the one holding the cut-off), or None when nothing expires."""
        if self.hours is None:
            return None
        return window_of(int(self.clock() - self.hours * 3600))

    def newest_epoch(self) -> float:
        """End times after this are rejected as ``future``."""
        return self.clock() + FUTURE_TOLERANCE
