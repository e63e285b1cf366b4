"""The replay report: what a person reads in a terminal after ``sixminutes replay``."""
from __future__ import annotations

import time
from typing import Any, TextIO

from .board import CarrierRow, carrier_rows
from .call import REASONS as DECODE_REASONS
from .engine import Engine
from .sources import csv_cdr, xml_cdr
from .sources.reading import PROBLEMS, Reading, Rejection

__all__ = ["write_report", "utc", "where_rejected", "all_rejections", "REASONS"]

REASONS = {**DECODE_REASONS, **xml_cdr.REASONS, **csv_cdr.REASONS, **PROBLEMS}
"""Every reason a replay counts a document (or a file) as not read, with what it means."""
LISTED = 20
"""Rejections the reader made listed per reason in the text report (--json lists all)."""

_COLUMNS = ("profile", "direction", "calls", "ASR%", "NER%", "zero%", "ACD s", "PDD s", "MOS",
            "top SIP errors")


def utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cells(row: CarrierRow) -> list[str]:
    codes = " ".join(f"{code}×{count}" for code, count in row.top_codes())
    return [row.profile, row.direction, str(row.calls), _pct(row.asr), _pct(row.ner),
            _pct(row.zero_duration), _num(row.acd), _num(row.pdd, 2), _num(row.mos, 2), codes or "-"]


