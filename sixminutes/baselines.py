"""Baselines: a series' value against the same window yesterday and over the last seven days.

The baseline of a count series (``calls``, ``account_calls``, ``destination_calls``…) in a
window is read at the same time of day on earlier days: ``yesterday`` (24 hours before) and
``median`` (the median over the last seven days that have history; ``days`` says how many).
A day has history when the store still holds that window (a replay holds every window; the
live service 24 hours of them) or the :class:`History` holds its hour: the windows the
service purges are folded into hourly counts kept for eight days, with which windows of the
hour were folded and, per series, which had calls (a bit each): a window the service held
where the series had no call reads 0, a window it never held (nothing counted then) None,
and the others the series' calls of the hour over the windows it had calls in (exact when
it had calls in one, or as many in each; :mod:`sixminutes.history`). A carrier absent from
a window that has history called 0 times then; a day without any history is no evidence at
all (None). The service saves the hours that changed with each snapshot and restores them
at start (:meth:`History.take`, :meth:`History.restore`), so a restart, even a ``kill -9``,
keeps the baselines.

The **traffic rules** (:mod:`sixminutes.traffic_rules`, each settable in the configuration)
compare a complete window's count with its baseline: ``traffic_drop`` when the count is
evidently below ``ratio`` times the baseline (a carrier whose calls fall to a fifth, with no
SIP error at all), ``traffic_spike`` when evidently above ``ratio`` times it. The evidence is that of the other rules (:mod:`sixminutes.thresholds`): given ``k``
calls now and a baseline ``b``, ``k`` of the ``k + b`` is binomial with ``p = r / (1 + r)``
for a rate ratio ``r``; the Wilson interval of ``p`` at ``confidence`` bounds ``r``. It
takes ``min_count`` calls (in the baseline for a drop, now for a spike), and two windows in a
row beyond the ratio and evident together (their counts and baselines added up) unless one
is evident alone at ``strong_confidence``.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .history import DAY, HISTORY_DAYS, HOUR, History
from .stats import SeriesKeyError, cached_key, parsed_key
from .traffic_rules import TRAFFIC_RULES, TrafficRule
from .windows import WINDOW

if TYPE_CHECKING:
    from .batch import Batch
    from .store import Cells, Store

__all__ = ["History", "Baseline", "baseline", "TrafficRule", "TRAFFIC_RULES", "Traffic",
           "DAY", "HISTORY_DAYS"]

_HELD: set[tuple[int, str, int]] = set()  # (window, series name, id of its cells) with calls


def _holds(cells: Cells, window: int, name: str) -> bool:
    """Whether a window's cells have the series at all (a window may hold only calls in
    progress, peak_concurrent: no history of calls); a yes is kept."""
    mark = (window, name, id(cells))
    if mark in _HELD:
        return True
    prefix = name + "{"
    if any(key.startswith(prefix) for key in cells.keys()):
        if len(_HELD) > 100_000:
            _HELD.clear()
        _HELD.add(mark)
        return True
    return False


def count_at(store: Store, history: History | None, window: int, key: str) -> float | None:
    """The count of a series in a window: from the store, else the mean of the windows of
    its hour in the history; None when neither has that time at all."""
    cells = store.peek(window)
    if cells is not None:
        count = cells.sum_count(key)[1]
        if count or _holds(cells, window, key.split("{", 1)[0]):
            return float(count)
    return history.per_window(window, key) if history is not None else None


@dataclass(frozen=True)
class Baseline:
    """A value and what it is compared with."""

    value: float
    yesterday: float | None
    median: float | None
    days: int
    """The days of the last seven with history (the median is over them)."""

    @property
    def expected(self) -> float | None:
        """What the rules compare with: the median over three days or more, else yesterday."""
        return self.median if self.days >= 3 else self.yesterday

    def to_json(self) -> dict[str, float | int | None]:
        return {"value": self.value, "yesterday": self.yesterday, "median": self.median,
                "days": self.days}


def past_days(store: Store, history: History | None, window: int) -> list[int]:
    """The days of the last seven whose same window the store or the history holds at all:
    the only ones :func:`count_at` can find a count in (the rest are None for every key)."""
    return [d for d in range(1, 8)
            if store.peek(window - d * DAY) is not None
            or (history is not None and history.per_window(window - d * DAY, "") is not None)]


def baseline(store: Store, history: History | None, window: int, key: str,
             days: list[int] | None = None) -> Baseline:
    """A count series' value in a window, beside the same window yesterday and over 7 days
    (``days``: :func:`past_days`, when the caller judges many keys of one window)."""
    value = count_at(store, history, window, key) or 0.0
    if days is None:
        days = past_days(store, history, window)
    past = [count_at(store, history, window - d * DAY, key) if d in days else None
            for d in range(1, 8)]
    known = [v for v in past if v is not None]
    return Baseline(value, past[0], statistics.median(known) if known else None, len(known))


Crossing = tuple[TrafficRule, dict[str, str], int, str, dict]
"""(rule, labels, window, message, the alert's fields) of a window that fires."""


class Traffic:
    """Judges each complete window once against its baseline, oldest first.

    The label sets to judge come from the batches counted (:meth:`touch_batch`): for a
    spike, those with calls in the window; for a drop, also those with calls the same
    window yesterday or a week ago (a carrier that went silent has no CDR to say so), kept
    eight days for the drop rules (carriers: a few hundred label sets a window). A window
    no batch touched (restored after a restart) is read from the store's keys instead."""

    def __init__(self, rules: tuple[TrafficRule, ...] = TRAFFIC_RULES,
                 history: History | None = None) -> None:
        self.rules = rules
        self.history = history if history is not None else History()
        self.judged: int | None = None
        """The next window to judge (None: the oldest one the store holds)."""
        self._seen: list[dict[int, dict[tuple, int]]] = [{} for _ in rules]
        """Per rule: window → label values → the calls batches counted (a spike needs many)."""
        self._evident: dict[tuple, dict[int, tuple[float, float]]] = {}
        """(rule, labels) → the latest windows beyond the ratio: (count, baseline)."""
        self._fired: set[tuple] = set()
        self._newest = 0
        self._thin: set[int] = set()  # windows whose spike label sets were thinned
        self._late: dict[str, int] = {}
        """Rule → the window it judges from, before ``judged``: a rule enabled since the
        judgement a restart resumed (:meth:`resume`), which has not judged those windows."""

    def touch_batch(self, batch: Batch) -> None:
        """Remember the label sets a batch counted, per window and rule; for a spike, of the
        windows the data has left behind (two windows back), only those with ``min_count``
        calls (a replay judges at its end: thousands of accounts a window otherwise)."""
        newest = int(batch.window.max()) if batch.n else 0
        if newest > self._newest:
            self._newest = newest
            for rule, seen in zip(self.rules, self._seen):
                if rule.op == ">":
                    for t in [t for t in seen if t < newest - 2 * WINDOW and t not in self._thin]:
                        seen[t] = {k: n for k, n in seen[t].items() if n >= rule.min_count}
                        self._thin.add(t)
        for rule, seen in zip(self.rules, self._seen):
            groups = batch.groups(rule.labels)
            calls = np.bincount(groups.inverse, minlength=groups.size).tolist()
            for window, labels, n in zip(groups.window_list, groups.label_list, calls):
                found = seen.get(window)
                if found is None:
                    found = seen[window] = {}
                found[labels] = found.get(labels, 0) + n

    def absorb(self, other: Traffic) -> None:
        """Add the label sets another engine's batches counted (a share of a parallel replay:
        the join judges every window, and reads them rather than every key of the store)."""
        for mine, theirs in zip(self._seen, other._seen):
            for window, counted in theirs.items():
                found = mine.setdefault(window, {})
                for labels, n in counted.items():
                    found[labels] = found.get(labels, 0) + n

    def check(self, store: Store, complete: int) -> list[Crossing]:
        """Judge the windows before ``complete`` not judged yet; return those that fire."""
        held = store.windows()
        if not held:
            return []
        start = held[0] if self.judged is None else self.judged
        first = min([start, *self._late.values()])
        # the windows held, and every window of the last two hours (a silence holds none)
        recent = range(max(first, complete - 2 * HOUR), complete, WINDOW)
        crossed: list[Crossing] = []
        for window in sorted({t for t in held if first <= t < complete}.union(recent)):
            crossed += self._judge(store, window, late=window < start)
        window = self.judged = max(start, complete)
        self._late = {}
        for rule, seen in zip(self.rules, self._seen):
            keep = window - (8 * DAY if rule.op == "<" else 0)
            for t in [t for t in seen if t < keep]:
                del seen[t]
        self._thin = {t for t in self._thin if t >= window}
        return crossed

    def export(self) -> dict[str, Any] | None:
        """What a restart needs to judge no window twice and to go on with the runs under way,
        for the state file: the next window to judge, and of the last windows (as far back as
        a run reaches) the crossings seen and those that fired. None before any judgement."""
        if self.judged is None:
            return None
        since = self.judged - max((r.for_windows for r in self.rules), default=1) * WINDOW
        evident = [[name, list(labels), [[t, k, b] for t, (k, b) in sorted(crossed.items())
                                         if t >= since]]
                   for (name, labels), crossed in self._evident.items()
                   if any(t >= since for t in crossed)]
        fired = [[name, list(labels), t] for (name, labels), t in self._fired if t >= since]
        return {"version": 1, "judged": self.judged, "rules": [r.name for r in self.rules],
                "evident": sorted(evident), "fired": sorted(fired)}

    def resume(self, data: Any) -> None:
        """Take back what :meth:`export` saved (after the state's alerts are restored): the
        windows before ``judged`` are not judged again, so what fired before a restart, even
        a ``kill -9`` after the snapshot that saved it, is not raised (nor notified) twice.
        A rule enabled since judges from where a restart without it would (``judged`` as the
        engine's restore set it: the newest window restored). Data of another shape is
        ignored: the restored windows are judged as if new."""
        if not isinstance(data, dict) or data.get("version") != 1:
            return
        try:
            judged = int(data["judged"])
            evident = {(str(name), tuple(labels)): {int(t): (float(k), float(b)) for t, k, b in rows}
                       for name, labels, rows in data["evident"]}
            fired = {((str(name), tuple(labels)), int(t)) for name, labels, t in data["fired"]}
            known = {str(name) for name in data["rules"]}
        except (KeyError, TypeError, ValueError):
            return
        if self.judged is not None and self.judged < judged:
            self._late = {r.name: self.judged for r in self.rules if r.name not in known}
        self.judged = judged
        self._evident.update(evident)
        self._fired |= fired

    def mark_fired(self, rule: str, labels: Any, window: int) -> None:
        """A restored alert of a traffic rule: its window does not fire again (a state file
        saved without :meth:`export`, or whose windows are judged again)."""
        self._fired.add(((rule, tuple(labels or ())), window))

    def forget(self, before: int | None) -> None:
        """DELETE /6minutes/data erased the windows before ``before`` (all when None): forget
        what the rules learned from them too, the hourly history and the label sets and runs
        of those windows, so that no later judgement compares with erased counts. (Which
        windows were judged, and which crossings fired, stay: the alerts are not erased.)"""
        self.history.forget(before)
        for seen in self._seen:
            for t in [t for t in seen if before is None or t < before]:
                del seen[t]
        for crossed in self._evident.values():
            for t in [t for t in crossed if before is None or t < before]:
                del crossed[t]
        _HELD.clear()  # (it remembers cells by id: a new window's cells may reuse the id)

    def keep(self, store: Store, before: int, newest: int) -> None:
        """The store's windows before ``before`` are about to be purged: fold them into the
        hourly history, and forget what is more than eight days old."""
        for t in store.windows():
            if t < before:
                keys, table = store.peek(t).rows_table()  # type: ignore[union-attr]
                self.history.fold(t, keys, table[:, 1].tolist())
        self.history.purge(newest)
        self._fired = {f for f in self._fired if f[1] >= before - 8 * DAY}

    def _judge(self, store: Store, window: int, late: bool = False) -> Iterator[Crossing]:
        """The crossings of a window; ``late``: a window judged before, by the rules of
        ``_late`` alone."""
        days = past_days(store, self.history, window)
        for rule, seen in zip(self.rules, self._seen):
            if late and window < self._late.get(rule.name, window + 1):
                continue
            cells = store.peek(window)
            for labels in self._candidates(store, rule, seen, window):
                named = dict(zip(rule.labels, labels))
                key = cached_key(rule.series, named)
                if rule.op == ">" and (cells is None or cells.sum_count(key)[1] < rule.min_count):
                    continue  # (most accounts: too few calls to be a spike)
                now = baseline(store, self.history, window, key, days)
                b = now.expected
                subject = (rule.name, labels)
                crossed = self._evident.setdefault(subject, {})
                for t in [t for t in crossed if t <= window - rule.for_windows * WINDOW]:
                    del crossed[t]
                if b is None or not rule.crossed(now.value, b):
                    continue
                crossed[window] = (now.value, b)
                run = [window - i * WINDOW for i in range(rule.for_windows)]
                if rule.evident(now.value, b, strong=True):
                    run = [window]
                elif not all(t in crossed for t in run) or not rule.evident(
                        sum(crossed[t][0] for t in run), sum(crossed[t][1] for t in run)):
                    continue
                for t in sorted(run):
                    if (subject, t) not in self._fired:
                        self._fired.add((subject, t))
                        k, b = crossed[t]
                        yield rule, named, t, rule.describe(named, k, b), {
                            "rule": rule.name, "labels": named, "value": k, "baseline": b,
                            "ratio": rule.ratio, "severity": rule.severity}

    def _candidates(self, store: Store, rule: TrafficRule, seen: dict[int, dict[tuple, int]],
                    window: int) -> set[tuple]:
        """The label sets with calls now (a spike: ``min_count`` of them), or (a drop) also
        yesterday or a week ago."""
        found: set[tuple] = set()
        for t in (window, window - DAY, window - 7 * DAY) if rule.op == "<" else (window,):
            touched = seen.get(t)
            if touched is not None:
                if rule.op == ">":
                    least = rule.min_count
                    found.update(labels for labels, n in touched.items() if n >= least)
                else:
                    found.update(touched)
                continue
            cells = store.peek(t)
            keys = cells.keys() if cells is not None else self._history_keys(t)
            prefix = rule.series + "{"
            for key in keys:
                if key.startswith(prefix):
                    try:
                        _, labels = parsed_key(key)
                    except SeriesKeyError:
                        continue
                    if set(labels) == set(rule.labels):
                        found.add(tuple(labels[name] for name in rule.labels))
        return found

    def _history_keys(self, window: int) -> list[str]:
        hour = self.history.hours.get(window - window % HOUR)
        return list(hour) if hour is not None else []
