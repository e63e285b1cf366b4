"""Threshold rules: a bound on a ratio or a mean of the built-in series, judged per window on evidence.

A ratio that noise pushes across a fixed line is no reason to page anyone: a healthy carrier
with 36 % zero-duration calls shows 11 in 20 (55 %) now and then. So a rule fires only when
the evidence says the bound is crossed (see :mod:`sixminutes.evidence`):

* an upper bound (``op = ">"``) when the lower end of the interval of the ratio (Wilson) or
  of the mean (Student's t) at ``confidence`` is above it; a lower bound (``"<"``) when the
  upper end is below it;
* never with fewer than ``min_count`` samples in the window;
* and, for hysteresis, only once ``for_windows`` consecutive windows cross, unless one window
  crosses at ``strong_confidence`` (a carrier that fails outright is reported at once).

The lifecycle then keeps the incident open while the point estimate stays beyond the bound
(:meth:`Thresholds.verdict`), and resolves it after clean windows (:mod:`sixminutes.lifecycle`).
``confidence = 0`` and ``for_windows = 1`` give the seed's behaviour back: a window whose
ratio crosses the bound fires.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from itertools import repeat
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .call import Call as _Call
from .evidence import mean_interval, wilson_interval, z_of
from .stats import SeriesKeyError, key_maker, parsed_key, series_key
from .windows import WINDOW

if TYPE_CHECKING:
    from .batch import Batch
    from .call import Decoded
    from .store import Store

__all__ = ["Rule", "DEFAULT_RULES", "SEED_RULES", "rules_from_config", "Thresholds", "Crossing"]

SEVERITIES = ("critical", "warning", "info")


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
    confidence: float = 0.95
    """The two-sided confidence of the interval that must lie beyond the bound (0: the point)."""
    strong_confidence: float = 0.999
    """At this confidence one window is enough; below it, ``for_windows`` consecutive ones."""
    for_windows: int = 2
    _z: float = field(default=0.0, init=False, repr=False, compare=False)
    _strong_z: float = field(default=0.0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_z", z_of(self.confidence))
        object.__setattr__(self, "_strong_z", z_of(max(self.strong_confidence, self.confidence)))

    def to_json(self) -> dict[str, Any]:
        """The rule as GET /6minutes/status lists it."""
        return {"name": self.name, "series": self.series, "per": self.per, "op": self.op,
                "bound": self.bound, "min_count": self.min_count, "labels": list(self.labels),
                "severity": self.severity, "confidence": self.confidence,
                "strong_confidence": self.strong_confidence, "for_windows": self.for_windows}

    def crossed(self, value: float) -> bool:
        """Whether a point estimate is beyond the bound (what keeps an incident open)."""
        return value > self.bound if self.op == ">" else value < self.bound

    def evident(self, row: tuple[float, int, float], k: float | None, strong: bool = False) -> bool:
        """Whether the interval of a window's measure lies beyond the bound: ``row`` is the
        (sum, count, squares) of ``per`` for a ratio (``k`` the count of ``series``), else of
        ``series``."""
        z = self._strong_z if strong else self._z
        total, n, squares = row
        if k is None:
            low, high = mean_interval(total, n, squares, z)
        else:
            low, high = wilson_interval(k, n, z)  # type: ignore[arg-type]
        return low > self.bound if self.op == ">" else high < self.bound

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
             labels=("account", "direction"), severity="info"),
        Rule("mos", "mos", None, "<", 3.5, 10),
    )
}

SEED_RULES: dict[str, dict[str, Any]] = {
    name: {"confidence": 0, "for_windows": 1} for name in DEFAULT_RULES}
"""``[rules]`` tables that give the seed's fixed lines back (tests of the plumbing use them)."""