def _table(rows: list[list[str]], out: TextIO, indent: str = "  ") -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [c.ljust(w) if i < 2 or i == len(r) - 1 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        out.write(indent + "  ".join(cells).rstrip() + "\n")


_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def _write_alerts(engine: Engine, out: TextIO, max_alerts: int) -> None:
    """One line per incident (rule or plugin, labels, first window to resolution): its worst
    window's message, the windows it spans, its state; most severe first, then the longest."""
    alerts = engine.alerts.list()
    incidents = engine.alerts.incidents()
    explained = sum(i.inhibited_by is not None for i in incidents)
    out.write(f"\nAlerts: {len(alerts)} records in {len(incidents)} incidents"
              f"{f' ({explained} explained by a carrier incident)' if explained else ''}; "
              "most severe first, then by how many windows they span\n")
    ranked = sorted(incidents, key=lambda i: (
        i.inhibited_by is not None, _SEVERITY.get(i.severity, 9), -i.windows, -i.count))
    for incident in ranked[:max_alerts]:
        first, last = incident.first_window, incident.last_window
        span = utc(first) if first == last else f"{utc(first)} → {utc(last)[11:]}"
        seen = f"{incident.windows} window{'s' if incident.windows > 1 else ''}"
        if incident.bound is None:
            seen += f", {incident.count} CDRs"
        seen += f", {incident.state}" if incident.state == "firing" else \
            f", resolved ({incident.resolution})"
        why = f"; explained by {incident.inhibited_by}" if incident.inhibited_by else ""
        out.write(f"  {incident.rule} [{incident.severity}]: {incident.msg}  [{seen}, {span}{why}]\n")
    if len(ranked) > max_alerts:
        out.write(f"  … and {len(ranked) - max_alerts} more incidents (all with --json)\n")


def _runs(rejections: list[Rejection]) -> list[tuple[str, str]]:
    """Rejections as (place, detail), those on following lines of a file with the same detail
    joined: `Master.csv:1-14 (14 rows)`."""
    runs: list[list[Any]] = []  # [file, first line, last line, detail] or [where, None, None, detail]
    for r in rejections:
        path, _, line = r.where.rpartition(":")
        number = int(line) if line.isdigit() and path else None
        last = runs[-1] if runs else None
        if (number is not None and last is not None and last[1] is not None
                and last[0] == path and last[2] + 1 == number and last[3] == r.detail):
            last[2] = number
        elif number is None:
            runs.append([r.where, None, None, r.detail])
        else:
            runs.append([path, number, number, r.detail])
    return [(f"{p}:{a}" if a == b else f"{p}:{a}-{b} ({b - a + 1} rows)" if a is not None else p,
             detail) for p, a, b, detail in runs]


def all_rejections(engine: Engine, reading: Reading) -> list[Rejection]:
    """Every rejection kept with its place: the records the reader could not use, then the
    documents the engine rejected (the first ``KEPT_REJECTIONS`` of each reason), in order."""
    kept = [Rejection(reading.where(at) or f"document {at}", reason, detail)
            for at, reason, detail in engine.rejections]
    return [*reading.rejections, *kept]


def where_rejected(engine: Engine, reading: Reading) -> dict[str, dict[str, Any]]:
    """Reason -> where its first and last rejected documents were read (``file:line``).

    The engine keeps the number of the first and the last document of each reason; the
    reader knows where each number was read. Rejections the reader made itself (XML, CSV,
    files) are each in ``reading.rejections``, with their place."""
    share = engine.share()
    places: dict[str, dict[str, Any]] = {}
    for (_source, outcome), at in share.first_seen.items():
        if outcome != "accepted":
            places.setdefault(outcome, {})["first"] = reading.where(at)
    for reason, (at, detail) in share.last_rejection.items():
        places.setdefault(reason, {}).update(last=reading.where(at), last_detail=detail)
    for r in reading.rejections:
        place = places.setdefault(r.reason, {})
        place.setdefault("first", r.where)
        place.update(last=r.where, last_detail=r.detail)
    for p in reading.problems:
        place = places.setdefault(p.reason, {})
        place.setdefault("first", p.path)
        place.update(last=p.path, last_detail=p.detail)
    return places


def write_report(engine: Engine, out: TextIO, max_alerts: int = 100,
                 reading: Reading | None = None) -> None:
    """Windows with their carriers, then alerts, then rejected documents by reason, with
    where they were read when ``reading`` says it, and the files not read to their end."""
    rows = carrier_rows(engine.store)
    rejected = sum(engine.rejected.values())
    out.write(f"sixminutes replay: {engine.accepted} CDRs accepted, {rejected} rejected, "
              f"{len(engine.store.windows())} windows of 6 minutes\n")
    by_window: dict[int, list[CarrierRow]] = {}
    for row in rows:
        by_window.setdefault(row.timestamp, []).append(row)
    for t, window_rows in by_window.items():
        out.write(f"\n{utc(t)}–{utc(t + 360)[11:]} UTC  (window {t})\n")
        _table([list(_COLUMNS)] + [_cells(r) for r in window_rows], out)

    _write_alerts(engine, out, max_alerts)

    out.write(f"\nRejected: {rejected}\n")
    places = where_rejected(engine, reading) if reading is not None else {}
    every = all_rejections(engine, reading) if reading is not None else []
    for reason, count in engine.rejected.most_common():
        meaning = REASONS.get(reason, "")
        at = places.get(reason, {})
        example = engine.last_rejection.get(reason) or at.get("last_detail") or ""
        if at.get("first") and at.get("last") and at["first"] != at["last"]:
            example = f" — first at {at['first']}, last at {at['last']}: {example[:80]}"
        elif at.get("last"):
            example = f" — at {at['last']}: {example[:80]}"
        else:
            example = f" — last: {example[:80]}" if example else ""
        out.write(f"  {reason:<14} {count:>7}  {meaning}{example}\n")
        listed = _runs([r for r in every if r.reason == reason])
        if len(listed) == 1 and at.get("last"):
            listed = []  # (the line above says where)
        for where, detail in listed[:LISTED]:
            out.write(f"      {where}: {detail[:100]}\n")
        if len(listed) > LISTED:
            out.write(f"      … and {len(listed) - LISTED} more (all with --json)\n")

    if reading is not None and reading.problems:
        out.write(f"\nFiles not read to their end: {len(reading.problems)} (exit status 1)\n")
        for problem in reading.problems:
            out.write(f"  {problem.path}: {problem.reason}: {problem.detail}\n")

    broken = [p for p in engine.plugins.plugins if p.errors]
    if broken or engine.plugins.errors:
        out.write("\nPlugin problems:\n")
        for error in engine.plugins.errors:
            out.write(f"  failed to load {error}\n")
        for p in broken:
            out.write(f"  {p.name}: {p.errors} errors, last: {p.last_error}\n")
