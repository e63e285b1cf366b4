"""POST /6minutes/cdr on a running service, in every mod_json_cdr encoding exactly as FreeSWITCH
sends it, with and without credentials; bad bodies get a 4xx JSON error that says why and are
kept for GET /6minutes/rejected; a body over the limit gets 413.

Two services are shared by the module (one with --token, one with the token it generated); each test
writes CDRs of a profile of its own, so its totals are exact."""
from __future__ import annotations

import base64
import time

import orjson
import pytest

from service_process import basic, config_toml, encode_body, small_cdr, unique

TOKEN = "T0ken-with/odd+chars="
LIMIT = 4096
# FreeSWITCH writes variables URL-encoded (encode-values=true): this account is
# `acme "gold" & o'brien+co 100%`.
ACCOUNT_ENCODED = "acme%20%22gold%22%20%26%20o%27brien%2Bco%20100%25"
ACCOUNT = "acme \"gold\" & o'brien+co 100%"


@pytest.fixture(scope="module")
def secured(module_serve):
    return module_serve(token=TOKEN, config=config_toml(max_body_bytes=LIMIT))


@pytest.fixture(scope="module")
def loopback(module_serve):
    return module_serve(config=config_toml(max_body_bytes=LIMIT))


def document(profile: str, **variables) -> bytes:
    """A CDR whose JSON has characters that every encoding must carry: quotes, `&`, `+`, `%`,
    `=`, non-ASCII, and whose base64 form has `+`, `/` and `=` padding."""
    for pad in range(12):
        doc = small_cdr(profile=profile, account=f"{ACCOUNT_ENCODED}-{profile}",
                        sip_user_agent="FreeSWITCH ??? >>> ~" + "x" * pad,
                        caller_id_name="Zoë & Co = \"quoted\" 50%", **variables)
        raw = orjson.dumps(doc)
        encoded = base64.b64encode(raw)
        if b"+" in encoded and b"/" in encoded and encoded.endswith(b"="):
            return raw
    raise AssertionError("no padding gave a base64 form with + / and =")


ENCODINGS = {
    # name: (mod_json_cdr `encode`, double-encode existing %XX)
    "encode=false": ("false", True),
    "application/json": ("json", True),
    "encode=true": ("true", True),  # FreeSWITCH since signalwire/freeswitch#3152
    "encode=true, %XX kept (FreeSWITCH before #3152)": ("true", False),
    "encode=base64": ("base64", True),
}


def _body(raw: bytes, encoding: str) -> tuple[bytes, str]:
    encode, double = ENCODINGS[encoding]
    body, content_type = encode_body(raw, encode, double_encode=double)
    if encode == "base64":
        assert b"+" in body and b"/" in body and body.endswith(b"=")  # raw, not URL-encoded
    if encode == "true":
        assert b"{" not in body and b"\"" not in body and b"&" not in body[4:]
    return body, content_type


def _accepted_once(service, profile: str) -> None:
    assert service.total(profile=profile) == 1
    # The URL-encoded variable arrives decoded once, whatever the body's own encoding was.
    assert service.total("account_calls", account=f"{ACCOUNT}-{profile}") == 1


@pytest.mark.parametrize("auth", ["bearer", "basic"])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_each_encoding_with_the_token(secured, encoding, auth):
    profile = unique("ingest")
    body, content_type = _body(document(profile), encoding)
    headers = ({"Authorization": f"Bearer {TOKEN}"} if auth == "bearer"
               else basic("freeswitch", TOKEN))  # mod_json_cdr's cred = freeswitch:<token>
    response = secured.post_cdr(body, content_type, headers=headers, auth=False)
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "outcome": "accepted"}
    _accepted_once(secured, profile)
    # FreeSWITCH retries a POST whose answer it did not get: the same CDR is not counted twice.
    again = secured.post_cdr(body, content_type, headers=headers, auth=False)
    assert again.status_code == 200 and again.json() == {"ok": True, "outcome": "duplicate"}
    assert secured.total(profile=profile) == 1


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_each_encoding_on_loopback_without_a_token_option_needs_the_generated_one(loopback, encoding):
    profile = unique("ingest")
    body, content_type = _body(document(profile), encoding)
    refused = loopback.post_cdr(body, content_type, auth=False)
    assert refused.status_code == 401, refused.text
    assert "Basic" in refused.headers.get_list("www-authenticate")[-1]  # curl's CURLAUTH_ANY
    assert loopback.total(profile=profile) == 0
    # FreeSWITCH's cred = freeswitch:<the token kept beside the state file>
    response = loopback.post_cdr(body, content_type, auth=False,
                                 headers=basic("freeswitch", loopback.token_file.read_text().strip()))
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "outcome": "accepted"}
    _accepted_once(loopback, profile)


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    basic("freeswitch", "wrong"),
    basic(TOKEN, "freeswitch"),  # the token as the user name, not the password
    {"Authorization": f"Basic {TOKEN}"},  # not base64 of user:password
    {"Authorization": f"Token {TOKEN}"},
    {"Authorization": TOKEN},
], ids=["missing", "wrong-bearer", "longer", "shorter", "basic-wrong-password",
        "basic-token-as-user", "basic-not-base64", "other-scheme", "no-scheme"])
