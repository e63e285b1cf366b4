"""POST /6minutes/cdr bodies: every way mod_json_cdr (and other clients) wrap one CDR."""

import base64
import json
import re
from pathlib import Path
from urllib.parse import quote, quote_from_bytes, unquote, unquote_to_bytes, urlencode

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

import test_prescan
from sixminutes.call import decode
from sixminutes.config import Config
from sixminutes.sources.xml_cdr import cdr_from_xml
from sixminutes.engine import Engine
from sixminutes.web import body as body_module
from sixminutes.web.body import (BodyError, _repair_strings, cdr_from_body, check_token,
                                 decode_post_body, url_decode)

FIXTURES = Path("/work/shared/fixtures/cdr")
SOMLENG = FIXTURES / "somleng__somleng__freeswitch_cdr.json"
XML_CDR = FIXTURES / "zhouhailin__freeswitch-cdr-all__a_4b3b36af-3d98-4670-bc14-0ee08890d7d6.cdr.xml"
pytestmark = pytest.mark.skipif(not SOMLENG.is_file(), reason=f"fixtures not found at {FIXTURES}")

JSON_T = "application/json"
PLAIN_T = "application/x-www-form-plaintext"
FORM_T = "application/x-www-form-urlencoded"
B64_T = "application/x-www-form-base64-encoded"
UNSAFE = set(b'\r\n #%&+:;<=>?@[\\]^`{|}"')  # SWITCH_URL_UNSAFE


def fs_url_encode(text: bytes, double_encode: bool = True) -> bytes:
    """switch_url_encode as mod_json_cdr calls it on the whole document: before
    signalwire/freeswitch#3152 (double_encode False) a %XX already in the text is copied as is."""
    out = bytearray()
    for i, c in enumerate(text):
        kept = not double_encode and re.fullmatch(rb"%[0-9A-F]{2}", text[i : i + 3])
        unsafe = c in UNSAFE or not 0x20 <= c <= 0x7E
        out += b"%%%02X" % c if unsafe and not kept else bytes([c])
    return bytes(out)


