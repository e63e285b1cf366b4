"""GET /metrics: the service's state as Prometheus metrics, read at scrape time.

Nothing is counted twice: a custom collector reads the engine's own counters and the
last complete window's Stats when Prometheus scrapes, so ingest pays nothing for it.
Each group of metrics is one small generator method listed in ``ServiceCollector.parts``,
so a new group (say, alert notifications) is one method and one line there.

The names are the contract of contrib/prometheus/sixminutes-rules.yml and
contrib/grafana/sixminutes-dashboard.json (tests/contrib checks both against a real
scrape, and ``promtool check metrics`` against the conventions).
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Callable, Iterator

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
                                   Metric)
from prometheus_client.registry import Collector

from ..baselines import Baseline
from ..board import carrier_rows
from ..movers import baselines
from ..stats import parsed_key
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
    ("peak_concurrent_calls", "the most calls in progress at any second of the last complete window",
     lambda r: r.peak),
)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    """(``name`` without ``_total``: prometheus_client appends it.)"""
    family = CounterMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


class ServiceCollector(Collector):
    """Collects from a running Service; register it in a registry of its own."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.parts: tuple[Callable[[], Iterator[Metric]], ...] = (
            self._ingest, self._plugins, self._alerts, self._notifications, self._sources,
            self._snapshots, self._event_loop,
            self._last_window, self._events)

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part()

    def _ingest(self) -> Iterator[Metric]:
        cdrs = CounterMetricFamily("sixminutes_cdrs", "CDRs read, by source and outcome "
                                   "(accepted, or the rejection reason)", labels=["source", "outcome"])
        for (source, outcome), n in sorted(self.service.engine.outcomes.items()):
            cdrs.add_metric([source, outcome], n)
        yield cdrs

    def _plugins(self) -> Iterator[Metric]:
        plugins = self.service.engine.plugins
        errors = CounterMetricFamily("sixminutes_plugin_errors", "exceptions raised by plugins "
                                     "(from 0 again after a plugin reload)", labels=["plugin"])
        calls = CounterMetricFamily("sixminutes_plugin_calls", "CDRs handed to each plugin "
                                    "(from 0 again after a plugin reload)", labels=["plugin"])
        seconds = CounterMetricFamily("sixminutes_plugin_seconds", "time spent in each plugin, "
                                      "estimated from one call in 64", labels=["plugin"])
        slowest = GaugeMetricFamily("sixminutes_plugin_max_call_seconds",
                                    "the slowest timed call of each plugin", labels=["plugin"])
        for plugin in plugins.plugins:
            errors.add_metric([plugin.name], plugin.errors)
            status = plugin.status()
            calls.add_metric([plugin.name], status["calls"])
            seconds.add_metric([plugin.name], status["seconds"])
            slowest.add_metric([plugin.name], status["max_us"] / 1e6)
        yield from (errors, calls, seconds, slowest)
        yield _gauge("sixminutes_plugin_load_errors", "plugin files that failed to load at the "
                     "last (re)load (see /6minutes/status)", len(plugins.errors))

    def _alerts(self) -> Iterator[Metric]:
        alerts = self.service.engine.alerts
        yield _counter("sixminutes_alerts_raised", "alerts raised since start", alerts.raised)
        firing = GaugeMetricFamily("sixminutes_alerts_firing", "alert records firing now, by "
                                   "rule or plugin", labels=["alertname"])
        for name, n in sorted(Counter(a.plugin for a in alerts.lifecycle.firing()).items()):
            firing.add_metric([name], n)
        yield firing
        incidents = GaugeMetricFamily(
            "sixminutes_incidents_firing", "incidents firing now (one per rule or plugin and "
            "labels, those a carrier incident explains left out): sixminutes' own verdict, on "
            "evidence (docs/alerts.md)", labels=["alertname", "severity", "scope", "profile",
                                                 "direction", "account"])
        counts = Counter((i.rule, i.severity, i.scope, i.labels.get("profile", ""),
                          i.labels.get("direction", ""), i.labels.get("account", ""))
                         for i in alerts.firing_incidents() if i.inhibited_by is None)
        for labels, n in sorted(counts.items()):
            incidents.add_metric(list(labels), n)
        yield incidents

    def _notifications(self) -> Iterator[Metric]:
        families = {
            "sent": CounterMetricFamily("sixminutes_notifications_sent",
                                        "alerts delivered to a target", labels=["target"]),
            "failed": CounterMetricFamily("sixminutes_notifications_failed",
                                          "deliveries that failed and are retried", labels=["target"]),
            "dropped": CounterMetricFamily("sixminutes_notifications_dropped", "alert changes "
                                           "dropped by a full queue", labels=["target"]),
            "rejected": CounterMetricFamily("sixminutes_notifications_rejected", "alerts a target "
                                            "refused with a 4xx answer", labels=["target"]),
            "queued": GaugeMetricFamily("sixminutes_notifications_queued",
                                        "alert changes waiting for a target", labels=["target"]),
        }
        for target in self.service.notifier.targets:
            for name, family in families.items():
                family.add_metric([target.name], target.status()[name])
        yield from families.values()

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

    def _snapshots(self) -> Iterator[Metric]:
        """Only once the state file is open (the service has started)."""
        if self.service.state is None:
            return
        snapshots = self.service.snapshots
        yield _counter("sixminutes_snapshots", "snapshots saved to the state file",
                       snapshots["count"])
        yield _gauge("sixminutes_snapshot_failing", "1 when the latest snapshot failed (what was "
                     "not saved is retried at the next one)", 1 if snapshots["last_error"] else 0)
        if snapshots["last_at"] is not None:
            yield _gauge("sixminutes_snapshot_last_success_timestamp_seconds",
                         "when the latest snapshot was saved", snapshots["last_at"])
            yield _gauge("sixminutes_snapshot_last_duration_seconds",
                         "how long the latest saved snapshot took", snapshots["last_seconds"])

    def _event_loop(self) -> Iterator[Metric]:
        """The event loop's stalls (see sixminutes/looplag.py): what every request waits through."""
        lag = self.service.loop_lag
        yield HistogramMetricFamily("sixminutes_event_loop_lag_seconds",
                                    f"how late the event loop ran a wake-up due every "
                                    f"{lag.every:g} s", buckets=lag.cumulative(),
                                    sum_value=lag.total)
        yield _gauge("sixminutes_event_loop_lag_max_seconds", "the longest event loop stall since "
                     "the previous scrape", lag.take_worst())

    def _events(self) -> Iterator[Metric]:
        hub = self.service.hub
        yield _gauge("sixminutes_event_clients", "clients of /6minutes/events", hub.clients)
        yield _counter("sixminutes_event_dropped", "live events lost by slow clients", hub.dropped)

    def _last_window(self) -> Iterator[Metric]:
        engine = self.service.engine
        last = window_of(int(self.service.clock())) - WINDOW
        yield _gauge("sixminutes_last_window_timestamp_seconds",
                     "start of the last complete 6-minute window the gauges describe", last)
        rows = carrier_rows(engine.store, last, last)
        for name, text, value in _KPIS:
            family = GaugeMetricFamily(f"sixminutes_last_window_{name}", text,
                                       labels=["profile", "direction"])
            for row in rows:
                v = value(row)
                if v is not None:
                    family.add_metric([row.profile, row.direction], v)
            yield family
        yield from self._destinations(last)
        if self.service.config.account_metrics:
            yield from self._accounts(last)

    def _destinations(self, last: int) -> Iterator[Metric]:
        """Calls per destination country × carrier (bounded: countries × carriers), and each
        carrier's baseline (the median of the same window over the last days, else yesterday)."""
        engine = self.service.engine
        family = GaugeMetricFamily("sixminutes_last_window_destination_calls",
                                   "calls per destination country in the last complete window",
                                   labels=["country", "profile", "direction"])
        for _, key, stat in engine.store.items(last, last, names=["destination_calls"]):
            _, labels = parsed_key(key)
            family.add_metric([labels.get("country", ""), labels.get("profile", ""),
                               labels.get("direction", "")], stat.count)
        yield family
        expected = GaugeMetricFamily("sixminutes_last_window_baseline_calls",
                                     "the calls expected in the last complete window: the median "
                                     "of the same window on the last days, else yesterday's",
                                     labels=["profile", "direction"])
        for row in baselines(engine.store, engine.traffic.history, last, "calls"):
            b = Baseline(row["value"], row["yesterday"], row["median"], row["days"]).expected
            if b is not None:
                expected.add_metric([row["labels"].get("profile", ""),
                                     row["labels"].get("direction", "")], b)
        yield expected

    def _accounts(self, last: int) -> Iterator[Metric]:
        families = {name: GaugeMetricFamily(f"sixminutes_last_window_{name}",
                                            f"{name.replace('_', ' ')} per account in the last "
                                            "complete window", labels=["account", "direction"])
                    for name in ("account_calls", "account_zero_duration_calls")}
        series = {"account_calls": "account_calls",
                  "account_zero_duration": "account_zero_duration_calls"}
        for _, key, stat in self.service.engine.store.items(last, last, names=series):
            name, labels = parsed_key(key)
            families[series[name]].add_metric(
                [labels.get("account", ""), labels.get("direction", "")], stat.count)
        yield from families.values()
