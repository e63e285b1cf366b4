"""What the API shows of baselines: values beside them, the top destinations and the movers.

Read from the store (and the coarse history) when asked; nothing here is counted.
``/6minutes/baselines`` and ``/6minutes/destinations`` serve these (see docs/api.md).
"""
from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from .baselines import DAY, History, baseline, count_at
from .stats import SeriesKeyError, parsed_key
from .windows import WINDOW

if TYPE_CHECKING:
    from .store import Store

__all__ = ["baselines", "destinations", "last_complete"]


def last_complete(store: Store) -> int | None:
    """The newest window before the newest one held (the newest may still be filling)."""
    windows = store.windows()
    return windows[-1] - WINDOW if windows else None


def _keys(store: Store, window: int, name: str) -> list[tuple[str, dict[str, str]]]:
    cells = store.peek(window)
    found = []
    prefix = name + "{"
    for key in cells.keys() if cells is not None else ():
        if key.startswith(prefix):
            try:
                found.append((key, parsed_key(key)[1]))
            except SeriesKeyError:
                continue
    return found


def baselines(store: Store, history: History | None, window: int, name: str = "calls",
              labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Each series ``name`` with calls in the window or the same window yesterday (held by the
    store, or past retention in the hourly history: a carrier gone silent is listed): its
    labels, its value, yesterday's, the median of the last seven days and how many days had
    history; by value, largest first."""
    found = dict(_keys(store, window, name))
    found.update((k, v) for k, v in _keys(store, window - DAY, name) if k not in found)
    if history is not None and store.peek(window - DAY) is None:
        for key in history.hours.get((window - DAY) - (window - DAY) % 3600, {}):
            if key.startswith(name + "{") and key not in found:
                try:
                    found[key] = parsed_key(key)[1]
                except SeriesKeyError:
                    continue
    rows = []
    for key, named in found.items():
        if labels and any(named.get(k) != v for k, v in labels.items()):
            continue
        rows.append({"series": key, "labels": named,
                     **baseline(store, history, window, key).to_json()})
    rows.sort(key=lambda row: (-row["value"], row["series"]))
    return rows


def _per_country(store: Store, history: History | None, window: int, name: str
                 ) -> dict[str, float] | None:
    """A destination series summed over carriers, per country; None without history then."""
    cells = store.peek(window)
    if cells is None and (history is None or history.per_window(window, "") is None):
        return None
    totals: dict[str, float] = {}
    keys = _keys(store, window, name) if cells is not None else [
        (k, parsed_key(k)[1]) for k in history.hours[window - window % 3600]  # type: ignore
        if k.startswith(name + "{")]
    for key, named in keys:
        count = count_at(store, history, window, key) or 0.0
        country = named.get("country", "unknown")
        totals[country] = totals.get(country, 0.0) + count
    return totals


def destinations(store: Store, history: History | None, window: int, limit: int = 10,
                 min_calls: int = 20) -> dict[str, Any]:
    """The top destinations of a window (calls, answered, ASR per country, over every
    carrier), and the movers: the countries whose calls moved most against their baseline
    (the median of the days with history, else yesterday), or whose ASR moved most against
    yesterday's, among those with ``min_calls`` calls now or in the baseline."""
    calls = _per_country(store, None, window, "destination_calls") or {}
    answered = _per_country(store, None, window, "destination_answered") or {}
    past = [_per_country(store, history, window - d * DAY, "destination_calls") for d in range(1, 8)]
    known = [p for p in past if p is not None]
    yesterday_answered = _per_country(store, None, window - DAY, "destination_answered") or {}
    top = []
    for country, n in sorted(calls.items(), key=lambda item: (-item[1], item[0]))[:limit]:
        top.append({"country": country, "calls": n, "answered": answered.get(country, 0.0),
                    "asr": answered.get(country, 0.0) / n if n else None})
    movers = []
    for country in set(calls) | {c for p in known for c in p}:
        now = calls.get(country, 0.0)
        days = [p.get(country, 0.0) for p in known]
        expected = (statistics.median(days) if len(days) >= 3 else past[0].get(country, 0.0)
                    if past[0] is not None else None)
        if expected is None or max(now, expected) < min_calls:
            continue
        before = past[0].get(country, 0.0) if past[0] is not None else 0.0
        asr = answered.get(country, 0.0) / now if now else None
        asr_before = yesterday_answered.get(country, 0.0) / before if before else None
        movers.append({"country": country, "calls": now, "baseline": expected,
                       "change": now - expected,
                       "ratio": now / expected if expected else None,
                       "asr": asr, "asr_yesterday": asr_before,
                       "asr_change": asr - asr_before if asr is not None and asr_before is not None
                       else None})
    movers.sort(key=lambda m: (-max(abs(m["change"]) / max(m["baseline"], 1.0),
                                    abs(m["asr_change"] or 0.0)), m["country"]))
    return {"window": window, "days": len(known), "top": top, "movers": movers[:limit]}

