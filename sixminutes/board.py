"""The carrier board: per window and profile × direction, the KPIs an operator reads first.

Derived from the built-in series only, so the replay report, the dashboard and the
Prometheus gauges all show the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .stats import Stat, parsed_key
from .store import Store

__all__ = ["CarrierRow", "carrier_rows", "ERROR_CODE_MIN"]

ERROR_CODE_MIN = 300
"""SIP codes from here up are errors for the "top codes" column."""


@dataclass
class CarrierRow:
    """One carrier (profile × direction) in one window."""

    timestamp: int
    profile: str
    direction: str
    stats: dict[str, Stat] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)

    def count(self, name: str) -> int:
        stat = self.stats.get(name)
        return stat.count if stat else 0

    def mean(self, name: str) -> float | None:
        stat = self.stats.get(name)
        return stat.mean if stat else None

    @property
    def calls(self) -> int:
        return self.count("calls")

    def ratio(self, name: str) -> float | None:
        return self.count(name) / self.calls if self.calls else None

    @property
    def asr(self) -> float | None:
        """Answer-seizure ratio: answered / calls."""
        return self.ratio("answered")

    @property
    def ner(self) -> float | None:
        """Network efficiency ratio: 1 − network failures / calls."""
        failures = self.ratio("network_failures")
        return None if failures is None else 1 - failures

    @property
    def zero_duration(self) -> float | None:
        return self.ratio("zero_duration")

    @property
    def acd(self) -> float | None:
        """Average call duration of the answered calls, in seconds (mean billsec)."""
        return self.mean("billsec")

    @property
    def pdd(self) -> float | None:
        """Mean post-dial delay in seconds."""
        mean = self.mean("pdd_ms")
        return None if mean is None else mean / 1000

    @property
    def mos(self) -> float | None:
        return self.mean("mos")

    @property
    def peak(self) -> int | None:
        """The most calls in progress at any second of the window (``peak_concurrent``)."""
        stat = self.stats.get("peak_concurrent")
        return int(stat.max) if stat is not None else None

    def top_codes(self, n: int = 3) -> list[tuple[str, int]]:
        """The most frequent SIP error codes (>= 300), most frequent first."""
        errors = [(code, count) for code, count in self.codes.items()
                  if code.isdigit() and int(code) >= ERROR_CODE_MIN]
        return sorted(errors, key=lambda item: (-item[1], item[0]))[:n]


_PER_CARRIER = ("calls", "answered", "zero_duration", "billsec", "short_calls", "pdd_ms",
                "network_failures", "mos", "sip_status", "peak_concurrent")


def carrier_rows(store: Store, start: int | None = None, end: int | None = None) -> list[CarrierRow]:
    """Rows for every window in [start, end] and carrier seen, by window then by calls."""
    rows: dict[tuple[int, str, str], CarrierRow] = {}
    for t, key, stat in store.items(start, end, names=_PER_CARRIER):
        name, labels = parsed_key(key)
        profile, direction = labels.get("profile", "unknown"), labels.get("direction", "unknown")
        row = rows.get((t, profile, direction))
        if row is None:
            row = rows[(t, profile, direction)] = CarrierRow(t, profile, direction)
        if name == "sip_status":
            row.codes[labels.get("code", "none")] = stat.count
        else:
            row.stats[name] = stat
    # (a carrier with calls only in progress, none ending in the window, has no row)
    return sorted((r for r in rows.values() if r.codes or set(r.stats) - {"peak_concurrent"}),
                  key=lambda r: (r.timestamp, -r.calls, r.profile, r.direction))
