"""decode(): one FreeSWITCH CDR document into a normalised Call, or a rejection reason."""
from __future__ import annotations

import json
import math
import re

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import END, cdr, raw
from sixminutes.direction import DIRECTIONS, normal_direction
from sixminutes.call import REASONS, Call, Decoded, Rejected, decode


def call_of(**variables) -> Call:
    return decode(raw(**variables)).call


def reason_of(item) -> str:
    with pytest.raises(Rejected) as info:
        decode(item)
    assert info.value.reason in REASONS
    return info.value.reason


# --- the Call table of DESIGN.md ------------------------------------------------------------

def test_minimal_cdr_defaults():
    call = call_of()
    assert call == Call(
        id=None, profile="unknown", direction="unknown", account="unknown", from_="", to="",
        end_epoch=END, start_epoch=END, billsec=0, duration=0, answered=False, sip_code="none",
        hangup_cause="none", q850=None, pdd_ms=None, mos=None)


@pytest.mark.parametrize("variables, expected", [
    ({"ccnq_profile": "p1", "sip_gateway_name": "gw", "sofia_profile_name": "sofia"}, "p1"),
    ({"sip_gateway_name": "gw", "sofia_profile_name": "sofia"}, "gw"),
    ({"sofia_profile_name": "sofia"}, "sofia"),
    ({}, "unknown"),
    ({"ccnq_profile": "", "sip_gateway_name": "gw"}, "gw"),  # empty counts as missing
])
def test_profile_fallbacks(variables, expected):
    assert call_of(**variables).profile == expected


@pytest.mark.parametrize("variables, expected", [
    ({"ccnq_direction": "egress", "direction": "inbound"}, "egress"),
    ({"ccnq_direction": "ingress"}, "ingress"),
    ({"direction": "inbound"}, "ingress"),
    ({"direction": "outbound"}, "egress"),
    ({"direction": "OUTBOUND"}, "egress"),
    ({"ccnq_direction": "outbound"}, "egress"),
    ({"direction": "transit"}, "transit"),  # a site's own word is kept
    ({}, "unknown"),
])
def test_direction_fallbacks_in_one_vocabulary(variables, expected):
    """ccnq's ingress/egress; FreeSWITCH's inbound/outbound mapped onto them (docs/alerts.md)."""
    assert call_of(**variables).direction == expected


@given(st.text(max_size=20))
def test_normal_direction_is_idempotent_and_keeps_other_words(word):
    once = normal_direction(word)
    assert normal_direction(once) == once
    if word.lower() not in DIRECTIONS:
        assert once == word


@pytest.mark.parametrize("variables, expected", [
    ({"ccnq_account": "acct1", "accountcode": "code"}, "acct1"),
    ({"accountcode": "code"}, "code"),
    ({}, "unknown"),
])
def test_account_fallbacks(variables, expected):
    assert call_of(**variables).account == expected


@pytest.mark.parametrize("variables, from_, to", [
    ({"ccnq_from_e164": "33123", "sip_from_user": "u1", "ccnq_to_e164": "1555", "sip_to_user": "u2"},
     "33123", "1555"),
    ({"sip_from_user": "u1", "sip_to_user": "u2"}, "u1", "u2"),
    ({}, "", ""),
])
def test_from_and_to_fallbacks(variables, from_, to):
    call = call_of(**variables)
    assert (call.from_, call.to) == (from_, to)


def test_end_epoch_is_an_integer():
    call = call_of(end_epoch="1700000123")
    assert call.end_epoch == 1_700_000_123 and type(call.end_epoch) is int


def test_billsec_and_duration_are_integers():
    call = call_of(billsec="42", duration="50")
    assert (call.billsec, call.duration) == (42, 50)


def test_billsec_and_duration_missing_are_zero():
    call = call_of()
    assert (call.billsec, call.duration) == (0, 0)


def test_unparseable_billsec_is_zero():
    assert call_of(billsec="n/a").billsec == 0


