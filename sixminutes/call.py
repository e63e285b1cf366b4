"""Decode one FreeSWITCH CDR document into a normalised Call, or reject it with a reason.

Only the variables the Call needs are built as Python objects: a CDR is 8–12 KB, of
which the engine reads a few hundred bytes. The compiled pre-scan (``_prescan.c``)
validates the document and keeps only those members, which msgspec then decodes;
without it (no compiler at install) msgspec skips the rest itself, more slowly. The whole
document is built only when a plugin asks for ``ctx.doc``. Real FreeSWITCH output is
handled: URL-encoded values, a bare ``nan`` token (see :mod:`sixminutes.rawjson`), repeated
keys, ``callflow`` as object or array, CouchDB change rows.
"""
from __future__ import annotations

import math
from typing import Any
from urllib.parse import unquote

import msgspec

try:
    from . import _prescan
except ImportError:  # built without a C compiler: the same results, more slowly
    _prescan = None

from .direction import normal_direction
from .rawjson import CLIP_DEPTH, MAX_NESTING, clipped, load, nonfinite_to_null, too_deep

__all__ = ["Call", "Decoded", "Rejected", "decode", "REASONS", "MAX_NESTING"]

REASONS = {
    "bad_json": "not JSON (syntax, encoding, or nesting too deep)",
    "not_object": "the document is not a JSON object",
    "design_doc": "a CouchDB design document",
    "deleted": "a CouchDB deletion",
    "no_variables": "no `variables` object",
    "bad_variables": "`variables` is not an object",
    "bad_end_epoch": "`end_epoch` missing, not a number, or before 2000",
    "future": "ends more than an hour in the future",
    "too_old": "ends before the retention period",
    "duplicate": "an `_id` already counted in its window",
}
"""Every reason a document can be rejected for, with what it means."""

_EPOCH_2000 = 946_684_800
_MAX_INT = 2**53


class Rejected(Exception):
    """A document the engine does not count; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class _Vars(msgspec.Struct):
    """The variables the Call is built from; every other variable is skipped unbuilt.

    Decoded with ``strict=False``, so msgspec turns FreeSWITCH's numeric strings into
    numbers in C. A document whose values do not fit these types (a number where a
    string is expected, ``billsec: "n/a"``) is decoded again leniently, see _Loose.
    """

    end_epoch: int | None = None
    ccnq_profile: str | None = None
    sip_gateway_name: str | None = None
    sofia_profile_name: str | None = None
    ccnq_direction: str | None = None
    direction: str | None = None
    ccnq_account: str | None = None
    accountcode: str | None = None
    ccnq_from_e164: str | None = None
    sip_from_user: str | None = None
    ccnq_to_e164: str | None = None
    sip_to_user: str | None = None
    billsec: int = 0
    duration: int = 0
    start_epoch: int = 0
    answer_epoch: int = 0
    sip_term_status: str | None = None
    sip_invite_failure_status: str | None = None
    hangup_cause: str | None = None
    hangup_cause_q850: str | None = None
    progress_mediamsec: int = 0
    progressmsec: int = 0
    rtp_audio_in_mos: float | None = None
    uuid: str | None = None


_FIELDS = _Vars.__struct_fields__
_INTS = frozenset(n for n in _FIELDS if _Vars.__annotations__[n].startswith("int"))

_Loose = msgspec.defstruct("_Loose", [(name, Any, None) for name in _FIELDS])
"""The same variables, any JSON type: the slow path for documents _Vars rejects."""


def _doc_type(name: str, variables: type) -> type:
    """A CDR document or a CouchDB change row (``id``, ``deleted``, ``doc``)."""
    return msgspec.defstruct(name, [
        ("variables", variables | None, None),
        ("id_", Any, None), ("deleted_", Any, None),
        ("id", Any, None), ("deleted", Any, None),
        ("doc", msgspec.Raw, msgspec.Raw()),  # empty when absent
    ], rename={"id_": "_id", "deleted_": "_deleted"})


_Doc = _doc_type("_Doc", _Vars)
_KEPT = ("_id", "_deleted", "id", "deleted", "doc")
"""The top-level members the decode reads besides ``variables``."""
if _prescan is not None:
    _prescan.configure(_KEPT, _FIELDS)
prescan = _prescan.members if _prescan is not None else None
"""The document reduced to the members decoded (None: only the full decode can tell)."""
_LooseDoc = _doc_type("_LooseDoc", _Loose)
_decoder = msgspec.json.Decoder(_Doc, strict=False)
_loose_decoder = msgspec.json.Decoder(_LooseDoc)
class Call(msgspec.Struct, gc=False):
    """One call leg, normalised as DESIGN.md's table says."""

    id: str | None
    profile: str
    direction: str
    account: str
    from_: str
    to: str
    end_epoch: int
    start_epoch: int
    """When the call began (``start_epoch``; else ``end_epoch - duration``), never after its end."""
    billsec: int
    duration: int
    answered: bool
    sip_code: str
    hangup_cause: str
    q850: str | None
    pdd_ms: int | None
    mos: float | None

    def as_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class Decoded:
    """A Call plus the means to build its whole document on demand."""

    __slots__ = ("call", "_source", "_doc")

    def __init__(self, call: Call, source: bytes | dict) -> None:
        self.call = call
        self._source: bytes | dict | None = source
        self._doc: dict | None = None

    @property
    def doc(self) -> dict:
        """The whole document, with its variables URL-decoded; built once, on first use."""
        if self._doc is None:
            self._doc, self._source = self.build(), None
        return self._doc

    def build(self) -> dict:
        """The whole document, built anew (keeps only the compact source in memory)."""
        if self._doc is not None:
            return self._doc
        source = self._source
        if isinstance(source, dict):
            doc = dict(source)  # the caller's dict is left as it was
        else:
            doc = load(source)
        variables = doc.get("variables")
        if isinstance(variables, dict):
            doc["variables"] = {k: _unquoted(v) for k, v in variables.items()}
        if not isinstance(source, dict) and source.count(b"[") + source.count(b"{") > CLIP_DEPTH:
            doc = clipped(doc)  # a hostile document may nest deeper than orjson writes
        return doc


