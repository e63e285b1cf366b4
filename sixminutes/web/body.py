"""The body of POST /6minutes/cdr: the CDR's JSON bytes, however the client wrapped them.

FreeSWITCH's mod_json_cdr wraps one document according to its `encode` setting (DESIGN.md):
the raw JSON (`application/x-www-form-plaintext`; `application/json` in recent versions),
`cdr=` + the URL-encoded JSON (`application/x-www-form-urlencoded`), or `cdr=` + base64 that is
*not* URL-encoded (`application/x-www-form-base64-encoded`: `+` means plus there, not space).
A generic form parser gets two of these wrong, so each is read by hand. When the POST fails,
FreeSWITCH writes the same body to its err-log-dir, hence `decode_post_body`, shared with the
replay inputs. Nothing here validates the CDR: the engine does, and counts what it rejects.

mod_xml_cdr posts the same ways (`cdr=` + raw XML as plaintext by default, URL-encoded, base64,
or raw XML): an XML CDR becomes the JSON of the dict mod_json_cdr would have written
(:mod:`sixminutes.sources.xml_cdr`, hardened against entity expansion), so the journal and the
engine see JSON whatever was posted. XML that is no CDR is a BodyError with its reason.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hmac
import re
from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

import orjson

from ..call import _prescan, prescan
from ..sources.xml_cdr import XmlCdrError, cdr_from_xml

JSON = "application/json"
PLAINTEXT = "application/x-www-form-plaintext"  # mod_json_cdr encode=false (before 1.10)
URLENCODED = "application/x-www-form-urlencoded"  # encode=true, FreeSWITCH's default
BASE64 = "application/x-www-form-base64-encoded"  # encode=base64

# The rest of a JSON string, as far as a quote followed by what may follow a string.
# Unrolled, in atomic groups: linear, and it fails in one pass when no string end follows.
# (Atomic groups, not possessive repeats: CPython 3.11.2's re gets `(?:...)*+` wrong.)
_STRING_END = re.compile(
    rb'(?>[^"\\]*)(?>(?:(?:\\.|"(?![:,}\]]|\Z))(?>[^"\\]*))*)"(?=[:,}\]]|\Z)', re.S)
# Group 1: a run of bytes that must not be raw in a string (a backslash that starts no escape).
_RAW_IN_STRING = re.compile(rb'\\[\\"/bfnrtu]|((?:["\x00-\x1f]|\\(?![\\"/bfnrtu]))+)')
_PERCENT = [b"%%%02X" % byte for byte in range(256)]
_MAX_STRINGS = 20_000
"""Strings repaired at most: a CDR has a few thousand; a crafted body must not cost seconds."""
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_SPACE = b" \t\n\r\x0b\x0c"  # what \s matches in bytes
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-" + _SPACE

if _prescan is not None:  # in C: encode=true sends every byte of a CDR but letters as %XX
    unquote, bad_percent = _prescan.unquote, _prescan.bad_percent
    unquote_strict = _prescan.unquote_strict
else:  # built without a C compiler: the same results, more slowly
    unquote = unquote_to_bytes

    def bad_percent(data: bytes) -> int:
        """The offset of the first '%' that two hex digits do not follow, -1 when there is none."""
        bad = _BAD_ESCAPE.search(data)
        return -1 if bad is None else bad.start()

    def unquote_strict(data: bytes) -> bytes | int:
        """Percent-decoded, or the offset of the first '%' two hex digits do not follow."""
        bad = bad_percent(data)
        return bad if bad >= 0 else unquote(data)


def _is_base64(value: bytes) -> bool:
    """Only base64 letters (either alphabet), padding and spaces (translate runs in C)."""
    return not value.translate(None, _BASE64_ALPHABET)
_CDR_FIELD = re.compile(rb"(?:^|&)[\s+]*cdr[\s+]*=([^&]*)")


class BodyError(Exception):
    """A body from which no CDR can be read. `reason` is a short stable code (for counters and
    the JSON error answer); the message says what was wrong and what is expected."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def cdr_from_body(content_type: str | None, body: bytes) -> bytes:
    """The CDR's raw JSON bytes from what FreeSWITCH's mod_json_cdr or mod_xml_cdr (or another
    client) POSTed."""
    doc, unchecked = cdr_from_post(content_type, body)
    return repaired(doc) if unchecked else doc


def cdr_from_post(content_type: str | None, body: bytes) -> tuple[bytes, bool]:
    """:func:`cdr_from_body`, but FreeSWITCH's default form (encode=true: ``cdr=`` + the
    URL-encoded JSON) percent-decoded only: (the document, True). :func:`repaired` of it is
    what cdr_from_body gives; a document that a strict JSON scan reads whole is its own
    repair, so the group commit, which decodes each document strictly anyway
    (``_columns.c``), repairs only those it could not read, instead of every POST scanning
    its JSON twice (~5 us of a CDR). Any other body: (cdr_from_body's document, False)."""
    data = body.strip().removeprefix(codecs.BOM_UTF8).strip()
    if data in (b"", b"cdr="):  # (stripped: nothing else is blank after `cdr=`; no copy)
        raise BodyError("empty", "The request body is empty: POST one CDR document.")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if (media == URLENCODED and data[:4] == b"cdr=" and data[4:7].upper() == b"%7B"
            and b"&" not in data):  # (what _extract would read as this one field's JSON)
        plain = unquote_strict(data[4:].replace(b"+", b" "))
        if type(plain) is bytes:  # (else _extract says why it is no URL encoding)
            return plain, True
    doc = _extract(media, data)
    if not doc.strip():
        raise BodyError("empty", "The cdr field is empty: it must hold one CDR document.")
    return doc, False