@pytest.mark.parametrize("variables, answered", [
    ({"answer_epoch": "1699999990", "billsec": "0"}, True),
    ({"answer_epoch": "0", "billsec": "10"}, True),
    ({"billsec": "10"}, True),
    ({"answer_epoch": "0", "billsec": "0"}, False),
    ({}, False),
])
def test_answered_from_answer_epoch_or_billsec(variables, answered):
    assert call_of(**variables).answered is answered


@pytest.mark.parametrize("variables, expected", [
    ({"sip_term_status": "200", "sip_invite_failure_status": "503"}, "200"),
    ({"sip_invite_failure_status": "503"}, "503"),
    ({}, "none"),
])
def test_sip_code_fallbacks(variables, expected):
    assert call_of(**variables).sip_code == expected


def test_hangup_cause_and_q850():
    call = call_of(hangup_cause="NORMAL_CLEARING", hangup_cause_q850="16")
    assert (call.hangup_cause, call.q850) == ("NORMAL_CLEARING", "16")


def test_hangup_cause_missing_is_none_string_and_q850_none():
    call = call_of()
    assert call.hangup_cause == "none"
    assert call.q850 is None


@pytest.mark.parametrize("variables, expected", [
    ({"progress_mediamsec": "1200", "progressmsec": "900"}, 1200),
    ({"progress_mediamsec": "0", "progressmsec": "900"}, 900),
    ({"progressmsec": "900"}, 900),
    ({"progress_mediamsec": "0", "progressmsec": "0"}, None),
    ({}, None),
])
def test_pdd_fallbacks(variables, expected):
    assert call_of(**variables).pdd_ms == expected


@pytest.mark.parametrize("value, expected", [
    ("4.2", 4.2),
    ("1", 1.0),
    ("nan", None),
    ("NaN", None),
    ("inf", None),
    ("-inf", None),
    ("garbage", None),
    (None, None),  # missing
])
def test_mos_only_when_finite(value, expected):
    assert call_of(rtp_audio_in_mos=value).mos == expected


def test_id_from_underscore_id_else_uuid():
    assert decode(raw(_id="doc-1", uuid="u-1")).call.id == "doc-1"
    assert call_of(uuid="u-1").id == "u-1"
    assert call_of().id is None


# --- URL-encoded values (encode-values=true) -----------------------------------------------

@pytest.mark.parametrize("encoded, decoded", [
    ("%2B33123456789", "+33123456789"),
    ("acme%20tel", "acme tel"),
    ("caf%C3%A9", "café"),
    ("%E2%82%AC", "€"),
    ("%e2%82%ac", "€"),
])
def test_url_encoded_values_are_decoded(encoded, decoded):
    call = call_of(ccnq_profile=encoded, ccnq_from_e164=encoded, ccnq_to_e164=encoded,
                   ccnq_account=encoded, hangup_cause=encoded)
    assert (call.profile, call.from_, call.to, call.account, call.hangup_cause) == (decoded,) * 5


def test_values_without_percent_are_not_decoded():
    call = call_of(ccnq_profile="a+b", ccnq_account="x%y")  # no %XX escape at all
    assert call.profile == "a+b"
    assert call.account == "x%y"


def test_percent_not_followed_by_hex_is_kept():
    assert call_of(ccnq_profile="100% sure").profile == "100% sure"


def test_only_one_level_of_decoding():
    assert call_of(ccnq_profile="%2520").profile == "%20"


# --- real FreeSWITCH quirks -----------------------------------------------------------------

NAN_CDR = (b'{"callStats":{"audio":{"inbound":{"mos":nan,"quality_percentage":NaN,'
           b'"jitter_min_variance":inf,"jitter_max_variance":-inf}}},'
           b'"variables":{"end_epoch":"1700000000","rtp_audio_in_mos":"nan",'
           b'"sip_user_agent":"nan inf NaN -inf"}}')


def test_bare_nonfinite_tokens_are_accepted():
    decoded = decode(NAN_CDR)
    assert decoded.call.end_epoch == 1_700_000_000
    assert decoded.call.mos is None


