"""Alerts: the record and its deduplication per (plugin, key or msg, window).

Plugins raise alerts through ``ctx.alert``; threshold rules (:mod:`sixminutes.thresholds`)
fire once per (rule, labels, window) when the evidence says a bound is crossed. The rules
are re-exported here, where they lived first.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import orjson

from .lifecycle import FIRING, RESOLVED, Judge, Lifecycle
from .windows import WINDOW
from .incidents import EXPLAINING, Incident, explain, incident_of, incidents_of
from .thresholds import DEFAULT_RULES, SEED_RULES, Rule, Thresholds, rules_from_config

if TYPE_CHECKING:
    from .call import Decoded

__all__ = ["Alert", "Alerts", "Rule", "DEFAULT_RULES", "SEED_RULES", "Thresholds",
           "rules_from_config"]


@dataclass
class Alert:
    """One alert row: the seed's record plus any fields the raiser added."""

    id: str
    timestamp: int
    time: float
    msg: str
    plugin: str
    key: Any
    count: int
    profile: str
    direction: str
    account: str
    duration: dict[str, int]
    sample: Decoded | dict | None  # the first CDR; its document is built only when shown
    fields: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    state: str = FIRING
    starts_at: float = 0.0
    """The start of the condition's first window (see :mod:`sixminutes.lifecycle`)."""
    ends_at: float | None = None
    """When resolved: the end of the condition's last window that raised an alert."""
    resolution: str | None = None
    """Why it resolved: ``recovered`` (a window within bound) or ``quiet`` (none raised since)."""

    @property
    def doc(self) -> dict | None:
        """The first CDR that raised the alert, as a document (built when asked: raw is smaller)."""
        if self.sample is None or isinstance(self.sample, dict):
            return self.sample
        return self.sample.build()

    @property
    def subject(self) -> Any:
        """What the alert is about across windows: its key, or its message when it has none."""
        return _subject(self.key, self.msg)

    def to_json(self, with_doc: bool = True) -> dict[str, Any]:
        """The item of GET /6minutes/alerts: the record, the raiser's fields, the sample CDR."""
        data = {name: getattr(self, name) for name in _RECORD_FIELDS + _LIFECYCLE_FIELDS}
        data.update(self.fields)
        if with_doc:
            data["doc"] = self.doc
        return data

    def to_record(self) -> dict[str, Any]:
        """Everything needed to restore the alert after a restart."""
        data = {name: getattr(self, name) for name in _RECORD_FIELDS + _LIFECYCLE_FIELDS}
        data.update(fields=self.fields, seq=self.seq, doc=self.doc)
        return data


_RECORD_FIELDS = ("id", "timestamp", "time", "msg", "plugin", "key", "count",
                  "profile", "direction", "account", "duration")
_LIFECYCLE_FIELDS = ("state", "starts_at", "ends_at", "resolution")


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _attribution(fields: dict[str, Any]) -> dict[str, str]:
    """The profile, direction and account an alert is about: the ones its raiser names (in a
    ``labels`` dict, as the threshold rules do, or as fields), never those of the CDR that
    happened to trigger it; "" when not named."""
    labels = fields.get("labels")
    named = labels if isinstance(labels, dict) else fields
    return {name: _label(named.get(name, fields.get(name))) for name in ATTRIBUTION}


def _label(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return value if isinstance(value, str) else str(value)


ATTRIBUTION = ("profile", "direction", "account")
"""The record's fields that say whom an alert is about."""


def _subject(key: Any, msg: str) -> Any:
    """What dedup goes by: the key as the JSON it is saved as (so that a key rebuilt from a
    state file after a restart is the same), or the message when there is no key."""
    if key is None:
        return msg
    if type(key) in _SCALARS:
        return key
    if type(key) in (list, tuple) and all(type(k) in _SCALARS for k in key):
        return tuple(key)  # the usual key, a list of text: as it is
    try:
        return _hashable(orjson.loads(orjson.dumps(key)))
    except TypeError as error:
        raise TypeError(f"an alert's key and fields must be JSON values: {error}") from None


def _hashable(key: Any) -> Any:
    if isinstance(key, (list, tuple)):
        flat = tuple(key)
        try:  # the usual key, a list of text and numbers, as it is
            hash(flat)
            return flat
        except TypeError:
            return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in key.items()))
    try:
        hash(key)
    except TypeError:
        return repr(key)
    return key


