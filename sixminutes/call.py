"""Decode one FreeSWITCH CDR document into a normalised Call, or reject it with a reason.

Only the variables the Call needs are built as Python objects (msgspec skips the
rest while still validating the JSON): a CDR is 8–12 KB, of which the engine reads
a few hundred bytes. The whole document is built only when a plugin asks for
``ctx.doc``. Real FreeSWITCH output is handled: URL-encoded values, a bare ``nan``
token, repeated keys, ``callflow`` as object or array, CouchDB change rows.
"""
from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import unquote

import msgspec
import orjson

__all__ = ["Call", "Decoded", "Rejected", "decode", "REASONS"]

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


class Rejected(Exception):
    """A document the engine does not count; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class _Vars(msgspec.Struct):
    """The variables the Call is built from; every other variable is skipped unbuilt."""

    end_epoch: Any = None
    ccnq_profile: Any = None
    sip_gateway_name: Any = None
    sofia_profile_name: Any = None
    ccnq_direction: Any = None
    direction: Any = None
    ccnq_account: Any = None
    accountcode: Any = None
    ccnq_from_e164: Any = None
    sip_from_user: Any = None
    ccnq_to_e164: Any = None
    sip_to_user: Any = None
    billsec: Any = None
    duration: Any = None
    answer_epoch: Any = None
    sip_term_status: Any = None
    sip_invite_failure_status: Any = None
    hangup_cause: Any = None
    hangup_cause_q850: Any = None
    progress_mediamsec: Any = None
    progressmsec: Any = None
    rtp_audio_in_mos: Any = None
    uuid: Any = None


class _Doc(msgspec.Struct, rename={"id_": "_id", "deleted_": "_deleted"}):
    """A CDR document or a CouchDB change row (``id``, ``deleted``, ``doc``)."""

    variables: _Vars | None = None
    id_: Any = None
    deleted_: Any = None
    id: Any = None
    deleted: Any = None
    doc: msgspec.Raw | None = None


_decoder = msgspec.json.Decoder(_Doc)
# Bare non-finite tokens as FreeSWITCH >= 1.6 writes them in callStats; strings are
# matched first so that a token inside a string is left alone.
_NONFINITE = re.compile(rb'"(?:[^"\\]|\\.)*"|(-?(?:nan|NaN|NAN|inf|Infinity|INF)\b)')


def _nonfinite_to_null(raw: bytes) -> bytes:
    return _NONFINITE.sub(lambda m: b"null" if m.group(1) else m.group(), raw)


class Call(msgspec.Struct, gc=False):
    """One call leg, normalised as DESIGN.md's table says."""

    id: str | None
    profile: str
    direction: str
    account: str
    from_: str
    to: str
    end_epoch: int
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

    __slots__ = ("call", "_raw", "_doc")

    def __init__(self, call: Call, raw: bytes | None, doc: dict | None) -> None:
        self.call = call
        self._raw = raw
        self._doc = doc

    @property
    def doc(self) -> dict:
        """The whole document, with its variables URL-decoded; built once, on first use."""
        if self._doc is None:
            try:
                doc = orjson.loads(self._raw)
            except orjson.JSONDecodeError:
                doc = orjson.loads(_nonfinite_to_null(self._raw))
            variables = doc.get("variables")
            if isinstance(variables, dict):
                doc["variables"] = {k: _text(v) for k, v in variables.items()}
            self._doc = doc
        return self._doc


def decode(item: bytes | str | dict) -> Decoded:
    """Decode one document (raw JSON or an already parsed dict); raise Rejected when it does not count."""
    if isinstance(item, dict):
        return _decode_dict(item)
    if isinstance(item, str):
        item = item.encode("utf-8", "surrogatepass")
    elif not isinstance(item, bytes):
        item = bytes(item)
    return _decode_bytes(item)