def test_bare_nonfinite_tokens_become_null_in_doc():
    inbound = decode(NAN_CDR).doc["callStats"]["audio"]["inbound"]
    assert inbound == {"mos": None, "quality_percentage": None,
                       "jitter_min_variance": None, "jitter_max_variance": None}


def test_nonfinite_token_inside_a_string_is_left_alone():
    variables = decode(NAN_CDR).doc["variables"]
    assert variables["sip_user_agent"] == "nan inf NaN -inf"
    assert variables["rtp_audio_in_mos"] == "nan"


def test_nonfinite_token_in_string_with_escaped_quote_is_left_alone():
    doc = b'{"x":nan,"s":"say \\"nan\\" now","variables":{"end_epoch":"1700000000"}}'
    decoded = decode(doc)
    assert decoded.doc["s"] == 'say "nan" now'
    assert decoded.doc["x"] is None


def test_repeated_callflow_key_is_accepted():
    doc = (b'{"callflow":{"profile_index":"1"},"callflow":{"profile_index":"2"},'
           b'"variables":{"end_epoch":"1700000000","ccnq_profile":"p"}}')
    decoded = decode(doc)
    assert decoded.call.profile == "p"
    assert decoded.doc["callflow"]["profile_index"] in ("1", "2")


def test_callflow_as_object():
    doc = cdr(ccnq_profile="p")
    doc["callflow"] = {"profile_index": "1", "caller_profile": {"username": "x"}}
    decoded = decode(orjson.dumps(doc))
    assert decoded.call.profile == "p"
    assert decoded.doc["callflow"]["caller_profile"] == {"username": "x"}


def test_callflow_as_array():
    doc = cdr(ccnq_profile="p")
    doc["callflow"] = [{"profile_index": "1"}, {"profile_index": "2"}]
    decoded = decode(orjson.dumps(doc))
    assert decoded.call.profile == "p"
    assert len(decoded.doc["callflow"]) == 2


def test_valid_surrogate_pair_escape_is_accepted():
    doc = b'{"variables":{"end_epoch":"1700000000","ccnq_profile":"smile \\ud83d\\ude00"}}'
    assert decode(doc).call.profile == "smile \U0001F600"


def test_bytearray_and_memoryview_input_are_read():
    body = raw(ccnq_profile="p")
    assert decode(bytearray(body)).call.profile == "p"
    assert decode(memoryview(body)).call.profile == "p"


@pytest.mark.parametrize("item", [raw().decode(), 5, None, [cdr()], 1.5])
def test_other_python_types_are_not_object(item):
    assert reason_of(item) == "not_object"


def test_numbers_instead_of_strings_are_read():
    doc = {"variables": {"end_epoch": 1_700_000_000, "billsec": 12, "sip_term_status": 200,
                         "rtp_audio_in_mos": 4.5, "answer_epoch": 1_699_999_000}}
    call = decode(orjson.dumps(doc)).call
    assert (call.end_epoch, call.billsec, call.sip_code, call.mos, call.answered) == (
        1_700_000_000, 12, "200", 4.5, True)


# --- CouchDB change rows --------------------------------------------------------------------

def test_change_row_with_doc_bytes():
    row = {"seq": "1-abc", "id": "cdr-1", "changes": [{"rev": "1-x"}],
           "doc": cdr(_id="cdr-1", ccnq_profile="p")}
    decoded = decode(orjson.dumps(row))
    assert decoded.call.id == "cdr-1"
    assert decoded.call.profile == "p"


def test_change_row_with_doc_dict():
    row = {"seq": "1-abc", "id": "cdr-1", "changes": [{"rev": "1-x"}],
           "doc": cdr(_id="cdr-1", ccnq_profile="p")}
    decoded = decode(row)
    assert decoded.call.id == "cdr-1"
    assert decoded.call.profile == "p"
    assert decoded.doc["_id"] == "cdr-1"  # the CDR, not the row