class Alerts:
    """Every alert kept, deduplicated; listeners hear each new, updated or resolved alert."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 lifecycle: Lifecycle | None = None) -> None:
        self._clock = clock
        self.lifecycle = lifecycle or Lifecycle()
        self._rows: dict[tuple, Alert] = {}
        self._by_subject: dict[tuple, list[Alert]] = {}  # (plugin, subject) → its records
        self._seq = 0
        self.raised = 0
        self.listeners: list[Callable[[Alert], None]] = []

    def raise_alert(self, plugin: str, msg: str, key: Any, timestamp: int, sample: Decoded | None,
                    fields: dict[str, Any]) -> Alert:
        """Add an alert, or count one more of the same (plugin, key or msg, window); ``sample``
        is the CDR that raised it, None for an alert about calls that did not come (a drop)."""
        dedup = (plugin, _subject(key, msg), timestamp)
        alert = self._rows.get(dedup)
        if alert is not None:
            alert.count += 1
        else:
            try:  # it is saved and served as JSON: refuse what cannot be, in the raiser
                written = orjson.dumps([key, fields])
            except TypeError as error:
                raise TypeError(f"an alert's key and fields must be JSON values: {error}") from None
            # key and fields kept as the JSON they are written as (a tuple becomes a list, a
            # plugin's dataclass a dict): served, saved and sent from another process alike
            plain = orjson.loads(written)
            self._seq += 1
            digest = hashlib.sha1(repr(dedup).encode()).hexdigest()[:12]
            named = _attribution(plain[1])
            alert = self._rows[dedup] = Alert(
                id=f"{timestamp}-{digest}", timestamp=timestamp, time=self._clock(), msg=msg,
                plugin=plugin, key=plain[0], count=1,
                profile=named["profile"], direction=named["direction"], account=named["account"],
                duration={"billable": sample.call.billsec, "total": sample.call.duration}
                if sample is not None else {"billable": 0, "total": 0},
                sample=sample, fields=plain[1], seq=self._seq,
            )
            self._index(alert)
            self.lifecycle.fired(alert)
            self.raised += 1
        for listener in self.listeners:
            listener(alert)
        return alert

    def restore(self, record: dict[str, Any]) -> Alert:
        """Put back an alert saved with :meth:`Alert.to_record`."""
        fields = {name: record[name] for name in _RECORD_FIELDS}
        fields.update((name, record[name]) for name in _LIFECYCLE_FIELDS if name in record)
        if "state" not in record:  # saved before alerts had a lifecycle: its trouble is over
            fields.update(state=RESOLVED, resolution="restored", starts_at=record["timestamp"],
                          ends_at=record["timestamp"] + WINDOW)
        alert = Alert(**fields, sample=record.get("doc"), fields=dict(record.get("fields", {})),
                      seq=record.get("seq", 0))
        self._rows[(alert.plugin, alert.subject, alert.timestamp)] = alert
        self._index(alert)
        self._seq = max(self._seq, alert.seq)
        if alert.state == FIRING:
            self.lifecycle.join(alert)
        return alert

    def absorb(self, other: Alerts) -> None:
        """Take in the alerts another engine raised (a parallel replay's share of the windows);
        the same (plugin, key or msg, window) in both adds up their counts."""
        for dedup, alert in other._rows.items():
            mine = self._rows.get(dedup)
            if mine is not None:
                mine.count += alert.count
                continue
            self._rows[dedup] = alert
            self._index(alert)
            self._seq = max(self._seq, alert.seq)
            self.raised += 1
            if alert.state == FIRING:
                self.lifecycle.join(alert)

    def resolve(self, now: float, judge: Judge) -> list[Alert]:
        """Resolve the conditions gone by ``now`` (see :mod:`sixminutes.lifecycle`); tell listeners."""
        resolved = self.lifecycle.resolve(now, judge)
        for alert in resolved:
            for listener in self.listeners:
                listener(alert)
        return resolved

    def _index(self, alert: Alert) -> None:
        self._by_subject.setdefault((alert.plugin, alert.subject), []).append(alert)

    def incident(self, alert: Alert) -> Incident:
        """The incident a record belongs to: the records of its condition (same plugin,
        subject and start), with the account incidents a firing carrier one explains marked."""
        records = [a for a in self._by_subject.get((alert.plugin, alert.subject), [alert])
                   if a.starts_at == alert.starts_at]
        incident = incident_of(records or [alert])
        if incident.scope == "account":  # explained by a carrier incident firing now?
            explain([incident, *(incident_of(c.alerts) for c in self.lifecycle.open.values()
                                 if c.plugin in EXPLAINING and c.alerts)])
        return incident

    def firing_incidents(self) -> list[Incident]:
        """The incidents firing now (one per open condition), explained ones marked."""
        found = [incident_of(c.alerts) for c in self.lifecycle.open.values() if c.alerts]
        explain(found)
        return found

    def incidents(self) -> list[Incident]:
        """Every incident, newest first (see :mod:`sixminutes.incidents`)."""
        return incidents_of(self._rows.values())

    def ids(self) -> set[str]:
        return {a.id for a in self._rows.values()}

    def get(self, alert_id: str) -> Alert | None:
        return next((a for a in self._rows.values() if a.id == alert_id), None)

    def list(self) -> list[Alert]:
        """Newest first: by window, then by the order they were raised."""
        return sorted(self._rows.values(), key=lambda a: (a.timestamp, a.seq), reverse=True)

    def to_json(self) -> list[dict[str, Any]]:
        return [alert.to_json() for alert in self.list()]

    def __len__(self) -> int:
        return len(self._rows)

    def purge(self, before: int | None = None) -> int:
        """Drop the alerts of windows older than ``before`` (all when None); return how many."""
        dropped = [k for k, a in self._rows.items() if before is None or a.timestamp < before]
        for k in dropped:
            del self._rows[k]
        if dropped:
            self._by_subject = {}
            for alert in self._rows.values():
                self._index(alert)
            kept = set(map(id, self._rows.values()))
            self.lifecycle.forget(lambda alert: id(alert) in kept)
        return len(dropped)
