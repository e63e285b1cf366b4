"""The traffic rules: a count against its baseline, and how the configuration changes them.

The three rules (``traffic_drop``, ``traffic_spike``, ``account_volume_spike``) are judged by
:class:`sixminutes.baselines.Traffic`. Each is settable in the configuration under the same
``[rules.<name>]`` tables as the threshold rules (an operator names an alert by its rule,
whichever kind it is)::

    [rules.traffic_drop]
    ratio = 0.3              # fires below 30 % of the baseline (default 0.5)
    min_count = 50           # calls in the baseline, at least (a spike: calls now)
    confidence = 0.95
    strong_confidence = 0.999
    for_windows = 2
    severity = "critical"
    enabled = true

A key a traffic rule does not have, or a value out of range, is a ValueError that names the
rule and the key (the CLI reports it as a configuration error before anything starts).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from .evidence import wilson_interval, z_of

__all__ = ["TrafficRule", "TRAFFIC_RULES", "TRAFFIC_NAMES", "traffic_rules_from_config"]


@dataclass(frozen=True)
class TrafficRule:
    """A bound on a count against its baseline: below ``ratio`` of it (``op = "<"``) or above."""

    name: str
    series: str
    labels: tuple[str, ...]
    op: str
    ratio: float
    min_count: int = 20
    severity: str = "warning"
    confidence: float = 0.95
    strong_confidence: float = 0.999
    for_windows: int = 2
    _z: float = field(default=0.0, init=False, repr=False, compare=False)
    _strong_z: float = field(default=0.0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_z", z_of(self.confidence))
        object.__setattr__(self, "_strong_z", z_of(max(self.strong_confidence, self.confidence)))

    def evident(self, k: float, b: float, strong: bool = False) -> bool:
        """Whether ``k`` calls against a baseline of ``b`` are surely beyond the ratio."""
        if (b if self.op == "<" else k) < self.min_count:
            return False
        n = round(k) + round(b)
        low, high = wilson_interval(round(k), n, self._strong_z if strong else self._z)
        if self.op == "<":
            return high < self.ratio / (1 + self.ratio)
        return low > self.ratio / (1 + self.ratio)

    def crossed(self, k: float, b: float) -> bool:
        """Whether ``k`` calls against a baseline of ``b`` are beyond the ratio (the point)."""
        return k < self.ratio * b if self.op == "<" else k > self.ratio * b

    def describe(self, labels: dict[str, str], k: float, b: float) -> str:
        where = " ".join(v for name, v in labels.items() if name != "direction")
        where = f"{where} ({labels['direction']})" if "direction" in labels else where
        what = "drop" if self.op == "<" else "spike"
        share = f"{k / b:.0%} of" if b else "none in"
        return f"{where}: traffic {what}: {k:g} {self.series} in the window, {share} its baseline {b:g}"

    def to_json(self) -> dict[str, Any]:
        """The rule as GET /6minutes/status lists it (``traffic_rules``)."""
        return {"name": self.name, "series": self.series, "labels": list(self.labels),
                "op": self.op, "ratio": self.ratio, "min_count": self.min_count,
                "severity": self.severity, "confidence": self.confidence,
                "strong_confidence": self.strong_confidence, "for_windows": self.for_windows}


TRAFFIC_RULES = (
    TrafficRule("traffic_drop", "calls", ("direction", "profile"), "<", 0.5, severity="critical"),
    TrafficRule("traffic_spike", "calls", ("direction", "profile"), ">", 3.0),
    TrafficRule("account_volume_spike", "account_calls", ("account", "direction"), ">", 3.0),
)
"""Carrier drop and spike, and an account's sudden volume (a fraud signal)."""

TRAFFIC_NAMES = frozenset(rule.name for rule in TRAFFIC_RULES)
"""The ``[rules.<name>]`` tables that configure a traffic rule, not a threshold rule."""

_SEVERITIES = ("critical", "warning", "info")
_KEYS = ("ratio", "min_count", "confidence", "strong_confidence", "for_windows", "severity",
         "enabled")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check(rule: TrafficRule) -> None:
    """Each value in its range; the first one that is not names its rule and key."""
    where = f"rule {rule.name}"
    if not _number(rule.ratio) or rule.ratio <= 0:
        raise ValueError(f"{where}: ratio must be a number above 0, got {rule.ratio!r}")
    if rule.op == "<" and rule.ratio >= 1:
        raise ValueError(f"{where}: ratio must be below 1 for a drop (the share of the baseline "
                         f"left), got {rule.ratio!r}")
    if rule.op == ">" and rule.ratio <= 1:
        raise ValueError(f"{where}: ratio must be above 1 for a spike (times the baseline), "
                         f"got {rule.ratio!r}")
    for key in ("min_count", "for_windows"):
        if not _whole(getattr(rule, key)):
            raise ValueError(f"{where}: {key} must be a whole number ≥ 1, got {getattr(rule, key)!r}")
    for key in ("confidence", "strong_confidence"):
        value = getattr(rule, key)
        if not _number(value) or not 0 <= value < 1:
            raise ValueError(f"{where}: {key} must be a number in [0, 1), got {value!r}")
    if rule.severity not in _SEVERITIES:
        raise ValueError(f"{where}: severity must be one of {', '.join(_SEVERITIES)}, "
                         f"got {rule.severity!r}")


def traffic_rules_from_config(tables: dict[str, dict[str, Any]]) -> tuple[TrafficRule, ...]:
    """The traffic rules, changed by the ``[rules.<name>]`` tables of their names (the other
    tables are threshold rules: :func:`sixminutes.thresholds.rules_from_config`)."""
    rules = []
    for default in TRAFFIC_RULES:
        table = dict(tables.get(default.name, {}))
        unknown = sorted(set(table) - set(_KEYS))
        if unknown:
            raise ValueError(f"rule {default.name}: unknown key {unknown[0]!r} (a traffic rule "
                             f"takes {', '.join(_KEYS)})")
        enabled = table.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError(f"rule {default.name}: enabled must be true or false, got {enabled!r}")
        for key in ("confidence", "strong_confidence"):  # (checked before z_of reads them)
            value = table.get(key, 0.5)
            if not _number(value) or not 0 <= value < 1:
                raise ValueError(f"rule {default.name}: {key} must be a number in [0, 1), "
                                 f"got {value!r}")
        rule = replace(default, **table)
        _check(rule)
        if enabled:
            rules.append(rule)
    return tuple(rules)
