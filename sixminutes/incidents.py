"""Incidents: one row per (rule or plugin, labels) from its first window to its resolution.

Alert records stay per window (the seed's ``/6minutes/alerts``); what an on-call engineer
follows is an incident. The lifecycle (:mod:`sixminutes.lifecycle`) already joins the records
of one condition — the same rule on the same labels, or the same plugin subject, in
consecutive windows — and gives them one ``starts_at``; an incident is those records seen as
one: its windows, its peak, its severity, its state. Incidents are derived from the records,
never stored apart, so they survive a restart with them and cannot disagree with them.

A **carrier incident** is the set of incidents about one carrier (profile × direction) at a
time: its symptoms (ASR, network failures, zero duration, SIP codes, MOS). While a carrier
incident with a call-completion symptom is firing, an account incident of the same direction
whose windows overlap it is *explained* by it: it is listed with ``inhibited_by``, and not
notified (an account's calls failing because its carrier fails is not news). sixminutes
counts no account × carrier series, so the test is the direction and the time only: coarse,
on purpose, and visible in the incident itself.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from .lifecycle import FIRING
from .windows import WINDOW

if TYPE_CHECKING:
    from .alerts import Alert

__all__ = ["Incident", "incidents_of", "incident_of", "carriers", "SEVERITY_RANK", "EXPLAINING"]

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
EXPLAINING = frozenset({"asr", "zero_duration_ratio", "network_failure_ratio", "unexpected_sip"})
"""The symptoms of a carrier that explain its accounts' failing calls."""


@dataclass
class Incident:
    """One (rule or plugin, subject) from its first window to its resolution."""

    id: str
    rule: str
    subject: Any
    labels: dict[str, str]
    severity: str
    state: str
    starts_at: float
    ends_at: float | None
    resolution: str | None
    first_window: int
    last_window: int
    alerting_windows: int
    """Windows with an alert record (the others between first and last only kept it open)."""
    count: int
    """CDRs or crossings counted on its records."""
    peak: float | None
    """The worst value of a rule's windows (highest above an upper bound, lowest below a lower
    one); for a plugin, the most CDRs it counted in one window."""
    bound: float | None
    msg: str
    alerts: list[Alert] = field(repr=False)
    inhibited_by: str | None = None

    @property
    def scope(self) -> str:
        """``carrier`` (profile and direction), ``account``, or ``other``."""
        if self.labels.get("account"):
            return "account"
        if self.labels.get("profile") and self.labels.get("direction"):
            return "carrier"
        return "other"

    @property
    def carrier(self) -> str | None:
        """The carrier group's id: ``<profile>/<direction>``, for carrier incidents."""
        return f"{self.labels['profile']}/{self.labels['direction']}" \
            if self.scope == "carrier" else None

    @property
    def windows(self) -> int:
        """Windows spanned, first to last."""
        return (self.last_window - self.first_window) // WINDOW + 1

    def to_json(self) -> dict[str, Any]:
        """The item of GET /6minutes/incidents, of the ``incident`` event and of webhooks."""
        return {"id": self.id, "rule": self.rule, "labels": self.labels,
                "profile": self.labels.get("profile", ""),
                "direction": self.labels.get("direction", ""),
                "account": self.labels.get("account", ""),
                "scope": self.scope, "carrier": self.carrier, "severity": self.severity,
                "state": self.state, "starts_at": self.starts_at, "ends_at": self.ends_at,
                "resolution": self.resolution, "first_window": self.first_window,
                "last_window": self.last_window, "windows": self.windows,
                "alerting_windows": self.alerting_windows, "count": self.count,
                "peak": self.peak, "bound": self.bound, "msg": self.msg,
                "inhibited_by": self.inhibited_by, "alerts": [a.id for a in self.alerts]}


def incident_of(records: list[Alert]) -> Incident:
    """The incident of the records of one condition (same plugin, subject and ``starts_at``)."""
    records = sorted(records, key=lambda a: (a.timestamp, a.seq))
    first = records[0]
    fields = first.fields
    is_rule = fields.get("rule") == first.plugin
    labels = {k: str(v) for k, v in fields["labels"].items()} if is_rule and \
        isinstance(fields.get("labels"), dict) else _plugin_labels(first)
    firing = any(a.state == FIRING for a in records)
    last = max(a.timestamp for a in records)
    ends_at = None if firing else max((a.ends_at or a.timestamp + WINDOW) for a in records)
    if ends_at is not None:
        last = max(last, int(ends_at) - WINDOW)
    peak_record, peak, bound = _peak(records, is_rule)
    starts_at = min(a.starts_at or a.timestamp for a in records)
    digest = hashlib.sha1(repr((first.plugin, first.subject)).encode()).hexdigest()[:12]
    return Incident(
        id=f"{int(starts_at)}-{digest}", rule=first.plugin, subject=first.subject,
        labels=labels, severity=_severity(fields.get("severity")),
        state=FIRING if firing else records[-1].state, starts_at=starts_at, ends_at=ends_at,
        resolution=None if firing else records[-1].resolution,
        first_window=min(a.timestamp for a in records), last_window=last,
        alerting_windows=len({a.timestamp for a in records}),
        count=sum(a.count for a in records), peak=peak, bound=bound, msg=peak_record.msg,
        alerts=records)


