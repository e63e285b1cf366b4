"""Alerts: the record, deduplication per (plugin, key or msg, window), and threshold rules.

Plugins raise alerts through ``ctx.alert``; threshold rules watch a ratio or a mean of
the built-in series and fire once per (rule, labels, window) when it crosses its
bound with enough samples behind it, so one bad call never pages anyone.
"""
from __future__ import annotations

import hashlib
import math
import operator
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

import orjson

from .call import Call as _Call
from .lifecycle import FIRING, RESOLVED, Judge, Lifecycle
from .windows import WINDOW
from .stats import SeriesKeyError, cached_key as _key, series_key

if TYPE_CHECKING:
    from .batch import Batch
    from .call import Call, Decoded
    from .store import Store

__all__ = ["Alert", "Alerts", "Rule", "DEFAULT_RULES", "rules_from_config"]


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


_CALL_FIELDS = frozenset(_Call.__struct_fields__)
_RECORD_FIELDS = ("id", "timestamp", "time", "msg", "plugin", "key", "count",
                  "profile", "direction", "account", "duration")
_LIFECYCLE_FIELDS = ("state", "starts_at", "ends_at", "resolution")


_SCALARS = frozenset({str, int, float, bool, type(None)})


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
        self._seq = 0
        self.raised = 0
        self.listeners: list[Callable[[Alert], None]] = []

    def raise_alert(self, plugin: str, msg: str, key: Any, timestamp: int, sample: Decoded,
                    fields: dict[str, Any]) -> Alert:
        """Add an alert, or count one more of the same (plugin, key or msg, window)."""
        dedup = (plugin, _subject(key, msg), timestamp)
        alert = self._rows.get(dedup)
        call = sample.call
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
            alert = self._rows[dedup] = Alert(
                id=f"{timestamp}-{digest}", timestamp=timestamp, time=self._clock(), msg=msg,
                plugin=plugin, key=plain[0], count=1,
                profile=call.profile, direction=call.direction, account=call.account,
                duration={"billable": call.billsec, "total": call.duration},
                sample=sample, fields=plain[1], seq=self._seq,
            )
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
            kept = set(map(id, self._rows.values()))
            self.lifecycle.forget(lambda alert: id(alert) in kept)
        return len(dropped)


@dataclass(frozen=True)
class Rule:
    """A bound on ``series / per`` (a ratio) or, when ``per`` is None, on the mean of ``series``."""

    name: str
    series: str
    per: str | None
    op: str
    bound: float
    min_count: int
    labels: tuple[str, ...] = ("direction", "profile")
    severity: str = "warning"
    enabled: bool = True

    def crossed(self, value: float) -> bool:
        return value > self.bound if self.op == ">" else value < self.bound

    def describe(self, labels: dict[str, str], value: float, samples: int) -> str:
        where = " ".join(str(v) for k, v in labels.items() if k != "direction")
        if "direction" in labels:
            where = f"{where} ({labels['direction']})" if where else labels["direction"]
        if self.per is None:
            what = f"mean {self.series} {value:.2f}"
            bound = f"{self.bound:g}"
        else:
            what = f"{self.series}/{self.per} {value:.0%}"
            bound = f"{self.bound:.0%}"
        return f"{where}: {what} {self.op} {bound} over {samples} samples"


DEFAULT_RULES: dict[str, Rule] = {
    rule.name: rule for rule in (
        Rule("zero_duration_ratio", "zero_duration", "calls", ">", 0.5, 20),
        Rule("network_failure_ratio", "network_failures", "calls", ">", 0.2, 20, severity="critical"),
        Rule("asr", "answered", "calls", "<", 0.2, 20),
        Rule("account_zero_duration_ratio", "account_zero_duration", "account_calls", ">", 0.8, 20,
             labels=("account", "direction")),
        Rule("mos", "mos", None, "<", 3.5, 10),
    )
}


def rules_from_config(tables: dict[str, dict[str, Any]]) -> list[Rule]:
    """The default rules updated by ``[rules.<name>]`` tables; a new name defines a new rule."""
    rules = dict(DEFAULT_RULES)
    for name, table in tables.items():
        table = dict(table)
        if "labels" in table:
            table["labels"] = tuple(table["labels"])
        if table.get("op", ">") not in (">", "<"):
            raise ValueError(f"rule {name}: op must be '>' or '<'")
        base = rules.get(name)
        try:
            rules[name] = replace(base, **table) if base else Rule(name=name, **table)
        except TypeError as error:
            raise ValueError(f"rule {name}: {error}") from None
    for rule in rules.values():
        if not isinstance(rule.min_count, int) or isinstance(rule.min_count, bool) or rule.min_count < 1:
            raise ValueError(f"rule {rule.name}: min_count must be a whole number ≥ 1, "
                             f"got {rule.min_count!r}")
        if (not isinstance(rule.bound, (int, float)) or isinstance(rule.bound, bool)
                or not math.isfinite(rule.bound)):
            raise ValueError(f"rule {rule.name}: bound must be a number, got {rule.bound!r}")
        if not isinstance(rule.series, str) or not (rule.per is None or isinstance(rule.per, str)):
            raise ValueError(f"rule {rule.name}: series and per must be series names")
        unknown = set(rule.labels) - _CALL_FIELDS
        if unknown:
            raise ValueError(f"rule {rule.name}: labels must be Call fields "
                             f"({', '.join(sorted(_CALL_FIELDS))}), not {sorted(unknown)}")
        for series in filter(None, (rule.series, rule.per)):
            try:
                series_key(series)
            except SeriesKeyError as error:
                raise ValueError(f"rule {rule.name}: {error}") from None
    return [rule for rule in rules.values() if rule.enabled]


