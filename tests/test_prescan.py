"""The compiled pre-scan (sixminutes/_prescan.c): it must never change what decode() says.

decode() with the pre-scan and decode() without it (msgspec over the whole document)
are compared on real fixtures, on generated documents and on mutated bytes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import END, raw, run_sanitized
from sixminutes import call as call_module
from sixminutes import rawjson
from sixminutes.call import _FIELDS, Rejected, decode

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "cdr"
prescan = call_module.prescan


def outcome(item: bytes, monkeypatch: pytest.MonkeyPatch, fast: bool) -> tuple:
    """decode()'s verdict with or without the pre-scan."""
    monkeypatch.setattr(call_module, "prescan", prescan if fast else None)
    try:
        decoded = decode(item)
    except Rejected as rejected:
        return ("rejected", rejected.reason)
    return ("accepted", decoded.call)


def same_verdict(item: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple:
    slow = outcome(item, monkeypatch, fast=False)
    assert outcome(item, monkeypatch, fast=True) == slow, item[:300]
    return slow


def test_the_extension_is_built():
    assert prescan is not None, (
        "sixminutes._prescan is not built: install gcc and the Python headers, then "
        "`pip install -e .` again (without it every CDR is decoded about 3x slower)")


def test_keeps_only_the_wanted_members_verbatim():
    doc = (b'{"core-uuid":"x","_id":"a\\u00e9","callflow":[{"caller_profile":{"uuid":"u"}}],'
           b'"variables":{"billsec":"12","sip_full_via":"v","end_epoch":"1700000000",'
           b'"rtp_audio_in_mos":4.2,"uuid":{"nested":[1,2]}},"doc":null}')
    assert prescan(doc) == (b'{"_id":"a\\u00e9","variables":{"billsec":"12",'
                            b'"end_epoch":"1700000000","rtp_audio_in_mos":4.2,'
                            b'"uuid":{"nested":[1,2]}},"doc":null}')


@pytest.mark.parametrize("doc", [
    b'{"variables":"abc","x":1e999}',  # the shape error is checked against the whole document
    b'{"variables":5,"callflow":[{"t":1' + b"0" * 5000 + b'}]}',
    b'{"variables":{"end_epoch":"1700000000"},"x":1e999}',
])
def test_a_shape_error_is_judged_on_the_whole_document(doc, monkeypatch):
    assert prescan(doc) is not None
    same_verdict(doc, monkeypatch)


@pytest.mark.parametrize("doc", [
    b'{"variables":{"end_epoch":nan}}',            # bare nan: the slow path mends it
    b'{"variables":{"end\\u005fepoch":"1"}}',      # an escaped key may spell a wanted name
    b'{"variabl\\u0065s":{}}',
    '{"variables":{"caller":"é"}}'.encode(),      # non-ASCII: UTF-8 is checked in Python
    b'{"a":"\\ud800\\udc00"}',                     # surrogates: msgspec judges their pairing
    b'{"variables":{}} x',                         # trailing garbage
    b'[{"variables":{}}]',                         # not an object
    b'{"a":' + b"[" * 65 + b"]" * 65 + b'}',       # deeper than the scanner goes
    b'{"a":"tab\tin a string"}',                   # a control character
    b'{"a":01}', b'{"a":1.}', b'{"a":-}', b'{"a":tru}', b'{"a":"\\x"}', b'{"a" 1}',
    b'{"a":1,}', b'{,}', b'', b'  ', b'{"a":"unterminated}',
])
def test_leaves_to_the_slow_path_what_it_cannot_judge(doc, monkeypatch):
    assert prescan(doc) is None
    same_verdict(doc, monkeypatch)


def test_accepts_the_json_grammar_at_its_edges(monkeypatch):
    doc = (b' \r\n\t{ "n" : [ -0 , 0.5e-3 , 1E+2 , 123456789012345678901234567890 , true , false ,'
           b' null , { } , [ ] , "\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uFFFF" ] ,'
           b' "variables" : { "end_epoch" : "%d" } } \n' % END)
    assert prescan(doc) == b'{"variables":{"end_epoch":"%d"}}' % END
    assert same_verdict(doc, monkeypatch)[0] == "accepted"


def fixture_files() -> list[Path]:
    here = Path(__file__).resolve().parent / "fixtures"
    found = sorted(here.rglob("*.json")) if here.is_dir() else []
    return found + (sorted(SHARED.glob("*.json")) if SHARED.is_dir() else [])


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_fixtures_decode_alike(path, monkeypatch):
    data = path.read_bytes()
    same_verdict(data, monkeypatch)
    if data.isascii():
        try:
            msgspec.json.decode(data)
        except msgspec.DecodeError:
            return
        if isinstance(json.loads(data), dict):
            assert prescan(data) is not None, "a valid ASCII CDR takes the fast path"


# --- generated documents and mutated bytes ----------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
variable_values = (values | st.integers(0, 2**40).map(str) | st.sampled_from(
    ["", "0", "-1", "1.5", "nan", "%2B1555", "n/a", str(END), "200", "487"]))
names = st.sampled_from(_FIELDS) | st.text(max_size=8)
variables = st.dictionaries(names, variable_values, max_size=12)
documents = st.fixed_dictionaries({}, optional={
    "variables": variables | values,
    "_id": values, "id": values, "_deleted": values, "deleted": values,
    "doc": st.just({"variables": {"end_epoch": str(END)}}) | values,
    "callflow": values,
})


@st.composite
def serialized(draw) -> bytes:
    doc = draw(documents)
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]))
    text = json.dumps(doc, separators=separators, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


JSON_BYTES = b'{}[]":,\\ \t\nntrufalse0123456789.eE+-u'


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(serialized()))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from(JSON_BYTES))
        if edit == "insert":
            data.insert(i, byte)
        elif i < len(data):
            if edit == "delete":
                del data[i]
            else:
                data[i] = byte
    return bytes(data)


