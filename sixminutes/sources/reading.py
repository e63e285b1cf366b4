"""What a replay read, for its report: where each document came from, and what went wrong.

The engine numbers the documents it is given (0, 1, 2, ...) and remembers, per rejection
reason, the number of the first and of the last one; :class:`Reading` maps such a number back
to ``file:line`` (or ``file[item]`` for the elements of a JSON array). It stores runs, not one
entry per document: a JSON Lines file without blank lines is a single run, so a replay of
millions of CDRs costs a few entries. What the reader itself cannot use (a file it cannot open,
compressed data damaged half-way, content in no known format, an XML or CSV record it cannot
read) is listed with its exact place, each one, in :attr:`Reading.problems` and
:attr:`Reading.rejections`.
"""
from __future__ import annotations

import bisect
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

__all__ = ["Reading", "ReadOptions", "Problem", "Rejection", "Meter", "PROBLEMS"]

PROBLEMS = {
    "unreadable": "the file cannot be read (permission, I/O error)",
    "damaged": "compressed data truncated or corrupt: what came before was read",
    "unknown_format": "content in no format sixminutes reads (JSON, XML, CSV)",
}
"""Why a file was not read to its end, with what it means."""


@dataclass(frozen=True)
class Problem:
    """A file not read to its end: the replay exits non-zero."""

    path: str
    reason: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class Rejection:
    """A record the reader could not make a document of (bad XML, a short CSV row)."""

    where: str
    reason: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class ReadOptions:
    """How to read inputs that do not say it themselves (mod_cdr_csv files).

    The CLI also puts them in the environment (``SIXMINUTES_CSV_TEMPLATE``,
    ``SIXMINUTES_CSV_COLUMNS``, ``SIXMINUTES_TIMEZONE``), where the processes of a ``--jobs``
    replay, which read the inputs again, find them.
    """

    csv_columns: tuple[str, ...] | None = None
    """mod_cdr_csv's columns (variable names); None: the template's."""
    csv_template: str = "example"
    timezone: str | None = None
    """The zone of the CSV stamps (an IANA name); None: this machine's."""

    def to_env(self) -> dict[str, str]:
        env = {"SIXMINUTES_CSV_TEMPLATE": self.csv_template}
        if self.csv_columns is not None:
            env["SIXMINUTES_CSV_COLUMNS"] = ",".join(self.csv_columns)
        if self.timezone is not None:
            env["SIXMINUTES_TIMEZONE"] = self.timezone
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReadOptions:
        env = os.environ if env is None else env
        columns = env.get("SIXMINUTES_CSV_COLUMNS")
        return cls(csv_columns=tuple(columns.split(",")) if columns else None,
                   csv_template=env.get("SIXMINUTES_CSV_TEMPLATE") or "example",
                   timezone=env.get("SIXMINUTES_TIMEZONE") or None)


@dataclass
class Reading:
    """Passed as ``progress`` to :func:`~sixminutes.sources.files.read_documents` (it is called
    with the bytes read, like a plain progress callback), it learns where each document was.
    ``sixminutes.parallel`` hands ``progress`` to the reader of the first process only, which
    reads every document in order: the numbers are the engine's there too."""

    progress: Callable[[int], None] | None = None
    options: ReadOptions = field(default_factory=ReadOptions)
    documents: int = 0
    """Documents handed out so far: the number of the next one."""
    problems: list[Problem] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)
    _runs: list[tuple[str, int, str]] = field(default_factory=list)

    def __call__(self, n: int) -> None:
        if self.progress is not None:
            self.progress(n)

    def run(self, path: str, first: int = 1, unit: str = "line", at: int | None = None) -> None:
        """The documents from number ``at`` (default: the next one) on are at ``first``,
        ``first + 1``, ... in ``path``; ``unit`` is "line", "item" (of an array) or "" (the
        whole file). Whoever hands documents out adds them to :attr:`documents`."""
        at = self.documents if at is None else at
        if self._starts and self._starts[-1] == at:
            self._runs[-1] = (path, first, unit)  # the previous run held no document
        else:
            self._starts.append(at)
            self._runs.append((path, first, unit))

    def where(self, index: int) -> str | None:
        """``file:line``, ``file[item]`` or ``file`` of document number ``index``."""
        at = bisect.bisect_right(self._starts, index) - 1
        if at < 0 or index >= self.documents:
            return None
        path, first, unit = self._runs[at]
        number = first + index - self._starts[at]
        if unit == "line":
            return f"{path}:{number}"
        return f"{path}[{number}]" if unit == "item" else path

    def problem(self, path: str, reason: str, detail: str) -> None:
        self.problems.append(Problem(path, reason, detail))

    def reject(self, where: str, reason: str, detail: str) -> None:
        self.rejections.append(Rejection(where, reason, detail))

    def counts(self) -> Counter[str]:
        """The reader's rejections and problems by reason, to add to the engine's outcomes."""
        return Counter([r.reason for r in self.rejections] + [p.reason for p in self.problems])


class Meter:
    """Counts on-disk (compressed) bytes, so that progress adds up to `total_bytes`."""

    def __init__(self, raw: BinaryIO, progress: Callable[[int], None], step: int) -> None:
        self.raw, self.progress, self.reported, self.pending = raw, progress, 0, 0
        self.step = step
        """Decompressed bytes between two progress reports on a streamed file."""
        self.consumed = 0
        """Decompressed bytes the streamed lines took, up to the last report."""

    def add(self, decompressed: int) -> None:
        self.pending += decompressed
        if self.pending >= self.step:  # tell() is a system call: not once per line
            self.consumed += self.pending
            self.pending = 0
            self.reach(self.raw.tell())

    def reach(self, position: int) -> None:
        """Progress up to a position of the file (also for one read another way: a parallel
        replay's segments, :mod:`sixminutes.sources.segments`)."""
        if position > self.reported:
            self.progress(position - self.reported)
            self.reported = position

    def finish(self, size: int) -> None:
        self.progress(max(size - self.reported, 0))
        self.reported = max(size, self.reported)