def decode(item: bytes | dict) -> Decoded:
    """Decode one document (raw JSON bytes or an already parsed dict); raise Rejected when it does not count.

    Anything else (a number, a string, a list: what a JSON array may hold besides
    documents) is ``not_object``; text to be parsed must be encoded to bytes first.
    """
    if isinstance(item, dict):
        return _decode_dict(item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(item))
    raise Rejected("not_object", f"a {type(item).__name__}, not a JSON object")


def _decode_bytes(raw: bytes) -> Decoded:
    members = prescan(raw) if prescan is not None else None  # (it keeps only ASCII documents)
    if members is None and not raw.isascii():
        try:
            raw.decode("utf-8")  # msgspec does not check strings it skips
        except UnicodeDecodeError as error:
            raise Rejected("bad_json", f"invalid UTF-8 at byte {error.start}") from None
    if members is None and too_deep(raw):  # (the pre-scan keeps none deeper than 64)
        raise Rejected("bad_json", f"nesting deeper than {MAX_NESTING}")
    try:
        parsed = _parse(raw if members is None else members, raw)
    except msgspec.DecodeError as error:  # bare nan/inf tokens are the one invalid JSON we read
        fixed = nonfinite_to_null(raw)
        if fixed == raw:
            raise Rejected("bad_json", str(error)) from None
        try:
            parsed = _parse(fixed)
        except msgspec.DecodeError:
            raise Rejected("bad_json", str(error)) from None
    if parsed.variables is None and parsed.doc and parsed.doc != b"null":
        _check_row(parsed)
        return _decode_bytes(bytes(parsed.doc))  # a change row: the CDR is its `doc`
    doc_id = parsed.id_ if parsed.id_ is not None else parsed.id
    _check_id(doc_id, parsed.deleted_ or parsed.deleted)
    variables = parsed.variables
    if variables is None:
        raise Rejected("no_variables")
    if isinstance(variables, _Loose):
        variables = _tighten(variables)
    return Decoded(_call(variables, doc_id), raw)


def _parse(data: bytes, whole: bytes | None = None) -> Any:
    """The typed decode, then the lenient one when a value has an unexpected type.

    ``data`` may be the pre-scan's members of ``whole``, the document itself (the default).
    """
    try:
        try:
            return _decoder.decode(data)
        except msgspec.ValidationError:
            pass
        try:
            return _loose_decoder.decode(data)
        except msgspec.ValidationError as error:
            # msgspec checks types before it reaches trailing garbage: `"a","b"` (a CSV
            # line) fails as "not an object" although it is not JSON at all. The whole
            # document is checked: a number msgspec refuses may sit in a member not kept.
            msgspec.json.decode(data if whole is None else whole)
            raise _shape_error(error) from None
    except RecursionError:
        raise Rejected("bad_json", "nesting too deep") from None


def _tighten(loose: Any) -> _Vars:
    """The lenient variables as _Vars: numbers parsed by hand, anything else as text."""
    fields: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(loose, name)
        if value is None:
            continue
        if name in _INTS:
            number = _int(value)
            if number is None and name == "end_epoch":
                raise Rejected("bad_end_epoch", f"not a number: {str(value)[:40]!r}")
            fields[name] = number or 0 if name != "end_epoch" else number
        elif name == "rtp_audio_in_mos":
            fields[name] = _float(value)
        elif isinstance(value, str):
            fields[name] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            fields[name] = str(value)  # a number where FreeSWITCH writes text: read it as text
        # an object, array or boolean where text belongs is no value at all
    return _Vars(**fields)