@settings(max_examples=600, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=serialized())
def test_generated_documents_decode_alike(data, monkeypatch):
    same_verdict(data, monkeypatch)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_mutated_documents_decode_alike(data, monkeypatch):
    same_verdict(data, monkeypatch)


@settings(max_examples=300)
@given(data=mutated())
def test_what_it_keeps_is_json_when_the_input_is(data):
    kept = prescan(data)
    if kept is not None:
        try:
            msgspec.json.decode(kept)  # raises when the copy is not JSON
        except msgspec.ValidationError:  # JSON, but a number beyond a double (1e309)
            with pytest.raises(msgspec.ValidationError, match="out of range"):
                msgspec.json.decode(data)  # (the whole document has it too)
        assert len(kept) <= len(data) + 2


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_decode_alike(data, monkeypatch):
    same_verdict(data, monkeypatch)


def test_a_real_sized_cdr_takes_the_fast_path(monkeypatch):
    doc = raw(billsec="12", sip_term_status="200", ccnq_profile="p")
    assert prescan(doc) is not None
    assert same_verdict(doc, monkeypatch)[0] == "accepted"


_NESTING_BYTES = st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b"[["]),
                          max_size=60).map(b"".join)


@settings(max_examples=500)
@given(_NESTING_BYTES, st.integers(0, 6))
def test_the_compiled_depth_check_agrees_with_the_pattern(data, limit):
    """rawjson.MAX_NESTING is checked by ``deeper_than`` (the document need not be JSON) or,
    without the extension, by the string pattern and a count: both must read strings alike."""
    kept = rawjson.MAX_NESTING
    rawjson.MAX_NESTING = limit
    try:
        assert rawjson._prescan.deeper_than(data, limit) == rawjson._too_deep_slowly(data)
    finally:
        rawjson.MAX_NESTING = kept


def test_hostile_input_under_address_sanitizer(tmp_path):
    """The C code reads CDRs POSTed by anyone: no read past a buffer, no undefined behaviour."""
    proc = run_sanitized("_prescan", "sanitized_prescan.py", tmp_path, 1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no sanitizer report" in proc.stdout
