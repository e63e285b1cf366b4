"""FreeSWITCH's JSON as bytes: what must happen to it before, or instead of, a parser.

FreeSWITCH >= 1.6 writes bare ``nan``/``inf`` tokens, hostile senders nest documents
thousands deep, and a counted CDR's whole document is built long after, for an alert or a
snapshot, where it must never raise. :mod:`sixminutes.call` decodes with these.
"""
from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import orjson

try:
    from . import _prescan
except ImportError:  # built without a C compiler: the same results, more slowly
    _prescan = None

__all__ = ["CLIP_DEPTH", "MAX_NESTING", "clipped", "load", "nonfinite_to_null", "too_deep"]

# Bare non-finite tokens as FreeSWITCH >= 1.6 writes them in callStats. Strings are split
# out first so that a token inside a string is left alone; the string pattern is atomic
# and also ends at the end of the input, so an unterminated string cannot make it quadratic.
# (An atomic group, not a possessive repeat: CPython 3.11.2's re gets `(?:...)*+` wrong.)
_STRING = re.compile(rb'("(?>(?:[^"\\]|\\.)*)(?:"|\\?\Z))', re.S)
_NONFINITE = re.compile(rb'-?(?:nan|NaN|NAN|inf|Infinity|INF)\b')
_TOKENS = (b"nan", b"NaN", b"NAN", b"inf", b"Inf", b"INF")
CLIP_DEPTH = 100
"""Nesting kept when a document is built: orjson cannot write much deeper (alerts, snapshots)."""
MAX_NESTING = 700
"""Documents nesting deeper are ``bad_json``, whoever decodes them: msgspec's own limit is
what is left of Python's recursion limit, so it would depend on the caller's stack depth."""
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


def nonfinite_to_null(raw: bytes) -> bytes:
    """``nan``/``inf`` tokens outside strings as ``null``; linear (every step runs in C)."""
    if b"\x00" in raw or not any(token in raw for token in _TOKENS):  # (NUL: never in valid
        return raw                                                     # JSON; it joins below)
    parts = _STRING.split(raw)  # text, string, text, string, ..., text
    parts[0::2] = _NONFINITE.sub(b"null", b"\x00".join(parts[0::2])).split(b"\x00")
    return b"".join(parts)


def clipped(value: Any, depth: int = CLIP_DEPTH) -> Any:
    """The value with what nests deeper than ``depth`` replaced by a note."""
    if isinstance(value, dict):
        if depth <= 0:
            return "(nested too deep)"
        return {k: clipped(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth <= 0:
            return "(nested too deep)"
        return [clipped(v, depth - 1) for v in value]
    return value


def _too_deep_slowly(raw: bytes) -> bool:
    """Whether brackets outside strings nest deeper than MAX_NESTING (what the compiled
    ``deeper_than`` says, about ten times slower)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_NESTING:  # (real CDRs: fewer than 200)
        return False
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_NESTING


def too_deep(raw: bytes) -> bool:
    if _prescan is None:
        return _too_deep_slowly(raw)
    return _prescan.deeper_than(raw, MAX_NESTING)


def load(source: bytes) -> dict:
    """A counted document as a dict, whatever it holds; never raises (alerts and snapshots
    build it long after it was counted)."""
    try:
        return orjson.loads(source)
    except orjson.JSONDecodeError:
        source = nonfinite_to_null(source)
    try:
        return orjson.loads(source)
    except orjson.JSONDecodeError:
        pass
    try:  # numbers orjson refuses, in fields the decoder skipped: 2**64, 1e999
        doc = json.loads(source, parse_int=_json_int)
    except (ValueError, RecursionError) as error:
        doc = None
        reason = f"{type(error).__name__}: {error}"
    if isinstance(doc, dict):
        return doc
    return {"error": f"the document cannot be shown: {reason if doc is None else 'not an object'}"}


def _json_int(text: str) -> int | float:
    return int(text) if len(text) < 19 else float(text)  # what orjson can write back