def _shape_error(error: msgspec.ValidationError) -> Rejected:
    message = str(error)
    if message.endswith("`$.variables`"):
        return Rejected("bad_variables", message)
    if message.endswith("`$.doc`"):
        return Rejected("not_object", message)
    return Rejected("not_object", message)


def _check_row(row: Any) -> None:
    if isinstance(row.id, str) and row.id.startswith("_design/"):
        raise Rejected("design_doc", row.id)
    if row.deleted or row.deleted_:
        raise Rejected("deleted", str(row.id))


def _check_id(doc_id: Any, deleted: Any) -> None:
    if isinstance(doc_id, str) and doc_id.startswith("_design/"):
        raise Rejected("design_doc", doc_id)
    if deleted:
        raise Rejected("deleted", str(doc_id))


def _decode_dict(doc: dict) -> Decoded:
    if "variables" not in doc and isinstance(doc.get("doc"), dict):
        _check_id(doc.get("id"), doc.get("deleted"))
        doc = doc["doc"]
    doc_id = doc.get("_id", doc.get("id"))
    _check_id(doc_id, doc.get("_deleted") or doc.get("deleted"))
    variables = doc.get("variables")
    if variables is None:
        raise Rejected("no_variables")
    if not isinstance(variables, dict):
        raise Rejected("bad_variables", f"`variables` is {type(variables).__name__}")
    loose = _Loose(**{k: variables.get(k) for k in _FIELDS})
    return Decoded(_call(_tighten(loose), doc_id), doc)


def _call(v: _Vars, doc_id: Any) -> Call:
    end_epoch = v.end_epoch
    if end_epoch is None:
        raise Rejected("bad_end_epoch", "missing")
    if end_epoch < _EPOCH_2000:
        raise Rejected("bad_end_epoch", f"before 2000: {end_epoch}")
    # Beyond _MAX_INT a number is no measure (10^40 seconds): it would overflow the squares
    # summed and could not be written as JSON; it counts as absent.
    billsec = v.billsec if 0 < v.billsec <= _MAX_INT else 0
    pdd = v.progress_mediamsec if 0 < v.progress_mediamsec <= _MAX_INT else v.progressmsec
    mos = v.rtp_audio_in_mos
    if mos is not None and not -_MAX_INT <= mos <= _MAX_INT:  # (also NaN and infinities)
        mos = None
    duration = v.duration if 0 < v.duration <= _MAX_INT else 0
    if type(doc_id) is not str:  # dedup needs text: an odd _id counts as no _id
        doc_id = str(doc_id) if type(doc_id) in (int, float) else None
    return Call(
        id=doc_id or _text(v.uuid),
        profile=_text(v.ccnq_profile or v.sip_gateway_name or v.sofia_profile_name) or "unknown",
        direction=normal_direction(_text(v.ccnq_direction or v.direction) or "unknown"),
        account=_text(v.ccnq_account or v.accountcode) or "unknown",
        from_=_text(v.ccnq_from_e164 or v.sip_from_user) or "",
        to=_text(v.ccnq_to_e164 or v.sip_to_user) or "",
        end_epoch=end_epoch,
        start_epoch=_start(v.start_epoch, end_epoch, duration),
        billsec=billsec,
        duration=duration,
        answered=v.answer_epoch > 0 or billsec > 0,
        sip_code=_text(v.sip_term_status or v.sip_invite_failure_status) or "none",
        hangup_cause=_text(v.hangup_cause) or "none",
        q850=_text(v.hangup_cause_q850),
        pdd_ms=pdd if 0 < pdd <= _MAX_INT else None,
        mos=mos,
    )


def _start(start: int, end: int, duration: int) -> int:
    """The start of a call: its ``start_epoch`` when it is one (after 2000, not after the
    end), else the end less its duration."""
    if _EPOCH_2000 <= start <= end:
        return start
    return end - duration


def _unquoted(value: Any) -> Any:
    """A variable URL-decoded when it is encoded text, else unchanged: runs of ``%XX`` read
    as UTF-8 (an invalid sequence as U+FFFD), anything else left as it is."""
    if type(value) is str and "%" in value:
        return unquote(value, errors="replace")
    return value


def _text(value: Any) -> str | None:
    """A variable as text: URL-decoded (FreeSWITCH's encode-values), None when absent or empty."""
    if type(value) is str:
        if "%" in value:
            return unquote(value, errors="replace")
        return value or None
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            pass
    elif value is None or type(value) is bool:
        return None
    elif type(value) is int:
        return value
    number = _float(value)
    return int(number) if number is not None else None


def _float(value: Any) -> float | None:
    """A finite number, or None (FreeSWITCH writes "nan" when it has no measure)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