def _decode_bytes(raw: bytes) -> Decoded:
    if not raw.isascii():
        try:
            raw.decode("utf-8")  # msgspec does not check strings it skips
        except UnicodeDecodeError as error:
            raise Rejected("bad_json", f"invalid UTF-8 at byte {error.start}") from None
    try:
        parsed = _decoder.decode(raw)
    except msgspec.ValidationError as error:
        raise _shape_error(error) from None
    except msgspec.DecodeError as error:
        fixed = _nonfinite_to_null(raw)
        if fixed == raw:
            raise Rejected("bad_json", str(error)) from None
        try:
            parsed = _decoder.decode(fixed)
        except msgspec.ValidationError as error2:
            raise _shape_error(error2) from None
        except msgspec.DecodeError:
            raise Rejected("bad_json", str(error)) from None
    except RecursionError:
        raise Rejected("bad_json", "nesting too deep") from None
    if parsed.variables is None and parsed.doc is not None:
        _check_row(parsed)
        return _decode_bytes(bytes(parsed.doc))  # a change row: the CDR is its `doc`
    doc_id = parsed.id_ if parsed.id_ is not None else parsed.id
    _check_id(doc_id, parsed.deleted_ or parsed.deleted)
    if parsed.variables is None:
        raise Rejected("no_variables")
    return Decoded(_call(parsed.variables, doc_id), raw, None)


def _shape_error(error: msgspec.ValidationError) -> Rejected:
    message = str(error)
    if message.endswith("`$.variables`"):
        return Rejected("bad_variables", message)
    if message.endswith("`$.doc`"):
        return Rejected("not_object", message)
    return Rejected("not_object", message)


def _check_row(row: _Doc) -> None:
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
    fields = {k: variables.get(k) for k in _Vars.__struct_fields__}
    return Decoded(_call(_Vars(**fields), doc_id), None, doc)


def _call(v: _Vars, doc_id: Any) -> Call:
    end_epoch = _int(v.end_epoch)
    if end_epoch is None:
        what = "missing" if v.end_epoch is None else f"not a number: {str(v.end_epoch)[:40]!r}"
        raise Rejected("bad_end_epoch", what)
    if end_epoch < _EPOCH_2000:
        raise Rejected("bad_end_epoch", f"before 2000: {end_epoch}")
    billsec = _int(v.billsec) or 0
    answer_epoch = _int(v.answer_epoch) or 0
    sip_code = _text(v.sip_term_status) or _text(v.sip_invite_failure_status) or "none"
    pdd = _int(v.progress_mediamsec)
    if not pdd or pdd <= 0:
        pdd = _int(v.progressmsec)
        if not pdd or pdd <= 0:
            pdd = None
    mos = _float(v.rtp_audio_in_mos)
    if doc_id is None:
        doc_id = _text(v.uuid)
    return Call(
        id=doc_id,
        profile=_text(v.ccnq_profile) or _text(v.sip_gateway_name)
        or _text(v.sofia_profile_name) or "unknown",
        direction=_text(v.ccnq_direction) or _text(v.direction) or "unknown",
        account=_text(v.ccnq_account) or _text(v.accountcode) or "unknown",
        from_=_text(v.ccnq_from_e164) or _text(v.sip_from_user) or "",
        to=_text(v.ccnq_to_e164) or _text(v.sip_to_user) or "",
        end_epoch=end_epoch,
        billsec=max(billsec, 0),
        duration=max(_int(v.duration) or 0, 0),
        answered=answer_epoch > 0 or billsec > 0,
        sip_code=sip_code,
        hangup_cause=_text(v.hangup_cause) or "none",
        q850=_text(v.hangup_cause_q850),
        pdd_ms=pdd,
        mos=mos,
    )


def _text(value: Any) -> str | None:
    """A variable as text: URL-decoded (FreeSWITCH's encode-values), None when absent or empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return str(value)
    if "%" in value:
        return unquote(value, errors="replace")
    return value


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
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