def test_deleted_change_row_without_doc():
    row = {"seq": "2-abc", "id": "cdr-1", "changes": [{"rev": "2-y"}], "deleted": True}
    assert reason_of(orjson.dumps(row)) == "deleted"
    assert reason_of(row) == "deleted"


def test_deleted_change_row_with_doc():
    row = {"seq": "2", "id": "cdr-1", "deleted": True,
           "doc": {"_id": "cdr-1", "_rev": "2-y", "_deleted": True}}
    assert reason_of(orjson.dumps(row)) == "deleted"
    assert reason_of(row) == "deleted"


def test_design_doc_change_row():
    row = {"seq": "3", "id": "_design/app", "changes": [{"rev": "1-z"}]}
    assert reason_of(orjson.dumps(row)) == "design_doc"
    assert reason_of(row) == "design_doc"


def test_design_doc_change_row_with_doc():
    row = {"seq": "3", "id": "_design/app", "doc": {"_id": "_design/app", "views": {}}}
    assert reason_of(orjson.dumps(row)) == "design_doc"
    assert reason_of(row) == "design_doc"


# --- rejections -----------------------------------------------------------------------------

@pytest.mark.parametrize("item", [
    b"",
    b"{",
    b"not json",
    raw()[:-1],  # truncated
    raw()[: len(raw()) // 2],
    b'{"variables":{"end_epoch":"1700000000"},}',
], ids=["empty", "brace", "text", "truncated-1", "truncated-half", "trailing-comma"])
def test_bad_json(item):
    assert reason_of(item) == "bad_json"


def test_invalid_utf8_is_bad_json():
    assert reason_of(b'{"x":"\xff\xfe","variables":{"end_epoch":"1700000000"}}') == "bad_json"
    assert reason_of(b'{"variables":{"end_epoch":"1700000000","ccnq_profile":"\xc3"}}') == "bad_json"


def test_deep_nesting_outside_variables_is_bad_json():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert reason_of(b'{"x":' + deep + b',"variables":{"end_epoch":"1700000000"}}') == "bad_json"


def test_deep_nesting_in_an_unread_variable_is_bad_json():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert reason_of(b'{"variables":{"end_epoch":"1700000000","x":' + deep + b"}}") == "bad_json"


def test_deep_nesting_as_a_read_variable_is_bad_json():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert reason_of(b'{"variables":{"end_epoch":' + deep + b"}}") == "bad_json"


def _nested(levels: int) -> bytes:
    """A CDR whose whole document nests ``levels`` deep (the root object is the first)."""
    inner = levels - 1
    return (b'{"variables":{"end_epoch":"1700000000"},"x":' + b"[" * inner + b"]" * inner
            + b"}")


def _at_stack_depth(frames: int, fn):
    return fn() if frames == 0 else _at_stack_depth(frames - 1, fn)


def _outcome(raw: bytes) -> str:
    try:
        decode(raw)
    except Rejected as rejected:
        return f"{rejected.reason}: {rejected.detail}"
    return "accepted"


@pytest.mark.parametrize("frames", [0, 150])
def test_the_nesting_limit_does_not_depend_on_the_callers_stack(frames):
    """msgspec alone would accept 701 levels from a shallow stack and refuse them from a deep
    one: a replay's processes, or feed and feed_many, would then disagree on a document."""
    from sixminutes.call import MAX_NESTING
    assert _at_stack_depth(frames, lambda: _outcome(_nested(MAX_NESTING))) == "accepted"
    assert _at_stack_depth(frames, lambda: _outcome(_nested(MAX_NESTING + 1))) == (
        f"bad_json: nesting deeper than {MAX_NESTING}")


def test_brackets_inside_strings_are_not_nesting():
    from sixminutes.call import MAX_NESTING
    text = "é".encode() + b"[{" * MAX_NESTING  # (not ASCII: the pre-scan leaves it to msgspec)
    assert _outcome(b'{"variables":{"end_epoch":"1700000000","x":"' + text + b'"}}') == "accepted"


def test_deep_nesting_in_a_document_read_leniently_is_bad_json():
    # billsec "n/a" sends the document down the lenient path, which must still reject it.
    deep = b"[" * 100_000 + b"]" * 100_000
    doc = b'{"variables":{"end_epoch":"1700000000","billsec":"n/a","x":' + deep + b"}}"
    assert reason_of(doc) == "bad_json"


def test_deep_nesting_at_top_level_is_rejected():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert reason_of(deep) in ("bad_json", "not_object")


@pytest.mark.parametrize("escape", [rb"\ud800", rb"\udc00", rb"\ud800x", rb"\udbff\u0041"])
def test_lone_surrogate_escapes_are_bad_json(escape):
    assert reason_of(b'{"x":"' + escape + b'","variables":{"end_epoch":"1700000000"}}') == "bad_json"
    assert reason_of(b'{"variables":{"end_epoch":"1700000000","ccnq_profile":"' + escape
                     + b'"}}') == "bad_json"


def test_lone_surrogate_encoded_as_bytes_is_bad_json():
    text = '{"variables":{"end_epoch":"1700000000","ccnq_profile":"\ud800"}}'
    assert reason_of(text.encode("utf-8", "surrogatepass")) == "bad_json"


@pytest.mark.parametrize("item", [b"[]", b"[1,2]", b"5", b"-1.5", b'"text"', b"null", b"true"])
def test_not_object(item):
    assert reason_of(item) == "not_object"


def test_design_doc():
    assert reason_of(raw(_id="_design/sixminutes")) == "design_doc"
    assert reason_of(cdr(_id="_design/sixminutes")) == "design_doc"


def test_deleted_via_underscore_deleted():
    doc = cdr(_id="cdr-1", _doc={"_deleted": True})
    assert reason_of(orjson.dumps(doc)) == "deleted"
    assert reason_of(doc) == "deleted"


def test_not_deleted_when_underscore_deleted_is_false():
    doc = cdr(_id="cdr-1", _doc={"_deleted": False})
    assert decode(orjson.dumps(doc)).call.id == "cdr-1"


@pytest.mark.parametrize("doc", [{}, {"_id": "x"}, {"callflow": []}, {"variables": None}])
def test_no_variables(doc):
    assert reason_of(orjson.dumps(doc)) == "no_variables"
    assert reason_of(doc) == "no_variables"


@pytest.mark.parametrize("variables", [[], ["end_epoch", "1700000000"], 5, 1.5, "end_epoch", True])
def test_bad_variables(variables):
    doc = {"variables": variables}
    assert reason_of(orjson.dumps(doc)) == "bad_variables"
    assert reason_of(doc) == "bad_variables"


@pytest.mark.parametrize("end_epoch", [None, "", "abc", "12abc", "nan", "inf", "946684799", "0", "-5"])
def test_bad_end_epoch(end_epoch):
    assert reason_of(raw(end_epoch=end_epoch)) == "bad_end_epoch"
    assert reason_of(cdr(end_epoch=end_epoch)) == "bad_end_epoch"


@pytest.mark.parametrize("end_epoch", [True, [1_700_000_000], {"a": 1}])
def test_bad_end_epoch_of_other_json_types(end_epoch):
    doc = {"variables": {"end_epoch": end_epoch}}
    assert reason_of(orjson.dumps(doc)) == "bad_end_epoch"
    assert reason_of(doc) == "bad_end_epoch"


def test_end_epoch_at_2000_is_accepted():
    assert call_of(end_epoch="946684800").end_epoch == 946_684_800


def test_rejected_carries_reason_and_detail():
    with pytest.raises(Rejected) as info:
        decode(raw(end_epoch="946684799"))
    assert info.value.reason == "bad_end_epoch"
    assert "946684799" in info.value.detail
    assert str(info.value).startswith("bad_end_epoch")


def test_every_decode_reason_is_documented():
    decode_reasons = {"bad_json", "not_object", "design_doc", "deleted", "no_variables",
                      "bad_variables", "bad_end_epoch"}
    assert decode_reasons <= set(REASONS)
    assert {"future", "too_old", "duplicate"} <= set(REASONS)


# --- dict input and the document ------------------------------------------------------------

FULL = dict(
    _id="cdr-42", ccnq_profile="carrier%201", ccnq_direction="egress", ccnq_account="acct%2B1",
    ccnq_from_e164="%2B33123", ccnq_to_e164="%2B1555", billsec="42", duration="50",
    answer_epoch="1699999950", sip_term_status="200", hangup_cause="NORMAL_CLEARING",
    hangup_cause_q850="16", progress_mediamsec="800", progressmsec="700", rtp_audio_in_mos="4.3",
    uuid="u-1",
)


def test_full_cdr():
    call = decode(raw(**FULL)).call
    assert call == Call(
        id="cdr-42", profile="carrier 1", direction="egress", account="acct+1", from_="+33123",
        to="+1555", end_epoch=END, start_epoch=END - 50, billsec=42, duration=50, answered=True, sip_code="200",
        hangup_cause="NORMAL_CLEARING", q850="16", pdd_ms=800, mos=4.3)


@pytest.mark.parametrize("variables, expected", [
    ({"start_epoch": str(END - 70), "duration": "50"}, END - 70),  # start_epoch when it is one
    ({"start_epoch": END - 70}, END - 70),
    ({"duration": "50"}, END - 50),  # else the end less the duration
    ({"start_epoch": str(END + 5), "duration": "50"}, END - 50),  # after its end: no start
    ({"start_epoch": "0", "duration": "9"}, END - 9),  # (FreeSWITCH's "never")
    ({"start_epoch": "soon"}, END),
])
def test_start_epoch(variables, expected):
    assert call_of(**variables).start_epoch == expected
    assert decode(cdr(**variables)).call.start_epoch == expected


def test_dict_input_gives_the_same_call_as_bytes():
    assert decode(cdr(**FULL)).call == decode(raw(**FULL)).call


def test_as_dict():
    data = decode(raw(**FULL)).call.as_dict()
    assert data["profile"] == "carrier 1" and data["from_"] == "+33123" and data["pdd_ms"] == 800


def test_doc_is_built_only_on_access():
    decoded = decode(raw(**FULL))
    assert isinstance(decoded, Decoded)
    assert decoded._doc is None
    doc = decoded.doc
    assert decoded._doc is doc
    assert decoded.doc is doc  # built once


def test_doc_is_the_whole_document_with_variables_url_decoded():
    source = cdr(**FULL)
    source["callStats"] = {"audio": {"inbound": {"mos": 4.3}}}
    doc = decode(orjson.dumps(source)).doc
    assert doc["_id"] == "cdr-42"
    assert doc["callStats"] == {"audio": {"inbound": {"mos": 4.3}}}
    assert doc["callflow"] == source["callflow"]
    assert doc["variables"]["ccnq_profile"] == "carrier 1"
    assert doc["variables"]["ccnq_from_e164"] == "+33123"
    assert doc["variables"]["billsec"] == "42"
    assert set(doc["variables"]) == set(source["variables"])


def test_doc_keeps_empty_string_variables():
    doc = decode(raw(sip_from_display="", ccnq_profile="p")).doc
    assert doc["variables"]["sip_from_display"] == ""


def test_doc_of_dict_input_has_variables_url_decoded():
    doc = decode(cdr(**FULL)).doc
    assert doc["variables"]["ccnq_profile"] == "carrier 1"
    assert doc["variables"]["ccnq_account"] == "acct+1"


def test_doc_of_dict_input_with_nan_in_variables_is_still_read():
    doc = {"variables": {"end_epoch": "1700000000", "rtp_audio_in_mos": math.nan}}
    assert decode(doc).call.mos is None


# --- never another exception ----------------------------------------------------------------

def check_total(item) -> None:
    """decode() returns a Decoded or raises Rejected with a documented reason, nothing else."""
    try:
        result = decode(item)
    except Rejected as rejected:
        assert rejected.reason in REASONS
    else:
        assert isinstance(result, Decoded)
        assert isinstance(result.call.end_epoch, int)
        assert isinstance(result.call.profile, str) and result.call.profile


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_reject(data):
    check_total(data)


@settings(max_examples=200)
@given(st.binary(max_size=30), st.binary(max_size=30))
def test_bytes_spliced_into_a_cdr_decode_or_reject(prefix, suffix):
    body = raw(ccnq_profile="p", billsec="3")
    cut = len(prefix) % len(body)
    check_total(body[:cut] + prefix + body[cut:] + suffix)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(),
    st.text(max_size=10), st.sampled_from(["1700000000", "nan", "%2B1", "", "0", "-1", "4.5"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
READ = ["end_epoch", "ccnq_profile", "sip_gateway_name", "direction", "accountcode", "billsec",
        "duration", "answer_epoch", "sip_term_status", "hangup_cause_q850", "progressmsec",
        "rtp_audio_in_mos", "uuid"]
variables = st.dictionaries(st.sampled_from(READ) | st.text(max_size=6), json_values, max_size=6)
documents = st.one_of(
    json_values,
    st.fixed_dictionaries({"variables": json_values}),
    st.fixed_dictionaries({"variables": variables},
                          optional={"_id": json_values, "_deleted": json_values,
                                    "id": json_values, "doc": json_values}),
    st.fixed_dictionaries({"id": json_values, "doc": st.fixed_dictionaries({"variables": variables})}),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_arbitrary_json_values_decode_or_reject(document):
    check_total(json.dumps(document).encode())  # json.dumps: also big ints, NaN, Infinity
    if isinstance(document, dict):
        check_total(document)


numberish = st.one_of(
    st.sampled_from(["", "0", "-1", "1700000000", "1700000000.9", "1e9", "nan", "inf", "abc",
                     " 12", "%2B1", "%E2%82%AC", "null", "true", "4.5"]),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.text(max_size=8),
)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(READ), numberish, max_size=8))
def test_dict_and_bytes_inputs_agree(vars_):
    doc = {"variables": {"end_epoch": "1700000000", **vars_}}
    def outcome(item):
        try:
            return decode(item).call
        except Rejected as rejected:
            return rejected.reason
    assert outcome(doc) == outcome(orjson.dumps(doc))


def test_doc_of_dict_input_is_built_only_on_access_and_leaves_the_input_alone():
    source = cdr(**FULL)
    decoded = decode(source)
    assert decoded._doc is None
    assert decoded.doc["variables"]["ccnq_profile"] == "carrier 1"
    assert source["variables"]["ccnq_profile"] == "carrier%201"


def test_integer_beyond_64_bits_in_a_text_variable():
    big = 2**70
    doc = {"variables": {"end_epoch": "1700000000", "ccnq_profile": big}}
    assert decode(json.dumps(doc).encode()).call.profile == str(big)
    assert decode(doc).call.profile == str(big)


def test_deeply_nested_text_variable_in_dict_input_decodes_or_rejects():
    deep: list = []
    for _ in range(1000):
        deep = [deep]
    check_total({"variables": {"end_epoch": "1700000000", "ccnq_profile": deep}})


_RUNS = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _by_runs(value: str) -> str:
    """The reference: each run of %XX read as UTF-8 bytes (replacement for invalid), the rest kept."""
    return _RUNS.sub(lambda m: bytes.fromhex(m.group().replace("%", "")).decode("utf-8", "replace"), value)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["%", "%C3", "%A9", "%c3%a9", "zz", "%2", "0", "é", "x", "%E2%82", "%AC",
                                 "+", "%FF", "%25", "%%"]) | st.characters(), max_size=12).map("".join))
def test_url_decoding_reads_runs_of_escapes_as_utf8_and_keeps_the_rest(value):
    from sixminutes.call import _unquoted
    assert _unquoted(value) == _by_runs(value)