class Thresholds:
    """Checks the rules for the label sets touched since the last check, once per (rule, labels, window).

    A CDR only marks its labels as touched (a dict write per label set); :meth:`check`
    runs the rules over those, so a burst of a thousand CDRs from one carrier costs
    one check.
    """

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        groups: dict[tuple[str, ...], list[Rule]] = {}
        for rule in rules:
            groups.setdefault(rule.labels, []).append(rule)
        self._groups = [(names, _getter(names), group) for names, group in groups.items()]
        self._by_labels = groups
        self._by_name = {rule.name: rule for rule in rules}
        self._touched: list[dict[tuple, Decoded]] = [{} for _ in self._groups]
        self._plans: dict[tuple, list[tuple[Rule, tuple, str, str | None]]] = {}
        self._fired: dict[int, set[tuple]] = {}

    def touch(self, timestamp: int, decoded: Decoded) -> None:
        """Remember that this CDR's window and labels need checking; keep it as the sample."""
        call = decoded.call
        for (_, values, _), touched in zip(self._groups, self._touched):
            touched[(timestamp, values(call))] = decoded

    def touch_batch(self, batch: Batch) -> None:
        """The same for every (window, labels) of a batch; a group's first CDR is its sample."""
        for (names, _, _), touched in zip(self._groups, self._touched):
            groups = batch.groups(names)
            decoded = batch.decoded
            for g, (row, timestamp) in enumerate(zip(groups.first.tolist(), groups.windows.tolist())):
                touched[(timestamp, groups.labels(g))] = decoded[row]

    def check(self, store: Store) -> list[tuple[Rule, dict[str, str], float, int, int, Decoded]]:
        """(rule, labels, value, samples, window, sample CDR) for each rule newly crossed."""
        crossed = []
        plans = self._plans
        for (names, _, rules), touched in zip(self._groups, self._touched):
            window = cells = fired = None
            for (timestamp, values), decoded in touched.items():
                if timestamp != window:  # (CDRs come mostly in order: one look per window)
                    window, cells = timestamp, store.peek(timestamp)
                    if cells is not None:  # (else the window was deleted meanwhile)
                        fired = self._fired.setdefault(timestamp, set())
                        sum_count = cells.sum_count
                if cells is None:
                    continue
                plan = plans.get((names, values)) or self._plan(names, values, rules)
                for rule, once, series, per in plan:
                    # _measure, inlined: most label sets (accounts) have too few samples
                    total, samples = sum_count(per or series)
                    if samples < rule.min_count or once in fired:
                        continue
                    value = total / samples if per is None else sum_count(series)[0] / samples
                    if rule.crossed(value):
                        fired.add(once)
                        crossed.append((rule, dict(zip(names, values)), value, samples,
                                        timestamp, decoded))
            touched.clear()
        return crossed

    def verdict(self, rule_name: str, values: tuple, timestamp: int, store: Store) -> bool | None:
        """Whether a window crosses a rule for these label values; None with too few samples."""
        rule = self._by_name.get(rule_name)
        cells = store.peek(timestamp)
        if rule is None or cells is None or len(values) != len(rule.labels):
            return None  # (a rule removed, or labelled otherwise, since the alert was raised)
        plan = self._plans.get((rule.labels, values)) or self._plan(
            rule.labels, values, self._by_labels[rule.labels])
        for planned, _, series, per in plan:
            if planned is rule:
                measured = _measure(rule, cells, series, per)
                return None if measured is None else rule.crossed(measured[0])
        return None

    def _plan(self, names: tuple[str, ...], values: tuple,
              rules: list[Rule]) -> list[tuple[Rule, tuple, str, str | None]]:
        """Per rule: its once-key and series keys for these label values (kept: hot path)."""
        labels = dict(zip(names, values))
        if len(self._plans) > 200_000:  # accounts come and go
            self._plans.clear()
        plan = self._plans[(names, values)] = [
            (rule, (rule.name, values), _key(rule.series, labels),
             _key(rule.per, labels) if rule.per else None) for rule in rules]
        return plan

    def mark_fired(self, rule: str, timestamp: int, values: Any) -> None:
        """Remember a restored alert's crossing, so that it does not fire again."""
        self._fired.setdefault(timestamp, set()).add((rule, tuple(values or ())))

    def purge(self, before: int | None = None) -> None:
        for t in [t for t in self._fired if before is None or t < before]:
            del self._fired[t]
        for touched in self._touched:
            for key in [k for k in touched if before is None or k[0] < before]:
                del touched[key]


def _measure(rule: Rule, cells: Any, series: str, per: str | None) -> tuple[float, int] | None:
    """(value, samples) of a rule in one window's cells; None below its minimum samples."""
    total, samples = cells.sum_count(per or series)
    if samples < rule.min_count:
        return None
    return (total / samples if per is None else cells.sum_count(series)[0] / samples), samples


def _getter(names: tuple[str, ...]) -> Callable[[Call], tuple]:
    """A fast function from a Call to the tuple of its values for these label names."""
    if len(names) == 1:
        get = operator.attrgetter(names[0])
        return lambda call: (get(call),)
    return operator.attrgetter(*names) if names else (lambda call: ())