def _extract(media: str, data: bytes) -> bytes:
    if media in (JSON, PLAINTEXT) or media.endswith("+json"):
        # The document as it is (mod_xml_cdr's plaintext has `cdr=` before it); a body that
        # is not JSON goes to the engine all the same, which rejects and counts it.
        value = data.removeprefix(b"cdr=").lstrip()
        doc = _guess(value)
        return _not_xml(value if doc is None else doc)
    if media == URLENCODED:
        if _is_document(data):  # `curl -d @cdr.json`: the document, not encoded at all
            return _not_xml(data)
        if data.startswith((b"cdr={", b"cdr=[", b"cdr=<")):
            return _not_xml(data[4:])  # `cdr=` + a raw document: it may hold `&`, no splitting
        value = data if data[:3].upper() in (b"%7B", b"%5B") else _form_field(data)
        doc = _guess(value)  # also a base64 value sent with the wrong type
        return _not_xml(_url_value(value) if doc is None else doc)
    if media == BASE64:
        value = _form_field(data) if _is_form(data) or b"&" in data else data
        doc = _guess(value)
        return _not_xml(_b64decode(unquote(value)) if doc is None else doc)
    doc = _guess(_form_field(data) if _is_form(data) else data)
    if doc is not None:
        return _not_xml(doc)
    if media:
        raise BodyError(
            "unsupported_media_type",
            f"Content-Type {media} is not supported: send application/json, or what "
            f"mod_json_cdr and mod_xml_cdr send ({URLENCODED}, {BASE64} or {PLAINTEXT}).",
        )
    raise BodyError(
        "unrecognised",
        "Without a Content-Type, the body was neither a JSON document nor a cdr= field "
        "holding URL-encoded or base64 JSON.",
    )


def decode_post_body(body: bytes) -> bytes:
    """mod_json_cdr writes a CDR it failed to POST to err-log-dir as the POST body (without
    `cdr=`): URL-encoded (encode=true) or base64 (encode=base64); mod_xml_cdr's XML likewise.
    Lenient: what does not decode is returned as it is, for the engine to reject and count."""
    if body[:3] in (b"eyJ", b"PD9", b"PGN"):  # `{"`, `<?x`, `<cd` in base64
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            return body
    if body[:3].upper() == b"%3C":  # URL-encoded XML: no JSON string repair
        return unquote(body)
    return url_decode(body)


def url_decode(value: bytes, plain: bytes | None = None) -> bytes:
    """Percent-decode a URL-encoded JSON document (``plain``: decoded already). Until
    signalwire/freeswitch#3152 the URL encoding left the values' own %XX escapes
    (encode-values) as they were, so decoding the body decodes those too, and a quote or CR LF
    in a value breaks the JSON: then such bytes inside strings are put back as %XX, for the
    engine to decode with the rest of the value."""
    return repaired(unquote(value) if plain is None else plain)


def repaired(plain: bytes) -> bytes:
    """A percent-decoded JSON document as it is when it is JSON, else its strings repaired
    (:func:`url_decode`)."""
    if prescan is not None and prescan(plain) is not None:
        return plain  # JSON as it is: the pre-scan is a quarter of orjson's time on a CDR
    try:
        orjson.loads(plain)
        return plain
    except orjson.JSONDecodeError:
        pass
    return _repair_strings(plain)


def _repair_strings(plain: bytes) -> bytes:
    """Inside each string (from a quote to the first quote followed by what may follow a
    string), make raw quotes, backslashes and control bytes %XX again. Linear: once a string
    has no end, no later one has, so the scan stops there (a regex `sub` would retry from
    every quote left, quadratic on a crafted body)."""
    parts: list[bytes] = []
    cursor = 0
    for _ in range(_MAX_STRINGS):
        start = plain.find(b'"', cursor)
        if start < 0:
            break
        end = _STRING_END.match(plain, start + 1)
        if end is None:
            break
        inside = plain[start + 1 : end.end() - 1]
        if _RAW_IN_STRING.search(inside) is not None and (fixed := _RAW_IN_STRING.sub(_percent, inside)):
            inside = fixed
        parts += (plain[cursor:start], b'"', inside, b'"')
        cursor = end.end()
    else:
        return plain  # too many strings for a CDR: left as it is, for the engine to reject
    parts.append(plain[cursor:])
    return b"".join(parts)