def incidents_of(alerts: Iterable[Alert]) -> list[Incident]:
    """Every incident of these records, each account incident explained by a carrier one
    marked; newest first (by start, then severity)."""
    conditions: dict[tuple, list[Alert]] = {}
    for alert in alerts:
        conditions.setdefault((alert.plugin, alert.subject, alert.starts_at), []).append(alert)
    found = [incident_of(records) for records in conditions.values()]
    explain(found)
    return sorted(found, key=lambda i: (-i.starts_at, SEVERITY_RANK.get(i.severity, 3), i.rule, i.id))


def explain(incidents: list[Incident]) -> None:
    """Mark each account incident that a carrier incident of its direction explains."""
    causes = [i for i in incidents if i.scope == "carrier" and i.rule in EXPLAINING]
    for incident in incidents:
        if incident.scope != "account":
            continue
        direction = incident.labels.get("direction")
        cause = next((c for c in sorted(causes, key=lambda c: c.starts_at)
                      if c.labels.get("direction") == direction
                      and c.first_window <= incident.last_window
                      and incident.first_window <= c.last_window), None)
        incident.inhibited_by = cause.carrier if cause is not None else None


def carriers(incidents: list[Incident]) -> list[dict[str, Any]]:
    """The carrier incidents: per carrier, its symptoms that overlap in time, grouped, with
    the worst severity, the span and the account incidents they explain."""
    groups: dict[str, list[list[Incident]]] = {}
    for incident in sorted((i for i in incidents if i.scope == "carrier"),
                           key=lambda i: i.first_window):
        runs = groups.setdefault(incident.carrier or "", [])
        if runs and incident.first_window <= max(i.last_window for i in runs[-1]) + WINDOW:
            runs[-1].append(incident)
        else:
            runs.append([incident])
    out = []
    for carrier, runs in groups.items():
        for symptoms in runs:
            profile, _, direction = carrier.rpartition("/")
            first, last = min(i.first_window for i in symptoms), max(i.last_window for i in symptoms)
            explained = [i.id for i in incidents if i.inhibited_by == carrier
                         and i.first_window <= last and first <= i.last_window]
            firing = any(i.state == FIRING for i in symptoms)
            out.append({
                "id": f"{first}-{carrier}", "carrier": carrier, "profile": profile,
                "direction": direction, "state": FIRING if firing else symptoms[-1].state,
                "severity": min((i.severity for i in symptoms), key=lambda s: SEVERITY_RANK.get(s, 3)),
                "starts_at": min(i.starts_at for i in symptoms),
                "ends_at": None if firing else max(i.ends_at or 0 for i in symptoms),
                "first_window": first, "last_window": last,
                "windows": (last - first) // WINDOW + 1,
                "symptoms": [i.to_json() for i in symptoms], "explains": explained})
    return sorted(out, key=lambda g: (g["state"] != FIRING, -g["starts_at"]))


def _plugin_labels(alert: Alert) -> dict[str, str]:
    """A plugin alert's labels: what it named, and its scalar fields (``code``)."""
    labels = {k: v for k, v in (("profile", alert.profile), ("direction", alert.direction),
                                ("account", alert.account)) if v}
    for name, value in alert.fields.items():
        if name not in labels and name not in ("labels", "severity") and \
                isinstance(value, (str, int)) and not isinstance(value, bool):
            labels[name] = str(value)
    return labels


def _severity(value: Any) -> str:
    return value if value in SEVERITY_RANK else "warning"


def _peak(records: list[Alert], is_rule: bool) -> tuple[Alert, float | None, float | None]:
    """The record of the worst window, its value, and the rule's bound."""
    if not is_rule:
        worst = max(records, key=lambda a: a.count)
        return worst, float(worst.count), None
    valued = [a for a in records if isinstance(a.fields.get("value"), (int, float))]
    if not valued:
        return records[-1], None, None
    bound = valued[0].fields.get("bound")
    above = not isinstance(bound, (int, float)) or valued[0].fields["value"] > bound
    worst = (max if above else min)(valued, key=lambda a: a.fields["value"])
    return worst, float(worst.fields["value"]), bound
