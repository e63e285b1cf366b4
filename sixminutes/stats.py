"""The Stat record and series keys: the two shapes every other part agrees on.

A Stat is CouchDB's ``_stats`` reduce (and the seed's record): sum, count, sum of
squares, min, max. It merges associatively, so windows can be combined and
snapshots restored without losing precision. A series key is a Prometheus-style
string, ``name{label="value",...}``, used as the key in JSON, SSE and the page.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Stat", "series_key", "cached_key", "key_maker", "parse_series_key", "parsed_key", "SeriesKeyError",
           "key_matches"]


@dataclass(slots=True)
class Stat:
    """Sum, count, squares, min, max of the values seen; mean and stddev are derived."""

    sum: float = 0.0
    count: int = 0
    squares: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    @classmethod
    def of(cls, *values: float) -> Stat:
        stat = cls()
        for value in values:
            stat.add(value)
        return stat

    def add(self, value: float) -> None:
        self.sum += value
        self.count += 1
        self.squares += value * value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def merge(self, other: Stat) -> Stat:
        """A new Stat equal to the Stat of the union of both inputs."""
        return Stat(
            self.sum + other.sum,
            self.count + other.count,
            self.squares + other.squares,
            min(self.min, other.min),
            max(self.max, other.max),
        )

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    @property
    def stddev(self) -> float | None:
        """Population standard deviation, as CouchDB's _stats consumers compute it."""
        if not self.count:
            return None
        mean = self.sum / self.count
        return math.sqrt(max(self.squares / self.count - mean * mean, 0.0))

    def to_json(self) -> dict[str, float | int]:
        return {
            "sum": _number(self.sum),
            "count": self.count,
            "squares": _number(self.squares),
            "min": _number(self.min),
            "max": _number(self.max),
        }

    @classmethod
    def from_json(cls, data: dict) -> Stat:
        return cls(
            float(data["sum"]),
            int(data["count"]),
            float(data["squares"]),
            float(data["min"]),
            float(data["max"]),
        )


def _number(value: float) -> float | int:
    """Integral floats print as integers, so counts and sums of counts read naturally."""
    if isinstance(value, int):
        return value
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"(,|\})')
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


_VALID_NAMES: set[str] = set()
"""Names already checked (as series or label names: the label pattern is the stricter)."""


def _remember(name: str) -> None:
    if len(_VALID_NAMES) > 10_000:  # a plugin making names from data must not grow this
        _VALID_NAMES.clear()
    if _LABEL_NAME.fullmatch(name):  # valid as both: a series name may hold ':' as well
        _VALID_NAMES.add(name)


