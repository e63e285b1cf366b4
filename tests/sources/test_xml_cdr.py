"""mod_xml_cdr documents: the same Call as the JSON of the same call, read from files and
directories (gzipped too), and XML that is no CDR refused with its reason and place."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings, strategies as st

from sixminutes.call import decode
from sixminutes.cli import main
from sixminutes.sources.files import read_documents
from sixminutes.sources.reading import Reading
from sixminutes.sources.xml_cdr import XmlCdrError, cdr_from_xml

FIXTURES = Path("/work/shared/fixtures/cdr")
XMLS = sorted(FIXTURES.glob("*.cdr.xml"))
pytestmark = pytest.mark.skipif(len(XMLS) != 2, reason=f"XML fixtures not found in {FIXTURES}")


def xml_of(variables: dict[str, str]) -> bytes:
    """What mod_xml_cdr writes for these (already URL-encoded) variables."""
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in variables.items())
    return (f'<?xml version="1.0"?>\n<cdr core-uuid="c">\n  <variables>{body}</variables>\n'
            f'  <callflow profile_index="1"><times><end_time>0</end_time></times></callflow>\n'
            f"</cdr>\n").encode()


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(str.strip)
_ENCODED = st.one_of(_TEXT, st.sampled_from(["%2B33%20612", "a%26b", "%E2%82%AC", "%", "%zz",
                                             "<x>", "&amp;", "100%25"]))


@settings(max_examples=150, deadline=None)
@given(profile=_ENCODED, to=_ENCODED, account=_ENCODED, code=st.sampled_from(["200", "503", ""]),
       billsec=st.integers(0, 10_000))
def test_an_xml_cdr_gives_the_call_its_json_gives(profile, to, account, code, billsec):
    variables = {"end_epoch": "1700000000", "sip_gateway_name": profile, "sip_to_user": to,
                 "accountcode": account, "sip_term_status": code, "billsec": str(billsec),
                 "uuid": "u-1"}
    as_json = decode(json.dumps({"variables": variables}).encode()).call
    assert decode(cdr_from_xml(xml_of(variables))).call == as_json


def test_the_real_xml_fixtures_keep_their_shape():
    doc = cdr_from_xml(XMLS[0].read_bytes())
    assert doc["core-uuid"] == "21483469-cecc-4e5f-a9eb-0402e56193aa"
    assert doc["variables"]["DP_MATCH"] == "ARRAY::915121007938|:915121007938"  # two elements
    assert doc["channel_data"]["direction"] == "inbound"  # whitespace around it dropped
    assert [c["profile_index"] for c in doc["callflow"]] == ["2", "1"]  # attributes kept
    assert isinstance(doc["app_log"]["application"], list)


def test_xml_in_a_directory_and_gzipped_counts_each_call_in_its_window(tmp_path, capsys):
    log = tmp_path / "xml_cdr" / "2019-06-11"
    log.mkdir(parents=True)
    (log / XMLS[0].name).write_bytes(XMLS[0].read_bytes())
    (log / (XMLS[1].name + ".gz")).write_bytes(gzip.compress(XMLS[1].read_bytes()))
    assert main(["replay", "--json", "--no-progress", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rejected"] == {}
    assert result["data"]["1560229920"]['calls{direction="ingress",profile="internal"}'][
        "count"] == 2


BILLION_LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE cdr [\n <!ENTITY lol "lol">\n'
                  + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1
                                                                 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b"]>\n<cdr><variables><end_epoch>1700000000</end_epoch>"
                    b"<sip_to_user>&lol9;</sip_to_user></variables></cdr>")


@pytest.mark.parametrize("content, reason, where, detail", [
    (BILLION_LAUGHS, "xml_dtd", "", "refused without expanding it"),
    (b"<cdr><variables><a>1</b></variables></cdr>", "bad_xml", ":1", "mismatched tag"),
    (b"<?xml version='1.0'?>\n<cdr>\n<variables>\n<a>1</a>\n", "bad_xml", ":4", "no element found"),
    (b"<html><body>x</body></html>", "bad_xml", ":1", "the root element is <html>, not <cdr>"),
    (b"<cdr>" + b"<a>" * 40 + b"</a>" * 40 + b"</cdr>", "bad_xml", "", "deeper than 32"),
], ids=["billion-laughs", "mismatched", "truncated", "html", "deep"])
def test_xml_that_is_no_cdr_is_rejected_with_its_reason_and_place(tmp_path, capsys, content,
                                                                    reason, where, detail):
    path = tmp_path / "x.cdr.xml"
    path.write_bytes(content)
    good = tmp_path / "good.cdr.xml"
    good.write_bytes(XMLS[1].read_bytes())
    assert main(["replay", "--json", "--no-progress", str(path), str(good)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rejected"] == {reason: 1}
    (rejection,) = result["rejections"]
    assert rejection["where"] == f"{path}{where}" and rejection["reason"] == reason
    assert detail in rejection["detail"]
    assert sum(s["count"] for w in result["data"].values() for k, s in w.items()
               if k.startswith("calls{")) == 1


def test_a_billion_laughs_raises_before_any_expansion():
    with pytest.raises(XmlCdrError) as refused:
        cdr_from_xml(BILLION_LAUGHS)
    assert refused.value.reason == "xml_dtd"


def test_an_err_log_dir_xml_post_body_is_read(tmp_path):
    from urllib.parse import quote_from_bytes
    xml = XMLS[1].read_bytes()
    path = tmp_path / "a.cdr.xml"
    path.write_bytes(quote_from_bytes(xml, safe="").encode())
    reading = Reading()
    (doc,) = read_documents([str(path)], progress=reading)
    assert doc == cdr_from_xml(xml)
