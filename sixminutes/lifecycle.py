"""Alert lifecycle: an alert fires, then resolves once its cause has gone for a complete window.

Alert records are per window (the seed's dedup is per (plugin, key or msg, window)), but what
an operator follows is a *condition*: the same rule on the same labels, or the same plugin
alert subject, across consecutive windows. All the records of a condition share its
``starts_at`` (the start of its first window) and resolve together, with ``ends_at`` set to
the end of the last window that raised one:

* a threshold condition resolves as ``recovered`` after ``clear_windows`` consecutive complete
  windows that have the rule's minimum samples and a measure within its bound (hysteresis: one
  clean window between two bad ones does not end the incident); a window whose measure is
  still beyond the bound keeps it open; a window with too few samples says nothing, so the
  condition then resolves as ``quiet`` after ``quiet_windows`` windows;
* a plugin condition resolves as ``quiet`` after ``quiet_windows`` complete windows without
  the plugin raising it again.

A window is complete when the lifecycle clock (the wall clock in the service, the newest
CDR's end in a replay) has passed its end by ``grace`` seconds, for late CDRs.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .windows import WINDOW

if TYPE_CHECKING:
    from .alerts import Alert

__all__ = ["Condition", "Lifecycle", "FIRING", "RESOLVED"]

FIRING = "firing"
RESOLVED = "resolved"

Judge = Callable[["Condition", int], "bool | None"]
"""(condition, window) → True when the window crosses the condition's rule, False when it has
enough samples and does not, None when it cannot say (no rule, or too few samples)."""


@dataclass
class Condition:
    """One (plugin or rule, subject) that keeps firing across windows."""

    plugin: str
    subject: Any
    first: int
    last: int
    alerts: list[Alert] = field(default_factory=list)
    due: float = 0.0
    """When it was last judged unresolved: the moment that can next change (see settle)."""


class Lifecycle:
    """The firing conditions, and the rule that resolves them."""

    def __init__(self, quiet_windows: int = 2, grace: float = 30.0, clear_windows: int = 1) -> None:
        if quiet_windows < 1 or clear_windows < 1:
            raise ValueError("quiet_windows and clear_windows must be at least 1")
        self.quiet_windows = quiet_windows
        self.clear_windows = clear_windows
        self.grace = grace
        self.open: dict[tuple[str, Any], Condition] = {}

    def fired(self, alert: Alert) -> None:
        """A new alert record: it joins its condition (opened if needed) and fires."""
        alert.state, alert.ends_at, alert.resolution = FIRING, None, None
        self.join(alert)

    def join(self, alert: Alert) -> None:
        """Put a firing record (new, or restored after a restart) in its condition."""
        key = (alert.plugin, alert.subject)
        condition = self.open.get(key)
        if condition is None:
            condition = self.open[key] = Condition(alert.plugin, alert.subject,
                                                   alert.timestamp, alert.timestamp)
        condition.alerts.append(alert)
        if alert.timestamp < condition.first:  # a late record of an earlier window
            condition.first = alert.timestamp
            for other in condition.alerts:
                other.starts_at = condition.first
        condition.last = max(condition.last, alert.timestamp)
        alert.starts_at = condition.first

    def resolve(self, now: float, judge: Judge) -> list[Alert]:
        """Resolve the conditions whose cause has gone by ``now``; return their alerts."""
        resolved = []
        for key, condition in list(self.open.items()):
            reason = self._reason(condition, now, judge)
            if reason is not None:
                resolved += self._close(key, condition, reason)
        return resolved

    def settle(self, alerts: list[tuple[float, Alert]], end: float, judge: Judge) -> None:
        """Build the conditions again from firing alerts given in data time order, as
        (time, alert), resolving each at the first of those times it can (a replay's end).

        The counts no longer change, so a condition judged unresolved needs no new look
        before its ``due`` moment: a heap of those keeps this near linear in the alerts.
        """
        self.open = {}
        heap: list[tuple[float, int, tuple[str, Any]]] = []
        order = itertools.count()

        def resolve_due(now: float) -> None:
            while heap and heap[0][0] <= now:
                key = heapq.heappop(heap)[2]
                condition = self.open.get(key)
                if condition is None:
                    continue
                reason = self._reason(condition, now, judge)
                if reason is None:
                    heapq.heappush(heap, (condition.due, next(order), key))
                else:
                    self._close(key, condition, reason)

        for now, alert in alerts:
            resolve_due(now)
            self.join(alert)
            condition = self.open[(alert.plugin, alert.subject)]
            heapq.heappush(heap, (condition.last + 2 * WINDOW + self.grace, next(order),
                                  (alert.plugin, alert.subject)))
        resolve_due(end)

    def _close(self, key: tuple[str, Any], condition: Condition, reason: str) -> list[Alert]:
        del self.open[key]
        for alert in condition.alerts:
            alert.state, alert.resolution = RESOLVED, reason
            alert.ends_at = condition.last + WINDOW
        return condition.alerts

    def _reason(self, condition: Condition, now: float, judge: Judge) -> str | None:
        clean = 0
        while True:
            following = condition.last + (clean + 1) * WINDOW
            if now < following + WINDOW + self.grace:  # the window after the last alert is
                condition.due = following + WINDOW + self.grace  # not complete yet
                return None
            verdict = judge(condition, following)
            if verdict is False:
                clean += 1
                if clean >= self.clear_windows:
                    return "recovered"
                continue
            if verdict is None:
                break
            clean = 0
            condition.last = following  # still beyond the bound, without an alert: still on
        quiet = condition.last + (self.quiet_windows + 1) * WINDOW + self.grace
        if now >= quiet:
            return "quiet"
        condition.due = quiet
        return None

    def forget(self, kept: Callable[[Alert], bool]) -> None:
        """Drop the alerts deleted or purged; a condition left without alerts goes with them."""
        for key, condition in list(self.open.items()):
            condition.alerts = [a for a in condition.alerts if kept(a)]
            if not condition.alerts:
                del self.open[key]

    def firing(self) -> list[Alert]:
        return [alert for condition in self.open.values() for alert in condition.alerts]