def _percent(m: re.Match[bytes]) -> bytes:
    return b"".join(map(_PERCENT.__getitem__, m[1])) if m[1] else m[0]


def _is_document(value: bytes) -> bool:
    return value.startswith((b"{", b"[", b"<"))


def _is_form(data: bytes) -> bool:
    return data.startswith(b"cdr=") or b"&cdr=" in data


def _guess(value: bytes) -> bytes | None:
    """The document in a form value, by what the value starts with; None when it is unclear."""
    value = value.lstrip()
    if _is_document(value):
        return value
    if b"&" in value:  # neither encoding leaves a raw `&`: what follows is a field
        value = value[:value.index(b"&")]
    if value[:3].upper() in (b"%7B", b"%5B", b"%3C"):  # `{`, `[`, `<` URL-encoded
        return _url_value(value)
    if value and _is_base64(value):
        try:
            decoded = _b64decode(value)
        except BodyError:
            return None
        if _is_document(decoded.lstrip()):
            return decoded
    return None


def _form_field(data: bytes) -> bytes:
    """The raw `cdr` value of a form body. Splitting on every `&` is safe for what is encoded:
    FreeSWITCH escapes `&` in URL-encoded JSON, and base64 has none."""
    if data.startswith(b"cdr=") and b"&" not in data:  # FreeSWITCH's: the one field
        return data[4:].strip()
    plain = _CDR_FIELD.search(data)  # the usual case, found in C however many fields there are
    if plain is not None:
        return plain[1].strip()
    names: list[str] = []
    for field in data.split(b"&", 1000)[:1000]:  # (an encoded name: c%64r=, in the first ones)
        name, eq, value = field.partition(b"=")
        if b"%" in name or b"+" in name:
            name = unquote_to_bytes(name.replace(b"+", b" "))
        name = name.strip()
        if name == b"cdr" and eq:
            return value.strip()
        if name and len(names) < 10:
            names.append(name.decode("utf-8", "replace")[:40])
    found = f" (fields found: {', '.join(names)})" if names else ""
    raise BodyError("bad_form", f"The form body has no cdr= field{found}.")


def _url_value(value: bytes) -> bytes:
    if value[:3].upper() == b"%3C":  # XML (mod_xml_cdr's default encoding): no JSON repair
        return unquote(value.replace(b"+", b" "))
    # FreeSWITCH escapes `+` as %2B, so a raw `+` comes from an HTML-form encoder: a space.
    spaced = value.replace(b"+", b" ")
    plain = unquote_strict(spaced)  # (checked and decoded in one pass)
    if type(plain) is int:
        raise BodyError(
            "bad_urlencoding",
            f"The cdr field is not URL-encoded: '%' without two hex digits after it at byte "
            f"{plain} of the field.",
        )
    return url_decode(spaced, plain)


def _b64decode(value: bytes) -> bytes:
    """Base64 as FreeSWITCH writes it, and tolerant of what proxies and clients do to it:
    line breaks, missing padding, the URL-safe alphabet."""
    value = value.translate(None, _SPACE).replace(b"-", b"+").replace(b"_", b"/").rstrip(b"=")
    if not value or not _is_base64(value) or len(value) % 4 == 1:
        raise BodyError("bad_base64", "The cdr field is not valid base64.")
    try:
        return base64.b64decode(value + b"=" * (-len(value) % 4), validate=True)
    except binascii.Error:
        raise BodyError("bad_base64", "The cdr field is not valid base64.") from None


def _not_xml(document: bytes) -> bytes:
    """A JSON document as it is; an XML one (mod_xml_cdr) as the JSON of its CDR."""
    head = document.lstrip().removeprefix(codecs.BOM_UTF8).lstrip()
    if head[:1] != b"<":
        return document
    try:
        return orjson.dumps(cdr_from_xml(head))
    except XmlCdrError as error:
        line = f" (line {error.line})" if error.line else ""
        raise BodyError(error.reason, f"The XML CDR cannot be read{line}: {error.detail}") from None


def check_token(headers: Mapping[str, str], token: str | None) -> bool:
    """True when auth is off (`token` is None) or the request proves it knows the token:
    `Authorization: Bearer <token>`, or HTTP Basic with any user and the token as password
    (mod_json_cdr's `cred = user:password`). Constant-time comparison; malformed → False."""
    if token is None:
        return True
    value = headers.get("authorization")
    if value is None:  # a plain dict with other capitalisation (Starlette's Headers ignore case)
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not value or not token:
        return False
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        # Starlette decodes header bytes as latin-1: encode back to get the bytes sent.
        presented = [credentials.encode("utf-8")]
        if not credentials.isascii() and max(map(ord, credentials)) < 256:
            presented.append(credentials.encode("latin-1"))
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return False
        _user, colon, password = decoded.partition(b":")
        if not colon:
            return False
        presented = [password]
    else:
        return False
    want = token.encode("utf-8")
    # Every candidate is compared, in constant time, so timing tells nothing either way.
    return sum(hmac.compare_digest(p, want) for p in presented if p) > 0
