"""The decoder into columns (sixminutes/columns.py, _columns.c): every row reads as decode() says.

Each document is decoded both ways, into columns and by call.decode(); the Call a row
builds, or the reason it is rejected, must be the same, on real fixtures, on generated
documents aimed at the edges of the compiled path (numbers as text, URL-encoded text, ids,
repeated keys) and on mutated bytes. The engine counts the same with and without the
compiled decoder.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import test_prescan
from helpers import END, cdr, raw, run_sanitized
from sixminutes import batch as batch_module
from sixminutes import columns as columns_module
from sixminutes.batch import Batch
from sixminutes.call import _FIELDS, Decoded, Rejected, decode
from sixminutes.columns import SKIP, TEXTS, batch_of, decode_columns
from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.sources.synthetic import Generator

compiled = columns_module._columns


def verdicts(items: list) -> list[tuple]:
    """Each item as the columns read it: ("accepted", Call, took the compiled path) or
    ("rejected", reason)."""
    found = decode_columns(items)
    rows = np.flatnonzero(found.ok)
    batch = batch_of(found, rows, found.ints[0, rows] - found.ints[0, rows] % 360)
    accepted = {row: i for i, row in enumerate(rows.tolist())}
    out = []
    for row, item in enumerate(items):
        if row in accepted:
            out.append(("accepted", batch.decoded[accepted[row]].call, row not in found.outcome))
        else:
            out.append(("rejected", found.outcome[row].reason))
    return out


def expected(item) -> tuple:
    try:
        call = decode(item).call
    except Rejected as rejected:
        return ("rejected", rejected.reason)
    if call.end_epoch >= 2**63:  # beyond a column: the engine's admission would say "future"
        return ("rejected", "future")
    return ("accepted", call)


def same(items: list) -> list[tuple]:
    got = verdicts(items)
    for item, verdict in zip(items, got):
        assert verdict[:2] == expected(item), item[:400] if isinstance(item, bytes) else item
    return got


def test_the_extension_is_built_and_reads_the_calls_variables():
    assert compiled is not None, "sixminutes._columns is not built: `pip install -e .` with gcc"
    assert compiled.VARIABLES == _FIELDS
    assert compiled.TEXTS == TEXTS == batch_module.TEXTS


@pytest.mark.parametrize("path", test_prescan.fixture_files(), ids=lambda p: p.name)
def test_fixtures_read_alike(path):
    data = path.read_bytes()
    (verdict,) = same([data])
    if verdict[0] == "accepted" and data.isascii() and b"\\" not in data and valid(data):
        assert verdict[2], "a plain ASCII CDR takes the compiled path"


def valid(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def test_a_realistic_corpus_takes_the_compiled_path_and_reads_alike():
    docs = [doc for doc, _ in Generator(seed=5).corpus(400, END - 3600, 3600)]
    got = same(docs)
    fast = sum(1 for verdict in got if verdict[0] == "accepted" and verdict[2])
    assert fast >= 0.95 * len(docs)  # URL-encoded accounts and numbers included


# --- generated documents at the edges of the compiled path ------------------------------------

INTS = st.sampled_from(["0", "-0", "7", "-12", "007", "", " 5", "5 ", "1e3", "12.0", "+5",
                        "999999999999999999", "9999999999999999999", "9007199254740993",
                        "-9007199254740993", str(END), "946684799", "946684800"])
FLOATS = st.sampled_from(["4.37", "0", "0.0", "-1.5", ".5", "4.", "1e2", "nan", "NaN", "inf",
                          "00.5", "4.370000000000000001", "9007199254740993.0",
                          "123456789012345678901234567890123456789012"])
TEXT = (st.text(alphabet="abI%2BFf0\u00e9\\\"+ /", max_size=8)
        | st.sampled_from(["%2B4930", "%C3%A9", "%zz", "100%", "%", "%2", "%41%42", "inbound",
                           "OUTBOUND", "ingress", "egress", "Inbound", "_design/x", "a%00b"]))
VALUE = (INTS | FLOATS | TEXT | st.integers(-2**64, 2**64)
         | st.floats(allow_nan=False, allow_infinity=False) | st.none() | st.booleans()
         | st.just([]) | st.just({"a": 1}))
IDS = st.sampled_from([None, "", "_design/x", "a", "a%20b", 5, 5.5, "x\"y", "caf\u00e9"]) | TEXT


@st.composite
def edge_documents(draw) -> bytes:
    names = draw(st.lists(st.sampled_from(_FIELDS), max_size=14))
    variables = {name: draw(VALUE) for name in names}
    variables.setdefault("end_epoch", draw(st.sampled_from([str(END), END, str(END - 7)])))
    members = [("variables", variables)]
    for key in draw(st.lists(st.sampled_from(["_id", "id", "uuid_top", "doc", "_deleted"]),
                             max_size=2, unique=True)):
        members.append((key, draw(IDS)))
    text = "{" + ",".join(json.dumps(k) + ":" + json.dumps(v, ensure_ascii=draw(st.booleans()))
                          for k, v in members)
    if draw(st.booleans()) and names:  # a repeated variable, written by hand
        text = text.replace('"variables":{', '"variables":{%s:%s,' % (
            json.dumps(names[0]), json.dumps(draw(VALUE))), 1)
    return (text + "}").encode("utf-8", "surrogatepass")


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(edge_documents(), min_size=1, max_size=6))
def test_edge_documents_read_alike(docs):
    same(docs)


@settings(max_examples=500)
@given(docs=st.lists(test_prescan.serialized() | test_prescan.mutated(), min_size=1, max_size=5))
def test_generated_and_mutated_documents_read_alike(docs):
    same(docs)


def test_plain_forms_take_the_compiled_path():
    doc = raw(_id="c1", billsec="12", duration=20, rtp_audio_in_mos="4.37",
              ccnq_account="corvocor%20ltd", sip_to_user="%2B4930123", ccnq_to_e164="")
    ((verdict, call, fast),) = same([doc])
    assert fast and call.account == "corvocor ltd" and call.to == "+4930123" and call.mos == 4.37


@pytest.mark.parametrize("member", [
    b'"ccnq_account":"Caf%C3%A9"',  # decodes to UTF-8: urllib's replacement rules decide
    b'"ccnq_account":"a\\u0041"',   # an escape
    b'"billsec":"007"',
    b'"sip_term_status":200',       # a number where text is read
])
def test_what_only_decode_can_tell_takes_the_slow_path(member):
    doc = cdr("c1")
    name = member.split(b'"')[1].decode()
    doc["variables"].pop(name, None)
    data = orjson.dumps(doc).replace(b'"variables":{', b'"variables":{' + member + b",", 1)
    ((verdict, call, fast),) = same([data])
    assert verdict == "accepted" and not fast


# --- batches ------------------------------------------------------------------------------------

def test_a_mixed_batch_reads_as_the_batch_of_its_calls():
    """Compiled rows, slow rows, rejected and skipped ones: the accepted rows' columns are
    those of a Batch built from their Calls, each text value coded once."""
    items = [raw(_id="a", ccnq_direction="inbound", ccnq_account="x"),
             SKIP,
             raw(_id="b", ccnq_direction="ingress", ccnq_account="Caf%C3%A9"),  # slow
             b"{not json",
             raw(_id="c", direction="OUTBOUND", ccnq_account="x"),
             raw(_id="d", ccnq_direction="ingress", ccnq_account="y%20z")]
    found = decode_columns(items)
    assert found.ok.tolist() == [True, False, True, False, True, True]
    rows = np.flatnonzero(found.ok)
    windows = found.ints[0, rows] - found.ints[0, rows] % 360
    got = batch_of(found, rows, windows)
    calls = [decode(items[row]) for row in rows.tolist()]
    want = Batch(calls, windows.tolist())
    for name in ("end_epoch", "start_epoch", "billsec", "duration", "answered", "pdd_ms", "mos"):
        np.testing.assert_array_equal(got.column(name), want.column(name), err_msg=name)
    for name in TEXTS:  # each value once, each row's value the same
        codes, values = got.codes(name)
        assert len(set(values)) == len(values), name
        assert [values[c] for c in codes.tolist()] == got._values(name) == want._values(name)
    assert got.codes("direction")[1] == ["ingress", "egress"]
    assert [d.call for d in got.decoded] == [d.call for d in calls]


def test_a_row_builds_its_document_when_asked_and_pickles_as_a_decoded():
    item = raw(_id="a", ccnq_account="y%20z")
    found = decode_columns([item])
    row = batch_of(found, np.array([0]), np.array([0])).decoded[0]
    assert row.doc == decode(item).doc and row.doc["variables"]["ccnq_account"] == "y z"
    again = pickle.loads(pickle.dumps(row))
    assert type(again) is Decoded and again.call == decode(item).call and again.doc == row.doc


def test_without_the_compiled_decoder_every_document_takes_decode(monkeypatch):
    monkeypatch.setattr(columns_module, "_columns", None)
    items = [raw(_id="a"), SKIP, b"[]", None]
    found = decode_columns(items)
    assert found.ok.tolist() == [True, False, False, False]
    assert sorted(found.outcome) == [0, 2, 3] and found.outcome[3].reason == "not_object"


def test_the_engine_counts_alike_with_and_without_the_compiled_decoder(monkeypatch):
    docs = [doc for doc, _ in Generator(seed=11).corpus(1500, END - 3 * 3600, 3 * 3600)]
    docs += docs[:40]  # duplicates, across batches
    docs += [b"{", raw(end_epoch="x"), raw(end_epoch=str(END + 10_000))]

    def count() -> tuple:
        e = Engine(Config(), clock=lambda: END + 60)
        e.feed_many(iter(docs))
        e.flush()
        cells = sorted(e.store.items())
        alerts = [a.to_json(with_doc=False) for a in e.alerts.list()]
        return e.outcomes, e.last_rejection, cells, alerts

    with_compiled = count()
    monkeypatch.setattr(columns_module, "_columns", None)
    assert count() == with_compiled


def test_hostile_input_under_address_sanitizer(tmp_path):
    """The compiled decoder reads CDRs POSTed by anyone: no read past a buffer, no
    undefined behaviour, on every prefix of hostile documents."""
    proc = run_sanitized("_columns", "sanitized_columns.py", tmp_path, 600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no sanitizer report" in proc.stdout
