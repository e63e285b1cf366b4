"""FreeSWITCH mod_cdr_csv files, each row as the dict mod_json_cdr would have written.

mod_cdr_csv writes one line per call leg from a template of channel variables
(``"${caller_id_name}","${caller_id_number}",...``) and no header, so the columns are not in
the file: they come from the template named by ``--csv-template`` (the stock ones of
cdr_csv.conf.xml below; ``example`` is FreeSWITCH's default) or from ``--csv-columns``. Its
stamps (``end_stamp`` ...) are local time of the switch, read in ``--timezone`` (default:
this machine's zone); a template with ``end_epoch`` needs no zone. A row becomes
``{"variables": {column: value}}`` plus the ``*_epoch`` variables its stamps give, so the
engine decodes it as a JSON CDR; what a template lacks falls back as for JSON (profile and
direction ``unknown`` in the stock templates). ``caller_id_number`` and ``destination_number``
stand in for ``sip_from_user`` and ``sip_to_user`` when those are not columns (the call's
from and to, and so its destination country). CSV values are not URL-encoded, so a ``%`` in
one is written ``%25`` for the engine's decoding to give it back.
"""
from __future__ import annotations

import csv
import io
import os
import re
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["TEMPLATES", "CsvLayout", "REASONS", "layout", "looks_like_csv", "zone"]

_EXAMPLE = ("caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp",
            "answer_stamp", "end_stamp", "duration", "billsec", "hangup_cause", "uuid",
            "bleg_uuid", "accountcode", "read_codec", "write_codec")
TEMPLATES: dict[str, tuple[str, ...]] = {
    "example": _EXAMPLE,
    "sql": _EXAMPLE[:13],  # the same first 13, inside INSERT INTO cdr VALUES (...);
    "snom": _EXAMPLE + ("sip_user_agent", "call_clientcode", "sip_rtp_rxstat", "sip_rtp_txstat",
                        "sofia_record_file"),
    "linksys": _EXAMPLE + ("sip_user_agent", "sip_p_rtp_stat"),
    "asterisk": ("accountcode", "caller_id_number", "destination_number", "context", "caller_id",
                 "channel_name", "bridge_channel", "last_app", "last_arg", "start_stamp",
                 "answer_stamp", "end_stamp", "duration", "billsec", "hangup_cause", "amaflags",
                 "uuid", "userfield"),
    "opencdrrate": ("uuid", "signal_bond", "direction", "ani", "destination_number",
                    "answer_stamp", "end_stamp", "billsec", "accountcode", "userfield",
                    "network_addr", "", "sip_gateway_name"),  # ("": a regex of the caller name)
}
"""The columns of the templates in FreeSWITCH's stock cdr_csv.conf.xml."""
REASONS = {"bad_csv": "a CSV row that does not fit the columns (--csv-template, --csv-columns)"}
_STAMPS = {"start_stamp": "start_epoch", "answer_stamp": "answer_epoch", "end_stamp": "end_epoch",
           "progress_stamp": "progress_epoch", "progress_media_stamp": "progress_media_epoch"}
_NUMBERS = (("caller_id_number", "sip_from_user"), ("destination_number", "sip_to_user"))
_STAMP = re.compile(r"\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*$")
_SQL = re.compile(r"\s*INSERT\s+INTO\s+\S+\s+VALUES\s*\((.*)\)\s*;?\s*$", re.I | re.S)
_NAME = re.compile(r"\$\{([^}]*)\}")


