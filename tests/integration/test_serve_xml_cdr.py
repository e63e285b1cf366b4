"""mod_xml_cdr POSTs on a running service, as FreeSWITCH sends them (`cdr=` + raw XML as
application/x-www-form-plaintext by default; URL-encoded; base64), with HTTP Basic as its
`cred` sends it: counted like the JSON of the same call, once durable. A billion laughs is
refused at once, unexpanded, and counted.

The real XML fixtures end in 2019, beyond any retention: each is posted with its end moved
to now (the rest as FreeSWITCH wrote it)."""
from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest

from service_process import basic, window_of

FIXTURES = Path("/work/shared/fixtures/cdr")
XMLS = sorted(FIXTURES.glob("*.cdr.xml"))
TOKEN = "xml-T0ken"
BILLION_LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE cdr [\n <!ENTITY lol "lol">\n'
                  + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1
                                                                 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b']>\n<cdr><variables><end_epoch>%d</end_epoch>'
                    b'<sip_to_user>&lol9;</sip_to_user></variables></cdr>')


def now_xml(path: Path, end: int) -> bytes:
    xml = path.read_bytes()
    return re.sub(rb"<end_epoch>\d+</end_epoch>", b"<end_epoch>%d</end_epoch>" % end, xml)


@pytest.fixture
def service(serve):
    return serve(token=TOKEN)


@pytest.mark.parametrize("encode", ["false", "true", "base64"])
def test_the_real_xml_cdrs_posted_by_mod_xml_cdr_count_as_two_calls(service, encode):
    end = int(time.time()) - 5
    for path in XMLS:
        xml = now_xml(path, end)
        body, content_type = {
            "false": (b"cdr=" + xml, "application/x-www-form-plaintext"),
            "true": (b"cdr=" + quote_from_bytes(xml, safe="").encode(),
                     "application/x-www-form-urlencoded"),
            "base64": (b"cdr=" + base64.b64encode(xml), "application/x-www-form-base64-encoded"),
        }[encode]
        response = service.post_cdr(body, content_type, headers=basic("freeswitch", TOKEN),
                                    auth=False)
        assert response.json() == {"ok": True, "outcome": "accepted"}, response.text
    data = service.data()
    assert data[str(window_of(end))]['calls{direction="ingress",profile="internal"}']["count"] == 2
    assert data[str(window_of(end))]['sip_status{code="200",direction="ingress",'
                                     'profile="internal"}']["count"] == 1
    # the same XML again: the same uuid, a duplicate, not a third call
    again = service.post_cdr(b"cdr=" + now_xml(XMLS[0], end), "application/x-www-form-plaintext")
    assert again.json() == {"ok": True, "outcome": "duplicate"}


def test_a_billion_laughs_is_refused_unexpanded_and_counted(service):
    body = b"cdr=" + BILLION_LAUGHS % int(time.time())
    started = time.monotonic()
    response = service.post_cdr(body, "application/x-www-form-plaintext")
    assert time.monotonic() - started < 5  # 10^9 "lol"s would take minutes and gigabytes
    assert response.status_code == 400
    assert response.json()["error"] == "xml_dtd"
    status = service.status()
    assert status["by_source"]["http"] == {"bad_body": 1}
    assert status["accepted"] == 0
    (kept,) = service.json("/6minutes/rejected")
    assert kept["error"].startswith("The XML CDR cannot be read")
    assert service.running