def compact(doc: dict) -> bytes:
    """cJSON_PrintUnformatted: no spaces, UTF-8 as is."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(SOMLENG.read_bytes())


@pytest.fixture(scope="module")
def text(doc) -> bytes:
    return compact(doc)


def reason(content_type, body) -> str:
    with pytest.raises(BodyError) as e:
        cdr_from_body(content_type, body)
    assert str(e.value).endswith(".") and len(str(e.value)) > 20  # a sentence for the answer
    return e.value.reason


# encode=false: the raw document


@pytest.mark.parametrize("ctype", [JSON_T, "application/json; charset=utf-8", PLAIN_T])
def test_raw_json(text, ctype):
    assert cdr_from_body(ctype, text) == text
    assert cdr_from_body(ctype, b"\xef\xbb\xbf\n" + text + b"\r\n") == text


def test_plaintext_also_accepts_a_cdr_prefix(text):
    assert cdr_from_body(PLAIN_T, b"cdr=" + text) == text


def test_json_is_extracted_not_validated():
    nan_doc = (FIXTURES / "somleng__somleng__freeswitch_cdr_with_invalid_json.json").read_bytes()
    assert cdr_from_body(JSON_T, nan_doc) == nan_doc.strip()  # bare nan: the engine copes
    assert cdr_from_body(JSON_T, b'{"not": "a cdr"}') == b'{"not": "a cdr"}'
    assert cdr_from_body(JSON_T, b"garbage") == b"garbage"  # the engine rejects it as bad_json


# encode=true: cdr= + URL-encoded JSON


def test_urlencoded_as_current_freeswitch_sends_it(text):
    body = b"cdr=" + fs_url_encode(text)
    assert b"&" not in body and b"+" not in body and b'"' not in body
    assert cdr_from_body(FORM_T, body) == text


def test_urlencoded_from_old_freeswitch_with_values_encoded_twice(doc, text):
    """Before #3152 the values' own %22 and %0D%0A were not escaped again: decoded once, they
    become raw quotes and CR LF that break the JSON. They are put back as %XX."""
    body = b"cdr=" + fs_url_encode(text, double_encode=False)
    with pytest.raises(json.JSONDecodeError):
        json.loads(unquote_to_bytes(body[4:]))  # what a naive decoder gets
    got = json.loads(cdr_from_body(FORM_T, body))
    variables = got["variables"]
    assert variables["sip_full_from"].startswith("%22+85516234567%22 <sip:+85516234567@")
    assert "%0D%0A" in variables["switch_r_sdp"]
    assert {k: unquote(v) for k, v in variables.items()} == {
        k: unquote(v) for k, v in doc["variables"].items()
    }
    assert got["callflow"] == doc["callflow"] and got["callStats"] == doc["callStats"]


@pytest.mark.parametrize("template", [b"cdr=%s&uuid=a-b", b"uuid=a-b&cdr=%s", b"x=1&cdr=%s&y=%%26"])
def test_urlencoded_with_other_form_fields(doc, template):
    """A `&` or `=` in a value is escaped, so the form splits only at its own fields."""
    doc = {**doc, "variables": {**doc["variables"], "odd": "a&b=c d+e"}}
    text = compact(doc)
    assert cdr_from_body(FORM_T, template % fs_url_encode(text)) == text


def test_urlencoded_by_an_html_form_encoder(doc):
    pretty = json.dumps(doc, indent=2).encode()  # spaces become `+` with urlencode()
    assert cdr_from_body(FORM_T, urlencode({"cdr": pretty}).encode()) == pretty


def test_urlencoded_type_with_an_unencoded_document(text):
    """`curl -d @cdr.json` and `curl -d "cdr=$(cat cdr.json)"` send the type but no encoding."""
    doc_with_amp = text.replace(b'"variables":{', b'"variables":{"x":"a&b=c",', 1)
    assert cdr_from_body(FORM_T, text) == text
    assert cdr_from_body(FORM_T, b"cdr=" + doc_with_amp) == doc_with_amp


# encode=base64: cdr= + base64, not URL-encoded


@pytest.fixture(scope="module")
def b64_text(doc) -> bytes:
    """The fixture with a caller name whose base64 has `+` and `/`, and a pad so it ends in `==`."""
    for n in range(3):  # five ~ and ? hold an aligned ~~~ (fn5+) and ??? (Pz8/) whatever the offset
        name = "Müller ~~~~~?????" + "x" * n
        text = compact({**doc, "variables": {**doc["variables"], "caller_id_name": name}})
        encoded = base64.b64encode(text)
        if encoded.endswith(b"==") and b"+" in encoded and b"/" in encoded:
            return text
    raise AssertionError("no padding found")


def test_base64_as_freeswitch_sends_it(b64_text):
    body = b"cdr=" + base64.b64encode(b64_text)
    assert body.endswith(b"==") and b"+" in body and b"/" in body
    assert cdr_from_body(B64_T, body) == b64_text


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: base64.encodebytes(b),  # wrapped at 76 columns
        lambda b: base64.b64encode(b).rstrip(b"="),  # padding lost
        lambda b: base64.urlsafe_b64encode(b),
        lambda b: quote(base64.b64encode(b), safe="").encode(),  # URL-encoded anyway
        lambda b: base64.b64encode(b) + b"&uuid=1",
    ],
    ids=["wrapped", "unpadded", "urlsafe", "urlencoded", "extra-field"],
)
def test_base64_tolerance(b64_text, mangle):
    assert cdr_from_body(B64_T, b"cdr=" + mangle(b64_text)) == b64_text


def test_base64_without_cdr_prefix(b64_text):
    assert cdr_from_body(B64_T, base64.b64encode(b64_text)) == b64_text


# No or an unknown Content-Type: sniffed


@pytest.mark.parametrize("ctype", [None, "", "text/plain", "application/octet-stream"])
def test_sniffed(text, b64_text, ctype):
    assert cdr_from_body(ctype, text) == text
    assert cdr_from_body(ctype, b"cdr=" + fs_url_encode(text)) == text
    assert cdr_from_body(ctype, b"cdr=" + fs_url_encode(text) + b"&uuid=1") == text
    assert cdr_from_body(ctype, fs_url_encode(text)) == text  # an err-log-dir file
    assert cdr_from_body(ctype, b"cdr=" + base64.b64encode(b64_text)) == b64_text
    assert cdr_from_body(ctype, base64.b64encode(b64_text)) == b64_text


def test_sniffed_old_freeswitch_body(doc, text):
    got = cdr_from_body(None, b"cdr=" + fs_url_encode(text, double_encode=False))
    assert json.loads(got)["callflow"] == doc["callflow"]


def test_decode_post_body_is_shared_with_replay(text, b64_text):
    assert decode_post_body(fs_url_encode(text)) == text
    assert decode_post_body(base64.b64encode(b64_text)) == b64_text
    assert decode_post_body(b"eyJ!!") == b"eyJ!!"  # lenient: the engine rejects it


# Errors: a reason code and a sentence


@pytest.mark.parametrize("ctype", [None, JSON_T, PLAIN_T, FORM_T, B64_T])
@pytest.mark.parametrize("body", [b"", b" \r\n\t", b"\xef\xbb\xbf"])
def test_empty(ctype, body):
    assert reason(ctype, body) == "empty"


def test_form_without_cdr_field():
    assert reason(FORM_T, b"foo=bar&baz=1") == "bad_form"
    assert reason(B64_T, b"foo=bar&baz=1") == "bad_form"
    with pytest.raises(BodyError, match="foo, baz"):
        cdr_from_body(FORM_T, b"foo=bar&baz=1")


@pytest.mark.parametrize("value", [b"!!!not base64!!!", b"abcde", b"eyJh*"])
def test_bad_base64(value):
    assert reason(B64_T, b"cdr=" + value) == "bad_base64"


PERCENT_PIECES = st.lists(st.sampled_from(
    [b"%", b"%4", b"%41", b"%4a", b"%G1", b"%%", b"a", b"+", b"%e2%82%ac", b"\xff", b"\x00"]))


@given(pieces=PERCENT_PIECES, tail=st.binary(max_size=40))
def test_percent_decoding_is_urllibs(pieces, tail):
    """The C percent-decoding of encode=true bodies gives what unquote_to_bytes gives, and
    finds the first bad escape where the regex it replaced found it."""
    data = b"".join(pieces) + tail
    assert body_module.unquote(data) == unquote_to_bytes(data)
    bad = re.search(rb"%(?![0-9A-Fa-f]{2})", data)
    assert body_module.bad_percent(data) == (-1 if bad is None else bad.start())
    # checked and decoded in one pass: the decoded bytes, or where the first bad escape is
    assert body_module.unquote_strict(data) == (unquote_to_bytes(data) if bad is None
                                                else bad.start())


def test_percent_decoding_is_compiled():
    """The body decoders run in C where the extension is built, as CI builds it."""
    assert body_module.unquote is not unquote_to_bytes
    assert body_module.unquote(b"%7B%22a%22%3A1%7D") == b'{"a":1}'
    assert body_module.unquote_strict.__module__ == "sixminutes._prescan"


def test_bad_urlencoding():
    assert reason(FORM_T, b"cdr=%7B%22a%22%3A%ZZ%7D") == "bad_urlencoding"
    assert reason(None, b"cdr=%7B%22a%2") == "bad_urlencoding"


@pytest.mark.parametrize("ctype", [None, JSON_T, PLAIN_T, FORM_T, B64_T, "text/xml"])
def test_an_xml_cdr_posted_as_mod_xml_cdr_sends_it_is_the_json_of_the_same_call(ctype):
    xml = XML_CDR.read_bytes()
    assert xml.startswith(b"<?xml") and b"%40" in xml  # values URL-encoded (encode-values)
    bodies = {
        PLAIN_T: [b"cdr=" + xml, xml],  # what mod_xml_cdr sends with encode=false (the default)
        FORM_T: [b"cdr=" + fs_url_encode(xml), b"cdr=" + xml],  # encode=true
        B64_T: [b"cdr=" + base64.b64encode(xml)],  # encode=base64
    }.get(ctype, [xml, b"cdr=" + xml])  # encode=textxml: the XML alone
    want = decode(cdr_from_xml(xml)).call
    assert want.id == "4b3b36af-3d98-4670-bc14-0ee08890d7d6" and want.from_ == "anonymous"
    for body in bodies:
        json_cdr = cdr_from_body(ctype, body)
        assert decode(json_cdr).call == want, body[:20]
        assert orjson.loads(json_cdr)["variables"]["sip_from_uri"] == "anonymous%40wilcom.com.cn"


def test_raw_xml_with_ampersands_in_a_plaintext_form_is_not_split():
    """A generic form parser cuts `cdr=<xml...&...` at the `&`; the escaped `&amp;` and a
    URL-encoded `%26` inside values must both come through."""
    xml = (b'<?xml version="1.0"?>\n<cdr core-uuid="u"><variables><end_epoch>1700000000'
           b'</end_epoch><sip_to_user>a&amp;b</sip_to_user><sip_from_user>c%26d</sip_from_user>'
           b'</variables></cdr>')
    call = decode(cdr_from_body(PLAIN_T, b"cdr=" + xml)).call
    assert (call.to, call.from_, call.end_epoch) == ("a&b", "c&d", 1700000000)


BILLION_LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE cdr [\n <!ENTITY lol "lol">\n'
                  + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1
                                                                 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b']>\n<cdr><variables><end_epoch>1700000000</end_epoch>'
                    b'<sip_to_user>&lol9;</sip_to_user></variables></cdr>')


@pytest.mark.parametrize("ctype", [PLAIN_T, FORM_T, B64_T, "text/xml"])
def test_a_billion_laughs_is_refused_unexpanded(ctype):
    body = {FORM_T: b"cdr=" + fs_url_encode(BILLION_LAUGHS),
            B64_T: b"cdr=" + base64.b64encode(BILLION_LAUGHS)}.get(ctype, b"cdr=" + BILLION_LAUGHS)
    with pytest.raises(BodyError, match="DTD, entity or external reference") as refused:
        cdr_from_body(ctype, body)
    assert refused.value.reason == "xml_dtd"


@pytest.mark.parametrize("body, why", [
    (b"<html><body>hello</body></html>", "the root element is <html>, not <cdr>"),
    (b"<cdr><variables><a>1&2</a></variables></cdr>", "not well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE cdr SYSTEM "http://evil.example/x.dtd"><cdr/>', "DTD"),
])
def test_xml_that_is_no_cdr_is_bad_xml_saying_why(body, why):
    with pytest.raises(BodyError, match=re.escape(why)) as refused:
        cdr_from_body(PLAIN_T, b"cdr=" + body)
    assert refused.value.reason in ("bad_xml", "xml_dtd")


def test_unknown_type_and_garbage():
    assert reason("image/png", b"\x89PNG\r\n\x1a\n....") == "unsupported_media_type"
    assert reason("multipart/form-data; boundary=x", b"--x\r\n") == "unsupported_media_type"
    assert reason(None, b"hello, world") == "unrecognised"
    assert reason(None, b"cdr=hello") == "unrecognised"


def test_body_error_is_an_exception_with_a_reason():
    e = BodyError("empty", "The request body is empty.")
    assert isinstance(e, Exception) and e.reason == "empty" and str(e) == "The request body is empty."


# check_token


def basic(user_password: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user_password).decode()}


def test_no_token_means_auth_disabled():
    assert check_token({}, None)
    assert check_token({"authorization": "Bearer whatever"}, None)


def test_bearer():
    assert check_token({"authorization": "Bearer s3cret"}, "s3cret")
    assert check_token({"Authorization": "bearer  s3cret "}, "s3cret")
    assert check_token(Headers({"AUTHORIZATION": "Bearer s3cret"}), "s3cret")
    assert not check_token({"authorization": "Bearer wrong"}, "s3cret")
    assert not check_token({"authorization": "Bearer s3cret2"}, "s3cret")
    assert not check_token({"authorization": "Bearer "}, "s3cret")
    assert not check_token({"authorization": "Bearer"}, "s3cret")


def test_basic_with_any_user():
    for user in (b"freeswitch", b"anyone", b""):
        assert check_token(basic(user + b":s3cret"), "s3cret")
    assert check_token(basic(b"fs:pass:word"), "pass:word")  # curl splits at the first colon
    assert check_token(basic("fs:pässwörd".encode()), "pässwörd")


def test_basic_refused():
    assert not check_token(basic(b"fs:wrong"), "s3cret")
    assert not check_token(basic(b"s3cret"), "s3cret")  # no colon: no password
    assert not check_token(basic(b"fs:"), "s3cret")
    assert not check_token({"authorization": "Basic !!!not-base64!!!"}, "s3cret")
    assert not check_token({"authorization": "Basic"}, "s3cret")


def test_other_or_missing_headers_are_refused():
    assert not check_token({}, "s3cret")
    assert not check_token({"authorization": ""}, "s3cret")
    assert not check_token({"authorization": "Digest username=x"}, "s3cret")
    assert not check_token({"authorization": "s3cret"}, "s3cret")
    assert not check_token({"authorization": "Bearer pässwörd"}, "s3cret")
    assert not check_token({"authorization": "Bearer s3cret"}, "")  # an empty token matches nothing


@pytest.mark.parametrize("ctype", [None, JSON_T, PLAIN_T, FORM_T, B64_T])
def test_empty_cdr_field(ctype):
    assert reason(ctype, b"cdr=") == "empty"
    assert reason(ctype, b"cdr=  ") == "empty"


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from([b'"', b"\\", b":", b",", b"}", b"]", b"a", b"\n", b"{"])))
def test_string_repair_is_the_regex_it_replaced(pieces):
    """The linear scan gives what `re.sub` of the loose-string pattern gave (quadratic on a
    crafted body, since `sub` retries from every quote once one string has no end)."""
    text = b"".join(pieces)
    loose = re.compile(rb'"((?:\\.|[^\\])*?)"(?=[:,}\]]|\Z)', re.S)
    old = loose.sub(lambda m: b'"%s"' % body_module._RAW_IN_STRING.sub(body_module._percent, m[1]), text)
    assert body_module._repair_strings(text) == old


def test_non_ascii_bearer_as_starlette_decodes_it():
    wire = "Bearer pässwörd".encode().decode("latin-1")  # what Headers() gives for UTF-8 bytes
    assert check_token(Headers(raw=[(b"authorization", wire.encode("latin-1"))]), "pässwörd")
    assert check_token({"authorization": "Bearer pässwörd"}, "pässwörd")


@settings(max_examples=400)
@given(plain=test_prescan.serialized() | test_prescan.mutated())
def test_the_prescan_shortcut_decodes_a_body_as_orjson_did(plain):
    """url_decode() skips orjson when the pre-scan accepts the body; before, orjson decided
    between the body as it is and the string repair. (They part only on numbers beyond a
    double, which these documents do not hold: see the next test.)"""
    try:
        orjson.loads(plain)
        before = plain
    except orjson.JSONDecodeError:
        before = _repair_strings(plain)
    assert url_decode(quote_from_bytes(plain, safe="").encode()) == before


def test_a_valid_body_with_a_number_orjson_refuses_is_kept_not_repaired():
    """orjson refuses 1e999, and the string repair used to mangle such a body where a blank
    follows a string; the pre-scan keeps it, and the engine counts the CDR."""
    body = b'{"variables" : {"end_epoch" : "1700000000", "billsec" : "30"}, "x" : 1e999}'
    assert url_decode(quote_from_bytes(body, safe="").encode()) == body
    assert Engine(Config(retention_hours=None)).feed(body) is None


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200), prefix=st.sampled_from(
    [b"cdr=<", b"<", b"<?xml version='1.0'?><cdr><variables>", b"cdr=%3C", b"cdr=PD9", b"cdr=PGN"]),
    ctype=st.sampled_from([None, PLAIN_T, FORM_T, B64_T, "text/xml", JSON_T]))
def test_any_xml_looking_body_is_a_cdr_or_a_body_error(body, prefix, ctype):
    try:
        out = cdr_from_body(ctype, prefix + body)
    except BodyError as error:
        assert error.reason and str(error)
    else:
        assert isinstance(out, bytes)


@settings(max_examples=400)
@given(plain=(test_prescan.serialized() | test_prescan.mutated()).filter(bytes.strip),
       tail=st.binary(max_size=12), head=st.sampled_from([b"cdr=", b" cdr=", b"\xef\xbb\xbfcdr="]),
       case=st.booleans())
def test_the_unchecked_form_is_what_the_form_parser_reads_once_repaired(plain, tail, head, case):
    """cdr_from_post's shortcut for encode=true (the document percent-decoded, its check for
    repair left to the group commit) gives, once repaired, what the general path reads, or
    the same BodyError; every other body comes checked."""
    from sixminutes.web.body import cdr_from_post, repaired

    encoded = quote_from_bytes(plain, safe="").encode()
    body = head + (encoded.lower() if case else encoded) + tail
    try:
        expected = body_module._extract(FORM_T, body.strip().removeprefix(b"\xef\xbb\xbf").strip())
    except BodyError as error:
        with pytest.raises(BodyError) as got:
            cdr_from_post(FORM_T, body)
        assert got.value.reason == error.reason
        return
    doc, unchecked = cdr_from_post(FORM_T, body)
    assert (repaired(doc) if unchecked else doc) == expected
    assert unchecked == (plain[:1] == b"{" and b"&" not in tail)
    assert cdr_from_post(JSON_T, plain.strip() or b"{}")[1] is False