def series_key(name: str, labels: dict[str, str] | None = None) -> str:
    """``name{a="x",b="y"}`` with labels sorted by name and values escaped as Prometheus does.

    Names and label names must be valid Prometheus names (SeriesKeyError otherwise), so
    every key can be parsed back and exported.
    """
    if name not in _VALID_NAMES:
        if not _NAME.fullmatch(name):
            raise SeriesKeyError(f"not a valid series name: {name!r}")
        _remember(name)
    for label in labels or ():
        if label not in _VALID_NAMES:
            if not _LABEL_NAME.fullmatch(label):
                raise SeriesKeyError(f"not a valid label name: {label!r}")
            _remember(label)
    if not labels:
        return name
    inner = ",".join(f'{label}="{_escaped(str(value))}"' for label, value in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _escaped(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.translate(_ESCAPES)
    return value  # the usual label value: translate() would cost ten times the tests


_CACHE: dict[tuple, str] = {}


def cached_key(name: str, labels: dict) -> str:
    """:func:`series_key`, memoised: the same few thousand keys are built for every CDR.

    Entries are stored under text values only, so ``1`` and ``True`` (equal and hashing
    alike in Python) never share a key; callers may look up ``(name, *labels.items())``
    directly first, which hits whenever the values are text.
    """
    text = {k: v if type(v) is str else str(v) for k, v in labels.items()}
    cache_key = (name, *text.items())
    key = _CACHE.get(cache_key)
    if key is None:
        if len(_CACHE) > 500_000:  # accounts come and go; keep the cache bounded
            _CACHE.clear()
        key = _CACHE[cache_key] = series_key(name, text)
        _remember_parsed(key, name, text)
    return key


def key_maker(name: str, labels: tuple[str, ...]) -> Callable[[tuple[Any, ...]], str]:
    """:func:`series_key` for one name and label names, as a function of the label values
    (in ``labels``' order; None is ``none``): the names checked and their sorted order worked
    out once, not for every key (a batch makes one for each new account it sees)."""
    series_key(name, dict.fromkeys(labels, "x"))  # valid names, or SeriesKeyError
    if len(set(labels)) != len(labels) or not labels:  # (as series_key reads them)
        return lambda values: cached_key(name, {label: "none" if value is None else value
                                                for label, value in zip(labels, values)})
    order = sorted(range(len(labels)), key=labels.__getitem__)
    names = tuple(labels[i] for i in order)
    heads = (f'{{{names[0]}="', *(f'",{label}="' for label in names[1:]))
    labelled = _LABELLED.setdefault(labels, {})  # (shared: account_calls, account_billsec...)

    def make(values: tuple[Any, ...]) -> str:
        found = labelled.get(values)
        if found is None:
            texts = []
            for i in order:
                value = values[i]
                texts.append("none" if value is None else value if type(value) is str else str(value))
            if len(labelled) > 200_000:  # accounts come and go
                labelled.clear()
            found = labelled[values] = (
                "".join([part for pair in zip(heads, map(_escaped, texts)) for part in pair]) + '"}',
                tuple(zip(names, texts)))
        key = name + found[0]
        if len(_PARSED) > 1_000_000:  # (bounded, as _CACHE)
            _PARSED.clear()
        _PARSED[key] = (name, found[1])
        return key

    return make


_LABELLED: dict[tuple[str, ...], dict[tuple, tuple[str, tuple[tuple[str, str], ...]]]] = {}
"""Label names → label values → the key's labels part, and the pairs it parses back to."""


_PARSED: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
"""Key → (name, label pairs). Pairs, not a dict: a tuple of strings is soon untracked by the
cyclic garbage collector, where 200,000 dicts made each of its full passes ~20% of a replay."""


def _remember_parsed(key: str, name: str, labels: dict[str, str]) -> None:
    if len(_PARSED) > 1_000_000:  # (bounded, as _CACHE)
        _PARSED.clear()
    _PARSED[key] = (name, tuple(labels.items()))


def parsed_key(key: str) -> tuple[str, dict[str, str]]:
    """:func:`parse_series_key`, remembered: a key built by :func:`cached_key` is never parsed
    (reports and filters read every key of the store)."""
    parsed = _PARSED.get(key)
    if parsed is None:
        name, labels = parse_series_key(key)
        _remember_parsed(key, name, labels)
        return name, labels
    return parsed[0], dict(parsed[1])


class SeriesKeyError(ValueError):
    """A string that is not a series key."""


_UNESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
_UNESCAPE = re.compile(r"\\[\\\"n]")


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """The inverse of :func:`series_key`: ``(name, labels)``."""
    match = _NAME.match(key)
    if not match:
        raise SeriesKeyError(f"not a series key: {key!r}")
    name, pos = match.group(), match.end()
    if pos == len(key):
        return name, {}
    if key[pos] != "{":
        raise SeriesKeyError(f"not a series key: {key!r}")
    pos += 1
    labels: dict[str, str] = {}
    if key[pos:] == "}":
        return name, labels
    while True:
        match = _LABEL.match(key, pos)
        if not match:
            raise SeriesKeyError(f"bad labels in series key: {key!r}")
        labels[match.group(1)] = _UNESCAPE.sub(lambda m: _UNESCAPES[m.group()], match.group(2))
        pos = match.end()
        if match.group(3) == "}":
            break
    if pos != len(key):
        raise SeriesKeyError(f"trailing text in series key: {key!r}")
    return name, labels


def key_matches(key: str, names: set[str] | None, labels: dict[str, str] | None) -> bool:
    """Whether a series key has one of ``names`` (any when None) and every label of ``labels``
    with that exact value (the filters of /6minutes/data)."""
    try:
        name, have = parsed_key(key)
    except SeriesKeyError:  # restored from an older state file, say: never matches a filter
        return False
    if names is not None and name not in names:
        return False
    return not labels or all(have.get(k) == v for k, v in labels.items())