def zone(name: str | None) -> ZoneInfo | None:
    """The zone of ``--timezone`` (None: not given); ValueError naming what is wrong."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Paris or "
                         f"UTC): {error}") from None


def local_zone() -> ZoneInfo | None:
    """This machine's zone as zoneinfo reads it ($TZ, else /etc/localtime), so that a stamp in
    the hour a DST change repeats reads as its first occurrence, as with --timezone; None when
    it cannot be told (a POSIX TZ rule): then the C library's mktime reads the stamps."""
    name = os.environ.get("TZ", "").removeprefix(":")
    try:
        if name:
            if os.path.isabs(name):
                with open(name, "rb") as file:
                    return ZoneInfo.from_file(file, key=name)
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as file:
            return ZoneInfo.from_file(file, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return None


def looks_like_csv(path: str, content: bytes) -> bool:
    """mod_cdr_csv output: a ``.csv`` name (rotated ``Master.csv.<date>`` too), or a first line
    that opens a quoted field or an SQL INSERT (the sql template)."""
    name = path.lower().removesuffix(".gz")
    return (name.endswith(".csv") or ".csv." in name or content[:1] == b'"'
            or content[:11].upper() == b"INSERT INTO")


class CsvLayout:
    """The columns of a mod_cdr_csv file and the zone of its stamps."""

    def __init__(self, columns: Sequence[str], name: str, tz: ZoneInfo | None = None) -> None:
        self.columns = tuple(_column(c) for c in columns)
        self.name = name
        self.tz = tz
        self.sql = name == "sql"

    def documents(self, content: bytes, path: str, reading: Any, first_line: int = 1) -> Iterator[dict]:
        """Each row as a document; rows that do not fit are the reader's rejections."""
        text = content.decode("utf-8", "replace")
        if self.sql:
            lines = text.split("\n")
            rows: Iterator[tuple[int, list[str] | str]] = (
                (n, self._sql_row(line)) for n, line in enumerate(lines, first_line) if line.strip())
        else:
            rows = self._rows(text, first_line)
        header = True
        for line, fields in rows:
            if fields == [] or fields == [""]:
                continue  # a blank line
            if isinstance(fields, str) or len(fields) != len(self.columns):
                problem = fields if isinstance(fields, str) else \
                    f"{len(fields)} fields where {self.name} has {len(self.columns)}"
                reading.reject(f"{path}:{line}", "bad_csv", problem)
            elif header and tuple(f.strip().strip("${}") for f in fields) == self.columns:
                pass  # a header line (not FreeSWITCH's, but exports often add one)
            else:
                reading.run(path, line)
                reading.documents += 1
                yield self.document(fields)
            header = False

    def _rows(self, text: str, first_line: int) -> Iterator[tuple[int, list[str] | str]]:
        reader = csv.reader(io.StringIO(text), skipinitialspace=True, strict=False)
        start = 1
        try:
            for fields in reader:
                yield start + first_line - 1, fields
                start = reader.line_num + 1
        except csv.Error as error:  # (strict=False: a NUL byte or a field too long gets here)
            yield start + first_line - 1, f"unreadable CSV ({error}); the rest of the file skipped"

    @staticmethod
    def _sql_row(line: str) -> list[str] | str:
        match = _SQL.match(line)
        if match is None:
            return "not an INSERT INTO ... VALUES (...); line (the sql template)"
        return next(csv.reader([match[1]], skipinitialspace=True), [])

    def document(self, fields: Sequence[str]) -> dict[str, Any]:
        """One row as ``{"variables": ...}``: values kept as text, stamps given their epochs."""
        variables: dict[str, str] = {}
        for name, value in zip(self.columns, fields):
            if name:
                variables[name] = value.replace("%", "%25") if "%" in value else value
        for stamp, epoch in _STAMPS.items():
            if stamp in variables and epoch not in variables:
                if variables[stamp].strip():
                    variables[epoch] = self.epoch(variables[stamp])
                elif epoch == "answer_epoch":
                    variables[epoch] = "0"  # not answered (an empty end stays missing)
        for number, user in _NUMBERS:  # the numbers a CSV has are the call's from and to
            if number in variables and user not in variables:
                variables[user] = variables[number]
        return {"variables": variables}

    def epoch(self, stamp: str) -> str:
        """A local stamp as epoch seconds (text, as FreeSWITCH writes them); the stamp itself
        when unreadable, so the engine names it in its rejection."""
        match = _STAMP.match(stamp)
        if match is None:
            return stamp
        y, mo, d, h, mi, s = (int(g or 0) for g in match.groups())
        try:
            if self.tz is None:
                return str(int(time.mktime((y, mo, d, h, mi, s, 0, 0, -1))))
            return str(int(datetime(y, mo, d, h, mi, s, tzinfo=self.tz).timestamp()))
        except (ValueError, OverflowError):
            return stamp


def layout(template: str = "example", columns: Sequence[str] | None = None,
           timezone: str | None = None) -> CsvLayout:
    """The layout of ``--csv-columns`` or else ``--csv-template``; ValueError naming the bad one."""
    tz = zone(timezone) if timezone is not None else local_zone()
    if columns is not None:
        names = [_column(c) for c in columns]
        if not any(names) or "end_stamp" not in names and "end_epoch" not in names:
            raise ValueError("--csv-columns must name end_stamp or end_epoch (a CDR is filed "
                             "by its end)")
        return CsvLayout(names, "--csv-columns", tz)
    if template not in TEMPLATES:
        raise ValueError(f"unknown CSV template {template!r}: one of {', '.join(TEMPLATES)}")
    return CsvLayout(TEMPLATES[template], template, tz)


def _column(name: str) -> str:
    """A column as given: ``end_stamp`` or ``${end_stamp}``; "" or "-" for one to skip."""
    name = name.strip()
    match = _NAME.fullmatch(name)
    name = match[1] if match else name
    return "" if name == "-" else name