def rules_from_config(tables: dict[str, dict[str, Any]]) -> list[Rule]:
    """The default rules updated by ``[rules.<name>]`` tables; a new name defines a new rule
    (the names of the traffic rules configure those: :mod:`sixminutes.traffic_rules`)."""
    from .traffic_rules import TRAFFIC_NAMES  # (it reads no threshold rule: no cycle at import)

    rules = dict(DEFAULT_RULES)
    for name, table in tables.items():
        if name in TRAFFIC_NAMES:
            continue
        table = dict(table)
        if "labels" in table:
            table["labels"] = tuple(table["labels"])
        if table.get("op", ">") not in (">", "<"):
            raise ValueError(f"rule {name}: op must be '>' or '<'")
        for key in ("confidence", "strong_confidence"):
            value = table.get(key, 0.5)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
                raise ValueError(f"rule {name}: {key} must be a number in [0, 1), got {value!r}")
        base = rules.get(name)
        try:
            rules[name] = replace(base, **table) if base else Rule(name=name, **table)
        except TypeError as error:
            raise ValueError(f"rule {name}: {error}") from None
    for rule in rules.values():
        for key in ("min_count", "for_windows"):
            value = getattr(rule, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"rule {rule.name}: {key} must be a whole number ≥ 1, got {value!r}")
        if (not isinstance(rule.bound, (int, float)) or isinstance(rule.bound, bool)
                or not math.isfinite(rule.bound)):
            raise ValueError(f"rule {rule.name}: bound must be a number, got {rule.bound!r}")
        if rule.severity not in SEVERITIES:
            raise ValueError(f"rule {rule.name}: severity must be one of {', '.join(SEVERITIES)}, "
                             f"got {rule.severity!r}")
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


_CALL_FIELDS = frozenset(_Call.__struct_fields__)

