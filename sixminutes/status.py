"""GET /6minutes/status: what the service says of itself (sources, counts, rules, health).

Read from the service when asked, on the event loop; nothing here changes it. (Out of
service.py, which runs the service: this only describes it.)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import Service

__all__ = ["rate", "service_status"]


def rate(samples: Sequence[tuple[float, int]]) -> float:
    """Accepted CDRs per second between the oldest and newest (time, accepted) samples."""
    if len(samples) < 2:
        return 0.0
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def service_status(service: Service) -> dict[str, Any]:
    """The status document: the engine's counts and plugins, every source, the rules of both
    kinds, the event stream, notifications, snapshots and the event loop's lag."""
    engine = service.engine
    by_source: dict[str, dict[str, int]] = {}
    for (source, outcome), n in engine.outcomes.items():
        by_source.setdefault(source, {})[outcome] = n
    sources = service.feeds.status()
    if service.group is not None:
        sources.append(service.group.status())
    sources.append({"name": "http", "state": "listening", "connected": True,
                    "position": service.journal_position, "lag": len(service._queue)})
    if service.config.demo:
        sources.append({"name": "demo", "state": "running", "connected": True,
                        "rate": service.config.demo_rate})
    return {
        **engine.status(),
        "rate": round(service.rate(), 2),
        "sources": sources,
        "by_source": by_source,
        "last_rejection": engine.last_rejection,
        "rejections": list(service.rejections),
        "windows": len(engine.store.windows()),
        "rules": [rule.to_json() for rule in engine.thresholds.rules],
        "traffic_rules": [rule.to_json() for rule in engine.traffic.rules],
        "history_hours": len(engine.traffic.history.hours),
        "events": {"clients": service.hub.clients, "dropped": service.hub.dropped},
        "plugin_health": service.plugin_health.to_json(),
        "notifications": service.notifier.status(),
        "snapshots": service.snapshots,
        "event_loop": {"worst_lag_seconds": round(service.loop_lag.worst_ever, 4),
                       "wakeups": service.loop_lag.count},
        "state": service.config.state,
    }
