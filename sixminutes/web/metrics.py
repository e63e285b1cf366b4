"""GET /metrics: the service's state as Prometheus metrics, read at scrape time.

Nothing is counted twice: a custom collector reads the engine's own counters and the
last complete window's Stats when Prometheus scrapes, so ingest pays nothing for it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..board import carrier_rows
from ..stats import parse_series_key
from ..windows import WINDOW, window_of

if TYPE_CHECKING:
    from ..service import Service

__all__ = ["ServiceCollector"]

_KPIS = (
    ("calls", "CDRs in the last complete 6-minute window", lambda r: r.calls),
    ("answered_calls", "answered calls in the last complete window", lambda r: r.count("answered")),
    ("zero_duration_calls", "calls with billsec 0 in the last complete window",
     lambda r: r.count("zero_duration")),
    ("network_failure_calls", "network failures (SIP 408/5xx, Q.850) in the last complete window",
     lambda r: r.count("network_failures")),
    ("acd_seconds", "mean billsec of answered calls in the last complete window", lambda r: r.acd),
    ("pdd_seconds", "mean post-dial delay in the last complete window", lambda r: r.pdd),
    ("mos", "mean MOS in the last complete window", lambda r: r.mos),
)


class ServiceCollector(Collector):
    """Collects from a running Service; register it in a registry of its own."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service, engine = self.service, self.service.engine
        cdrs = CounterMetricFamily("sixminutes_cdrs", "CDRs read, by source and outcome "
                                   "(accepted, or the rejection reason)", labels=["source", "outcome"])
        for (source, outcome), n in sorted(engine.outcomes.items()):
            cdrs.add_metric([source, outcome], n)
        yield cdrs
        errors = CounterMetricFamily("sixminutes_plugin_errors", "exceptions raised by plugins",
                                     labels=["plugin"])
        for plugin in engine.plugins.plugins:
            errors.add_metric([plugin.name], plugin.errors)
        yield errors
        raised = CounterMetricFamily("sixminutes_alerts_raised", "alerts raised since start")
        raised.add_metric([], engine.alerts.raised)
        yield raised
        yield from self._sources()
        yield from self._last_window()
        clients = GaugeMetricFamily("sixminutes_event_clients", "clients of /6minutes/events")
        clients.add_metric([], service.hub.clients)
        yield clients
        dropped = CounterMetricFamily("sixminutes_event_dropped", "live events lost by slow clients")
        dropped.add_metric([], service.hub.dropped)
        yield dropped

    def _sources(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily("sixminutes_source_connected", "1 when the source is connected",
                                      labels=["source"])
        lag = GaugeMetricFamily("sixminutes_source_lag", "changes (CouchDB) or requests (HTTP) "
                                "not counted yet", labels=["source"])
        for source in self.service.status()["sources"]:
            connected.add_metric([source["name"]], 1 if source.get("connected") else 0)
            if source.get("lag") is not None:
                lag.add_metric([source["name"]], source["lag"])
        yield connected
        yield lag

    def _last_window(self) -> Iterator[Metric]:
        engine = self.service.engine
        last = window_of(int(self.service.clock())) - WINDOW
        stamp = GaugeMetricFamily("sixminutes_last_window_timestamp_seconds",
                                  "start of the last complete 6-minute window the gauges describe")
        stamp.add_metric([], last)
        yield stamp
        rows = carrier_rows(engine.store, last, last)
        for name, text, value in _KPIS:
            family = GaugeMetricFamily(f"sixminutes_last_window_{name}", text,
                                       labels=["profile", "direction"])
            for row in rows:
                v = value(row)
                if v is not None:
                    family.add_metric([row.profile, row.direction], v)
            yield family
        if self.service.config.account_metrics:
            yield from self._accounts(last)

    def _accounts(self, last: int) -> Iterator[Metric]:
        families = {name: GaugeMetricFamily(f"sixminutes_last_window_{name}",
                                            f"{name.replace('_', ' ')} per account in the last "
                                            "complete window", labels=["account", "direction"])
                    for name in ("account_calls", "account_zero_duration_calls")}
        series = {"account_calls": "account_calls",
                  "account_zero_duration": "account_zero_duration_calls"}
        for _, key, stat in self.service.engine.store.items(last, last, names=series):
            name, labels = parse_series_key(key)
            families[series[name]].add_metric(
                [labels.get("account", ""), labels.get("direction", "")], stat.count)
        yield from families.values()