Crossing = tuple[Rule, dict[str, str], float, int, int, "Decoded"]
"""(rule, labels, value, samples, window, sample CDR) of a window that fires."""
_Plan = tuple[Rule, tuple, str, "str | None"]


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
        self._groups = list(groups.items())
        self._by_labels = groups
        self._by_name = {rule.name: rule for rule in rules}
        self._touched: list[dict[tuple, tuple[Sequence[Decoded], int] | None]] = [
            {} for _ in self._groups]
        """Per label names: (window, label values) → where its sample CDR is (a batch's rows
        and a row: the CDR is built only for a window that fires), None when it has none."""
        self._plans: dict[tuple, list[_Plan]] = {}
        self._makers: dict[tuple[str, tuple[str, ...]], Callable[[tuple], str]] = {}
        self._fired: dict[int, set[tuple]] = {}

    def touch_batch(self, batch: Batch) -> None:
        """Remember that each (window, labels) of a batch needs checking; a group's first CDR
        is its sample."""
        rows = repeat(batch.decoded)
        for (names, _), touched in zip(self._groups, self._touched):
            groups = batch.groups(names)
            touched.update(zip(zip(groups.window_list, groups.label_list),
                               zip(rows, groups.first.tolist())))

    def touch_keys(self, timestamp: int, keys: list[str]) -> None:
        """Mark the label sets of changed series keys of a window for checking, with no
        sample CDR: a group's view changes by merged Stats, never by CDRs of its own."""
        for (names, rules), touched in zip(self._groups, self._touched):
            wanted = {name for rule in rules for name in (rule.series, rule.per) if name}
            for key in keys:
                try:
                    name, labels = parsed_key(key)
                except SeriesKeyError:
                    continue
                if name in wanted and all(n in labels for n in names):
                    touched.setdefault((timestamp, tuple(labels[n] for n in names)), None)

    def check(self, store: Store) -> list[Crossing]:
        """The windows that newly fire, oldest first within a (rule, labels): a window that
        completes a run of ``for_windows`` brings the run's earlier windows with it."""
        crossed: list[Crossing] = []
        plans = self._plans
        for (names, rules), touched in zip(self._groups, self._touched):
            window = cells = fired = None
            for (timestamp, values), sample in touched.items():
                if timestamp != window:  # (CDRs come mostly in order: one look per window)
                    window, cells = timestamp, store.peek(timestamp)
                    if cells is not None:  # (else the window was deleted meanwhile)
                        fired = self._fired.setdefault(timestamp, set())
                        sum_count = cells.sum_count
                if cells is None:
                    continue
                plan = plans.get((names, values)) or self._plan(names, values, rules)
                for rule, once, series, per in plan:
                    # most label sets (accounts) have too few samples: that look comes first
                    if sum_count(per or series)[1] < rule.min_count or once in fired:
                        continue
                    measured = _measure(rule, cells, series, per)
                    if measured is None or not rule.evident(*measured[2:]):
                        continue
                    run = self._run(rule, once, series, per, timestamp, store, measured)
                    if run is None:
                        continue
                    labels = dict(zip(names, values))
                    decoded = None if sample is None else sample[0][sample[1]]
                    for t, (value, samples, *_) in run:
                        self._fired.setdefault(t, set()).add(once)
                        crossed.append((rule, labels, value, samples, t, decoded))
            touched.clear()
        return crossed

    def _run(self, rule: Rule, once: tuple, series: str, per: str | None, timestamp: int,
             store: Store, measured: tuple) -> list[tuple[int, tuple]] | None:
        """The windows to fire with ``timestamp`` (itself and the unfired ones of its run), or
        None while the run is shorter than ``for_windows`` and the evidence not strong."""
        if rule.for_windows <= 1 or rule.evident(*measured[2:], strong=True):
            return [(timestamp, measured)]
        run = [(timestamp, measured)]
        for step in (-WINDOW, WINDOW):  # the consecutive windows crossing on either side
            t = timestamp + step
            while len(run) < rule.for_windows:
                if once in self._fired.get(t, ()):
                    return [(w, m) for w, m in run if once not in self._fired.get(w, ())]
                cells = store.peek(t)
                other = _measure(rule, cells, series, per) if cells is not None else None
                if other is None or not rule.evident(*other[2:]):
                    break
                run.append((t, other))
                t += step
        if len(run) < rule.for_windows:
            return None
        return sorted(run, key=lambda item: item[0])

    def verdict(self, rule_name: str, values: tuple, timestamp: int, store: Store) -> bool | None:
        """Whether a window keeps a rule's incident open for these label values: True when its
        measure is beyond the bound (on any number of samples: the incident was opened on
        evidence, and a thin window is no sign of recovery), False when within it on the
        rule's minimum samples, None otherwise (nothing to say)."""
        rule = self._by_name.get(rule_name)
        cells = store.peek(timestamp)
        if rule is None or cells is None or len(values) != len(rule.labels):
            return None  # (a rule removed, or labelled otherwise, since the alert was raised)
        plan = self._plans.get((rule.labels, values)) or self._plan(
            rule.labels, values, self._by_labels[rule.labels])
        for planned, _, series, per in plan:
            if planned is rule:
                measured = _measure(rule, cells, series, per, min_count=1)
                if measured is None:
                    return None
                if rule.crossed(measured[0]):
                    return True
                return False if measured[1] >= rule.min_count else None
        return None

    def _plan(self, names: tuple[str, ...], values: tuple, rules: list[Rule]) -> list[_Plan]:
        """Per rule: its once-key and series keys for these label values (kept: hot path)."""
        if len(self._plans) > 200_000:  # accounts come and go
            self._plans.clear()
        plan = self._plans[(names, values)] = [
            (rule, (rule.name, values), self._maker(rule.series, names)(values),
             self._maker(rule.per, names)(values) if rule.per else None) for rule in rules]
        return plan

    def _maker(self, series: str, names: tuple[str, ...]) -> Callable[[tuple], str]:
        """The series key of label values (in ``names``' order), for one series."""
        maker = self._makers.get((series, names))
        if maker is None:
            maker = self._makers[(series, names)] = key_maker(series, names)
        return maker

    def mark_fired(self, rule: str, timestamp: int, values: Any) -> None:
        """Remember a restored alert's crossing, so that it does not fire again."""
        self._fired.setdefault(timestamp, set()).add((rule, tuple(values or ())))

    def purge(self, before: int | None = None) -> None:
        for t in [t for t in self._fired if before is None or t < before]:
            del self._fired[t]
        for touched in self._touched:
            for key in [k for k in touched if before is None or k[0] < before]:
                del touched[key]


def _measure(rule: Rule, cells: Any, series: str, per: str | None, min_count: int | None = None
             ) -> tuple[float, int, tuple[float, int, float], float | None] | None:
    """(value, samples, (sum, count, squares), k) of a rule in one window's cells, the last two
    as :meth:`Rule.evident` takes them; None below ``min_count`` (the rule's) samples."""
    least = rule.min_count if min_count is None else min_count
    if per is not None:
        n = cells.sum_count(per)[1]
        if n < least:
            return None
        k = cells.sum_count(series)[0]  # (the seed's ratio: the series' sum over per's count)
        return k / n, n, (0.0, n, 0.0), k
    row = cells.stat_row(series)
    if row is None or int(row[1]) < least:
        return None
    total, n, squares = row[0], int(row[1]), row[2]
    return total / n, n, (total, n, squares), None
