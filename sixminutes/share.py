"""What one engine counted, handed to another: the processes of a parallel replay join so.

A :class:`Share` pickles; :func:`absorb` adds it to an engine as if that engine had read the
other's documents too (outcomes in input order, the last rejection of each reason, plugin
health). No I/O.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .alerts import Alerts
from .baselines import Traffic
from .store import Store

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Share", "share_of", "absorb"]


@dataclass
class Share:
    """What one engine counted, in a form another process can receive (it pickles)."""

    store: Store
    alerts: Alerts
    outcomes: Counter[tuple[str, str]]
    first_seen: dict[tuple[str, str], int]
    """Outcome → the position (documents read) where it was first seen."""
    last_rejection: dict[str, tuple[int, str]]
    """Reason → (position, detail) of its last rejection."""
    newest: int
    newest_epoch: float
    runs: int
    plugins: dict[str, tuple[int, str | None, int, int, float, float]]
    """Plugin name → (errors, last error, its position, timed calls, timed seconds, slowest)."""
    rejections: list[tuple[int, str, str]]
    """(position, reason, detail) of the rejections kept (``Engine.keep_rejections``)."""
    traffic: Traffic | None = None
    """What the traffic rules saw counted (the label sets per window), for the join to judge."""


def share_of(engine: Engine) -> Share:
    """What ``engine`` counted, to be absorbed by another (see :mod:`sixminutes.parallel`)."""
    return Share(engine.store, engine.alerts, engine.outcomes, engine._first_seen,
                 {r: (engine._rejected_at.get(r, -1), d)
                  for r, d in engine.last_rejection.items()},
                 engine._newest, engine._newest_epoch, engine.plugins.runs,
                 {p.name: (p.errors, p.last_error, p.last_error_at, p.timed_calls,
                           p.timed_seconds, p.max_seconds) for p in engine.plugins.plugins},
                 engine.rejections, engine.traffic)


def absorb(engine: Engine, share: Share) -> None:
    """Add another engine's counts, alerts and plugin health to ``engine``'s."""
    from .engine import KEPT_REJECTIONS

    engine.store.absorb(share.store)
    engine.alerts.absorb(share.alerts)
    if share.traffic is not None:
        engine.traffic.absorb(share.traffic)
    for outcome, at in share.first_seen.items():  # outcomes in the order the inputs gave
        engine._first_seen[outcome] = min(at, engine._first_seen.get(outcome, at))
    counts = engine.outcomes + share.outcomes
    engine.outcomes = Counter({k: counts[k] for k in sorted(
        counts, key=lambda outcome: engine._first_seen.get(outcome, -1))})
    for reason, (at, detail) in share.last_rejection.items():
        if at > engine._rejected_at.get(reason, -2):
            engine.last_rejection[reason], engine._rejected_at[reason] = detail, at
    kept = sorted(engine.rejections + share.rejections)  # in the order the inputs gave them
    engine._kept = Counter()
    engine.rejections = []
    for position, reason, detail in kept:
        if engine._kept[reason] < KEPT_REJECTIONS:
            engine._kept[reason] += 1
            engine.rejections.append((position, reason, detail))
    engine._newest = max(engine._newest, share.newest)
    engine._newest_epoch = max(engine._newest_epoch, share.newest_epoch)
    engine.plugins.runs += share.runs
    for plugin in engine.plugins.plugins:
        errors, last_error, at, timed, seconds, slowest = share.plugins.get(
            plugin.name, (0, None, -1, 0, 0.0, 0.0))
        plugin.errors += errors
        if last_error is not None and at > plugin.last_error_at:
            plugin.last_error, plugin.last_error_at = last_error, at
        plugin.timed_calls += timed
        plugin.timed_seconds += seconds
        plugin.max_seconds = max(plugin.max_seconds, slowest)
        plugin.owner = engine.plugins