@pytest.mark.parametrize("encoding", ["encode=true", "encode=base64", "encode=false"])
def test_wrong_or_missing_token_is_401_and_nothing_is_counted(secured, headers, encoding):
    profile = unique("refused")
    body, content_type = _body(document(profile), encoding)
    before = secured.status()["by_source"].get("http", {})
    response = secured.post_cdr(body, content_type, headers=headers, auth=False)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert error["error"] == "http_401" and "token" in error["message"]
    assert secured.total(profile=profile) == 0
    assert secured.status()["by_source"].get("http", {}) == before


BAD_BODIES = [
    # (content type, body, status, error reason, words the message must contain)
    ("application/x-www-form-urlencoded", b"cdr=%ZZ%7B%22variables%22", 400,
     "bad_urlencoding", ["URL-encoded"]),
    ("application/x-www-form-base64-encoded", b"cdr=!!!not*base64!!!", 400, "bad_base64",
     ["base64"]),
    ("application/x-www-form-urlencoded", b"name=value&other=1", 400, "bad_form",
     ["cdr=", "name"]),
    ("application/x-www-form-plaintext",
     b"cdr=<?xml version=\"1.0\"?><cdr><variables><a>1&2</a></variables></cdr>", 400,
     "bad_xml", ["XML CDR", "not well-formed"]),
    ("application/x-www-form-plaintext",
     b"cdr=<?xml version=\"1.0\"?><!DOCTYPE cdr [<!ENTITY a \"aa\"><!ENTITY b \"&a;&a;\">]>"
     b"<cdr><variables><x>&b;</x></variables></cdr>", 400, "xml_dtd", ["refused"]),
    ("application/x-www-form-urlencoded", b"", 400, "empty", ["empty"]),
    ("application/x-www-form-urlencoded", b"cdr=", 400, "empty", ["empty"]),
    ("text/csv", b"a,b,c\n1,2,3\n", 400, "unsupported_media_type", ["text/csv"]),
    ("application/json", b"{\"variables\": {\"end_epoch\": ", 422, "bad_json", ["bad_json"]),
    ("application/json", b"[1, 2, 3]", 422, "not_object", ["not_object"]),
    ("application/json", orjson.dumps({"variables": {"billsec": "3"}}), 422,
     "bad_end_epoch", ["bad_end_epoch"]),
    ("application/json", orjson.dumps({"callflow": []}), 422, "no_variables",
     ["no_variables"]),
]


@pytest.mark.parametrize("content_type, body, status, reason, words", BAD_BODIES,
                         ids=[b[3] + f"-{i}" for i, b in enumerate(BAD_BODIES)])
def test_bad_body_gets_a_4xx_json_error_saying_why_and_is_listed_as_rejected(
        secured, content_type, body, status, reason, words):
    response = secured.post_cdr(body, content_type)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert error["error"] == reason
    for word in words:
        assert word in error["message"], error
    listed = secured.json("/6minutes/rejected", limit=5)
    assert listed, "GET /6minutes/rejected lists nothing"
    newest = listed[0]
    assert newest["source"] == "http" and newest["content_type"] == content_type
    assert newest["body"] == body.decode("utf-8", "replace")
    assert reason in newest["error"] or error["message"] == newest["error"]


def test_the_rejected_list_is_newest_first_and_limited(secured):
    for i in range(3):
        body = f"cdr=%ZZ-{i}".encode()
        assert secured.post_cdr(body, "application/x-www-form-urlencoded").status_code == 400
    listed = secured.json("/6minutes/rejected", limit=2)
    assert [r["body"] for r in listed] == ["cdr=%ZZ-2", "cdr=%ZZ-1"]
    assert listed[0]["id"] > listed[1]["id"]


def test_body_over_the_limit_is_413(secured):
    profile = unique("big")
    raw = orjson.dumps(small_cdr(profile=profile, padding="p" * (LIMIT + 100)))
    assert len(raw) > LIMIT
    response = secured.post_cdr(raw, "application/json")
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "too_large" and str(LIMIT) in response.json()["message"]

    def chunks():  # no Content-Length: the limit must hold while reading
        for i in range(0, len(raw), 1000):
            yield raw[i:i + 1000]
            time.sleep(0.001)

    response = secured.http.post("/6minutes/cdr", content=chunks(), headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 413, response.text
    assert secured.total(profile=profile) == 0

    # Just under the limit is fine.
    small = orjson.dumps(small_cdr(profile=profile))
    raw = orjson.dumps(small_cdr(profile=profile, padding="p" * (LIMIT - len(small) - 20)))
    assert len(raw) <= LIMIT
    response = secured.post_cdr(raw, "application/json")
    assert response.status_code == 200, response.text
    assert secured.total(profile=profile) == 1
