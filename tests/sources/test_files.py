"""Replay inputs: every layout, gzipped or not, yields exactly the documents it holds."""

import base64
import contextlib
import gzip
import json
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, strategies as st

from sixminutes.sources import files
from sixminutes.sources.files import InputError, read_documents, total_bytes
from sixminutes.sources.reading import Reading

FIXTURES = Path("/work/shared/fixtures/cdr")
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"real CDR fixtures not found at {FIXTURES}"
)

A = {"_id": "a", "variables": {"end_epoch": "1700000000", "billsec": "3"}}
B = {"_id": "b", "variables": {"end_epoch": "1700000360", "billsec": "0"}}
PRETTY_NAN = b"""{
  "callStats": {
    "audio": {"inbound": {"quality_percentage":nan,
      "mos":nan}}
  },
  "variables": {"rtp_audio_in_mos": "nan", "end_epoch": "1700000000"}
}
"""


def write(path: Path, data: bytes, gz: bool = False) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


def docs(*paths, **kw):
    return list(read_documents([str(p) for p in paths], **kw))


def dumps(value) -> bytes:
    return json.dumps(value).encode()


# 1. One document per file: raw bytes, stripped, never split.


@pytest.mark.parametrize("gz", [False, True])
def test_single_compact_document_is_raw_bytes(tmp_path, gz):
    p = write(tmp_path / "a.cdr.json", b"  " + dumps(A) + b"\n", gz)
    assert docs(p) == [dumps(A)]


@pytest.mark.parametrize("gz", [False, True])
def test_single_pretty_document_is_one_item(tmp_path, gz):
    raw = json.dumps(A, indent=2).encode()
    p = write(tmp_path / "a.json", raw + b"\n\n", gz)
    assert docs(p) == [raw]


@pytest.mark.parametrize("gz", [False, True])
def test_pretty_document_with_bare_nan_stays_one_raw_item(tmp_path, gz):
    p = write(tmp_path / "nan.json", PRETTY_NAN, gz)
    assert docs(p) == [PRETTY_NAN.strip()]


def test_single_line_document_with_nan_and_repeated_keys_stays_raw(tmp_path):
    raw = b'{"callflow":{"n":2},"callflow":{"n":1},"callStats":{"mos":-nan}}'
    assert docs(write(tmp_path / "x.json", raw)) == [raw]


def test_byte_order_mark_is_dropped(tmp_path):
    assert docs(write(tmp_path / "a.json", b"\xef\xbb\xbf" + dumps(A))) == [dumps(A)]


def test_gzip_is_detected_by_content_not_suffix(tmp_path):
    zipped = write(tmp_path / "a.json", dumps(A), gz=True)
    plain = write(tmp_path / "b.json.gz", dumps(B))
    assert docs(zipped, plain) == [dumps(A), dumps(B)]


# 2. Arrays: parsed, elements yielded as they are.


@pytest.mark.parametrize("gz", [False, True])
def test_array_yields_each_element(tmp_path, gz):
    p = write(tmp_path / "arr.json", json.dumps([A, B, 42], indent=1).encode(), gz)
    assert docs(p) == [A, B, 42]


@pytest.mark.parametrize("gz", [False, True])
def test_array_with_bare_nan_tokens_is_repaired_outside_strings(tmp_path, gz):
    raw = b"""[
  {"mos": nan, "q": NaN, "j": -nan, "x": Infinity, "y": -inf, "s": "nan inf \\" nan"},
  {"v": {"rtp_audio_in_mos": "nan"}}
]"""
    assert docs(write(tmp_path / "arr.json", raw, gz)) == [
        {"mos": None, "q": None, "j": None, "x": None, "y": None, "s": 'nan inf " nan'},
        {"v": {"rtp_audio_in_mos": "nan"}},
    ]


def test_broken_array_is_one_raw_item(tmp_path):
    raw = b'[{"a": 1}, {"b": nan}, {"c":'
    assert docs(write(tmp_path / "arr.json", raw + b" \n")) == [raw]


# 3. JSON Lines: each line raw, blank lines skipped.


@pytest.mark.parametrize("gz", [False, True])
def test_json_lines_yield_raw_lines(tmp_path, gz):
    raw = dumps(A) + b"\n\n  " + dumps(B) + b"  \r\n" + b'{"mos":nan}\nnot json\n'
    p = write(tmp_path / "cdrs.jsonl", raw, gz)
    assert docs(p) == [dumps(A), dumps(B), b'{"mos":nan}', b"not json"]


def test_json_lines_with_a_broken_first_line_are_still_lines(tmp_path):
    raw = b'{"truncated": \n' + dumps(A) + b"\n" + dumps(B) + b"\n"
    assert docs(write(tmp_path / "cdrs.ndjson", raw)) == [b'{"truncated":', dumps(A), dumps(B)]


def test_json_lines_of_arrays_like_couchbackup(tmp_path):
    raw = dumps([A, B]) + b"\n" + dumps([A]) + b"\n"
    assert docs(write(tmp_path / "backup.jsonl", raw)) == [A, B, A]


@pytest.mark.parametrize("gz", [False, True])
def test_big_json_lines_are_streamed_with_progress(tmp_path, monkeypatch, gz):
    monkeypatch.setattr(files, "SMALL_LIMIT", 100)
    monkeypatch.setattr(files, "PROGRESS_STEP", 10_000)
    # random padding, so that the gzip is bigger than the chunks the inflater reads at a time
    # (zlib's GzipFile 128 KiB, ISA-L's 512 KiB)
    lines = [dumps({"_id": str(i), "pad": os.urandom(100).hex()}) for i in range(8000)]
    p = write(tmp_path / "big.jsonl", b"\n".join(lines) + b"\n", gz)
    calls = []
    assert docs(p, progress=calls.append) == lines
    assert sum(calls) == total_bytes([p]) == os.path.getsize(p)
    assert len(calls) > 2 and all(n >= 0 for n in calls)


# 4. CouchDB _changes dumps, normal and continuous.

CHANGES = {
    "results": [
        {"seq": "1-x", "id": "a", "changes": [{"rev": "1-a"}], "doc": A},
        {"seq": "2-x", "id": "gone", "changes": [{"rev": "2-g"}], "deleted": True},
        {"seq": "3-x", "id": "b", "changes": [{"rev": "1-b"}], "doc": B},
    ],
    "last_seq": "3-x",
    "pending": 0,
}


@pytest.mark.parametrize("gz", [False, True])
def test_changes_dump_yields_docs_and_rows_without_doc(tmp_path, gz):
    p = write(tmp_path / "changes.json", dumps(CHANGES), gz)
    assert docs(p) == [A, CHANGES["results"][1], B]


def couch_layout(header: bytes, rows: list, trailer: bytes) -> bytes:
    """How CouchDB itself writes a normal feed or _all_docs: one row per line."""
    return header + b"\n" + b",\n".join(dumps(r) for r in rows) + b"\n" + trailer + b"\n"


@pytest.mark.parametrize("gz", [False, True])
def test_big_changes_dump_in_couchdb_layout_is_streamed(tmp_path, monkeypatch, gz):
    monkeypatch.setattr(files, "SMALL_LIMIT", 100)
    raw = couch_layout(b'{"results":[', CHANGES["results"], b'],\n"last_seq":"3-x","pending":0}')
    p = write(tmp_path / "changes.json", raw, gz)
    calls = []
    assert docs(p, progress=calls.append) == [A, CHANGES["results"][1], B]
    assert sum(calls) == os.path.getsize(p)


@pytest.mark.parametrize("gz", [False, True])
def test_continuous_changes_lines_skip_last_seq(tmp_path, gz):
    rows = [dumps(r) for r in CHANGES["results"]]
    raw = b"\n".join(rows) + b'\n\n{"last_seq":"3-x","pending":0}\n{"last_seq":"3-x"}\n'
    assert docs(write(tmp_path / "feed.jsonl", raw, gz)) == rows


def test_empty_continuous_feed_yields_nothing(tmp_path):
    assert docs(write(tmp_path / "feed.json", b'{"last_seq":"0"}\n')) == []


# 5. _all_docs?include_docs=true

ALL_DOCS = {
    "total_rows": 4,
    "offset": 0,
    "rows": [
        {"id": "a", "key": "a", "value": {"rev": "1-a"}, "doc": A},
        {"id": "b", "key": "b", "value": {"rev": "1-b"}, "doc": B},
        {"id": "c", "key": "c", "value": {"rev": "2-c", "deleted": True}, "doc": None},
        {"id": "d", "key": "d", "value": {"rev": "1-d"}},
    ],
}


@pytest.mark.parametrize("gz", [False, True])
def test_all_docs_dump_yields_docs_or_rows(tmp_path, gz):
    p = write(tmp_path / "all.json", dumps(ALL_DOCS), gz)
    assert docs(p) == [A, B, ALL_DOCS["rows"][2], ALL_DOCS["rows"][3]]


def test_big_all_docs_dump_in_couchdb_layout_is_streamed(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "SMALL_LIMIT", 100)
    raw = couch_layout(b'{"total_rows":5,"offset":0,"rows":[', ALL_DOCS["rows"], b"]}")
    raw = raw.replace(b'"key": "d"', b'"key": nan')  # repaired like a nan array
    raw = raw.replace(b"]}", b',\n{"id": "e", "doc": {\n]}')  # broken: yielded, never lost
    p = write(tmp_path / "all.json", raw)
    rows = ALL_DOCS["rows"]
    assert docs(p) == [A, B, rows[2], {**rows[3], "key": None}, b'{"id": "e", "doc": {']


def test_big_file_without_a_streamable_first_line_is_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "SMALL_LIMIT", 100)
    pretty = json.dumps(CHANGES, indent=2).encode()
    assert docs(write(tmp_path / "changes.json", pretty)) == [A, CHANGES["results"][1], B]
    assert docs(write(tmp_path / "nan.json", PRETTY_NAN)) == [PRETTY_NAN.strip()]


# 6. Directories


def test_directory_walk_order_suffixes_and_recursion(tmp_path):
    d = tmp_path / "log"
    write(d / "b.cdr.json", dumps(B))
    write(d / "a_1.cdr.json", dumps(A))
    write(d / "sub" / "c.jsonl.gz", dumps(A) + b"\n" + dumps(B), gz=True)
    write(d / "sub" / "d.json.gz", dumps([B]), gz=True)
    write(d / "e.ndjson", dumps(B) + b"\n")
    write(d / "f.jsonl", dumps(A) + b"\n")
    write(d / "notes.txt", b"ignored")
    write(d / "a.cdr.xml", b"<cdr/>")  # mod_xml_cdr's log-dir: read, as an (empty) document
    write(d / "Master.csv", b"1,2,3")  # mod_cdr_csv's: read (the row does not fit: rejected)
    write(d / "Master.csv.2023-10-11-00-36-14", b"1,2")  # rotated by mod_cdr_csv: read too
    reading = Reading()
    assert docs(d, progress=reading) == [
        {},  # a.cdr.xml
        dumps(A),  # a_1.cdr.json
        dumps(B),  # b.cdr.json
        dumps(B),  # e.ndjson
        dumps(A),  # f.jsonl
        dumps(A),  # sub/c.jsonl.gz
        dumps(B),
        B,  # sub/d.json.gz
    ]
    assert [r.where for r in reading.rejections] == [f"{d}/Master.csv:1",
                                                     f"{d}/Master.csv.2023-10-11-00-36-14:1"]


def test_progress_totals_equal_total_bytes_for_a_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "SMALL_LIMIT", 1000)
    monkeypatch.setattr(files, "PROGRESS_STEP", 300)
    d = tmp_path / "dir"
    write(d / "one.json", dumps(A))
    write(d / "two.json.gz", dumps(CHANGES), gz=True)
    write(d / "empty.json", b"")
    write(d / "big.jsonl.gz", b"\n".join(dumps({"i": i}) for i in range(500)), gz=True)
    write(d / "skip.txt", b"x" * 1000)
    calls = []
    found = docs(d, progress=calls.append)
    assert len(found) == 1 + 3 + 500
    assert sum(calls) == total_bytes([str(d)]) == sum(
        os.path.getsize(p) for p in d.iterdir() if p.suffix != ".txt"
    )
    assert len(calls) >= 4  # at least once per file read


# err-log-dir: mod_json_cdr writes the body it failed to POST

UNSAFE = set(b'\r\n #%&+:;<=>?@[\\]^`{|}"')


def fs_url_encode(text: bytes, double_encode: bool) -> bytes:
    """switch_url_encode_opt as mod_json_cdr calls it: double_encode False before
    signalwire/freeswitch#3152 (a %XX already in the text is copied as is), True after."""
    out = bytearray()
    for i, c in enumerate(text):
        kept = not double_encode and re.fullmatch(rb"%[0-9A-F]{2}", text[i : i + 3])
        unsafe = c in UNSAFE or not 0x20 <= c <= 0x7E
        out += b"%%%02X" % c if unsafe and not kept else bytes([c])
    return bytes(out)


# encode-values=true: the values are URL-encoded, with quotes and CR LF (sip_full_from, SDP).
ENCODED = {
    "variables": {
        "sip_full_from": "%22Alice%22%20%3Csip%3A1000%40example.com%3E",
        "sip_reason": "Q.850%3Bcause%3D31%3Btext%3D%22Normal,%20unspecified%22",
        "switch_r_sdp": "v%3D0%0D%0Ao%3D-%201%202%20IN%20IP4%20192.0.2.1%0D%0A",
        "end_epoch": "1700000000",
    },
    "callflow": [{"caller_profile": {"caller_id_name": '"Bob" \\o/'}}],
    "callStats": {"audio": {"inbound": {"mos": 4.5}}},
}


@pytest.mark.parametrize("double_encode", [False, True], ids=["old-freeswitch", "fixed"])
def test_url_encoded_post_body_in_err_log_dir(tmp_path, double_encode):
    text = dumps(ENCODED).replace(b'"mos": 4.5', b'"mos": nan')
    body = fs_url_encode(text, double_encode)
    assert body.startswith(b"%7B%22variables%22%3A")
    [doc] = docs(write(tmp_path / "err" / "a_1.cdr.json", body + b"\n"))
    if double_encode:
        assert doc == text  # decoded exactly
    else:  # quotes and CR LF inside values stay %-encoded; the rest is decoded once
        assert json.loads(doc.replace(b"nan", b"null"))["variables"] == {
            "sip_full_from": '%22Alice%22 <sip:1000@example.com>',
            "sip_reason": 'Q.850;cause=31;text=%22Normal, unspecified%22',
            "switch_r_sdp": "v=0%0D%0Ao=- 1 2 IN IP4 192.0.2.1%0D%0A",
            "end_epoch": "1700000000",
        }
        assert json.loads(doc.replace(b"nan", b"null"))["callflow"] == ENCODED["callflow"]


def test_base64_and_cdr_form_post_bodies(tmp_path):
    text = dumps(ENCODED)
    b64 = write(tmp_path / "b.cdr.json", base64.b64encode(text) + b"\n")
    form = write(tmp_path / "c.cdr.json", b"cdr=" + fs_url_encode(text, True))
    assert docs(b64, form) == [text, text]


@needs_fixtures
def test_real_cdrs_as_old_freeswitch_err_log_files(tmp_path):
    for path in sorted(FIXTURES.glob("somleng*.json")):
        original = json.loads(path.read_bytes().replace(b":nan", b":null"))
        body = fs_url_encode(json.dumps(original, separators=(",", ":")).encode(), False)
        [doc] = docs(write(tmp_path / path.name, body))
        decoded = json.loads(doc)
        assert {k: unquote(v) for k, v in decoded["variables"].items()} == {
            k: unquote(v) for k, v in original["variables"].items()
        }, path.name
        assert decoded["callflow"] == original["callflow"], path.name


# Empty, not JSON, unreadable


def test_empty_and_blank_files_yield_nothing(tmp_path):
    assert docs(write(tmp_path / "e.json", b""), write(tmp_path / "w.json", b" \n\n")) == []
    assert docs(write(tmp_path / "e.json.gz", b"", gz=True)) == []


def test_content_in_no_known_format_is_a_problem_naming_the_file(tmp_path):
    junk = write(tmp_path / "junk.json", bytes(range(256)) * 4)
    text = write(tmp_path / "notes.json", b"hello, this is not a CDR\n")
    good = write(tmp_path / "a.json", dumps(A))
    reading = Reading()
    assert docs(junk, text, good, progress=reading) == [dumps(A)]
    assert [(p.path, p.reason) for p in reading.problems] == [
        (junk, "unknown_format"), (text, "unknown_format")]
    assert "binary data starting 00 01 02" in reading.problems[0].detail
    assert "text starting 'hello, this is not a CDR'" in reading.problems[1].detail


def test_missing_path_raises_input_error_naming_it(tmp_path):
    missing = str(tmp_path / "nope.json")
    with pytest.raises(InputError, match=f"^cannot read {missing}: No such file or directory$"):
        total_bytes([missing])
    good = write(tmp_path / "a.json", dumps(A))
    it = read_documents([good, missing])
    with pytest.raises(InputError, match="nope.json"):
        next(it)  # checked before the first document


def test_not_a_file_or_directory(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match="fifo: not a file or directory"):
        total_bytes([str(tmp_path / "fifo")])


@pytest.mark.parametrize(
    "data",
    [
        b"\x1f\x8b\x08\x00garbage-garbage-garbage",
        gzip.compress(dumps(A) + b"\n" + dumps(B))[:-12],  # truncated
        gzip.compress(dumps(A))[:-8] + b"\0\0\0\0\0\0\0\0",  # bad CRC
    ],
    ids=["garbage", "truncated", "crc"],
)
def test_corrupt_gzip_is_a_damaged_problem_naming_the_file_and_reading_goes_on(tmp_path, data):
    p = write(tmp_path / "bad.json.gz", data)
    after = write(tmp_path / "b.json", dumps(B))
    reading = Reading()
    got = docs(p, after, progress=reading)
    assert got[-1] == dumps(B)  # the next file is read
    assert [(x.path, x.reason) for x in reading.problems] == [(p, "damaged")]
    assert "\n" not in reading.problems[0].detail


def test_a_gzip_cut_in_the_middle_keeps_every_line_before_the_cut(tmp_path):
    lines = [dumps({**A, "_id": str(i)}) for i in range(3000)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    p = write(tmp_path / "cut.jsonl.gz", data[:len(data) // 2])
    reading = Reading()
    got = docs(p, progress=reading)
    whole = gzip.decompress(data)
    before = gzip.GzipFile(fileobj=__import__("io").BytesIO(data[:len(data) // 2]))
    kept = bytearray()
    try:
        while chunk := before.read1(1):
            kept += chunk
    except EOFError:
        pass
    complete = bytes(kept).count(b"\n")  # every line whole before the cut, and no more
    assert got == lines[:complete] and 0 < complete < len(lines)
    assert whole.startswith(bytes(kept))
    assert reading.problems[0].reason == "damaged"
    assert reading.problems[0].detail.startswith("truncated: the compressed data ends at byte")
    assert reading.where(complete - 1) == f"{p}:{complete}"


def test_corrupt_bytes_in_the_middle_keep_the_lines_before_them(tmp_path):
    lines = [dumps({**A, "_id": f"{i:06d}", "pad": os.urandom(64).hex()}) for i in range(2000)]
    data = bytearray(gzip.compress(b"\n".join(lines) + b"\n"))
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xff" * 64
    p = write(tmp_path / "corrupt.jsonl.gz", bytes(data))
    reading = Reading()
    got = docs(p, progress=reading)
    # What the bytes before the damage decompress to: every whole line of it is read. (What
    # zlib makes of the damaged bytes before it notices may be junk lines: the engine
    # rejects those as bad_json.)
    before = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(bytes(data[:middle]))
    whole = before.count(b"\n")
    assert 0 < whole < len(lines) and got[:whole] == lines[:whole]
    assert reading.problems[0].reason == "damaged"
    assert reading.problems[0].detail.startswith("corrupt at byte ")


@contextlib.contextmanager
def _as_nobody():
    """Root reads any file whatever its mode: for a moment, read as uid 65534 (seteuid; the
    saved uid brings root back). Nothing runs elsewhere meanwhile: the test's own process,
    no other user's process or directory rights needed (CI's clone may be in a 0700 folder)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_permission_denied():
    """A file the replay may not read is a problem named with the system's reason; the rest
    of the inputs are read."""
    with tempfile.TemporaryDirectory() as folder:  # (pytest's own is root's only: 0700)
        os.chmod(folder, 0o755)  # any user may reach the files: only the mode of one refuses
        secret = write(Path(folder) / "secret.json", dumps(A))
        other = write(Path(folder) / "other.json", dumps(B))
        os.chmod(secret, 0)
        reading = Reading()
        with _as_nobody():
            got = docs(secret, other, progress=reading)
    assert os.geteuid() == os.getuid()  # root again, when the suite runs as root
    assert got == [dumps(B)]
    assert [(x.path, x.reason, x.detail) for x in reading.problems] == [
        (secret, "unreadable", "Permission denied")]


def test_an_unreadable_file_is_a_problem_and_the_others_are_read(tmp_path):
    """(The suite may run as root, who reads any file whatever its mode: a link to nowhere in
    a log-dir fails to open in any case.)"""
    d = tmp_path / "log"
    write(d / "a.json", dumps(A))
    os.symlink(tmp_path / "gone.json", d / "b.cdr.json")  # rotated away under the replay
    write(d / "c.json", dumps(B))
    reading = Reading()
    assert docs(d, progress=reading) == [dumps(A), dumps(B)]
    assert [(x.path, x.reason, x.detail) for x in reading.problems] == [
        (str(d / "b.cdr.json"), "unreadable", "No such file or directory")]


# Real FreeSWITCH output


@needs_fixtures
def test_every_real_json_cdr_is_one_raw_document(tmp_path):
    jsons = sorted(FIXTURES.glob("*.json"))
    assert len(jsons) >= 10
    for path in jsons:
        assert docs(path) == [path.read_bytes().strip()], path.name
        zipped = write(tmp_path / (path.name + ".gz"), path.read_bytes(), gz=True)
        assert docs(zipped) == [path.read_bytes().strip()], path.name


@needs_fixtures
def test_real_cdr_with_bare_nan_stays_one_document():
    path = FIXTURES / "somleng__somleng__freeswitch_cdr_with_invalid_json.json"
    raw = path.read_bytes()
    assert b":nan" in raw and raw.count(b"\n") > 100
    assert docs(path) == [raw.strip()]


@needs_fixtures
def test_real_fixture_directory_reads_json_xml_and_csv(tmp_path):
    d = tmp_path / "log"
    shutil.copytree(FIXTURES, d)
    read = sorted([*d.glob("*.json"), *d.glob("*.xml"), *d.glob("*.csv")])
    reading = Reading()
    got = docs(d, progress=reading)
    jsons = [g for g in got if isinstance(g, bytes)]
    assert jsons == [p.read_bytes().strip() for p in sorted(d.glob("*.json"))]
    assert sum(isinstance(g, dict) and "core-uuid" in g for g in got) == 2  # the XML files
    assert total_bytes([str(d)]) == sum(p.stat().st_size for p in read)
    assert reading.problems == []


@needs_fixtures
def test_real_asterisk_csv_rows_do_not_fit_the_example_template_and_each_is_named():
    csv = FIXTURES / "asterisk__testsuite__good.csv"
    reading = Reading()
    assert docs(csv, progress=reading) == []
    assert [(r.where, r.reason) for r in reading.rejections] == [
        (f"{csv}:{n}", "bad_csv") for n in range(1, 6)]
    assert reading.rejections[0].detail == "18 fields where example has 15"


@needs_fixtures
def test_real_cdrs_as_array_json_lines_and_changes(tmp_path):
    valid = []
    for path in sorted(FIXTURES.glob("*.json")):
        try:
            valid.append(json.loads(path.read_bytes()))
        except ValueError:
            pass
    lines = [json.dumps(v).encode() for v in valid]
    assert docs(write(tmp_path / "all.json", dumps(valid))) == valid
    assert docs(write(tmp_path / "all.jsonl.gz", b"\n".join(lines), gz=True)) == lines
    changes = {"results": [{"seq": i, "id": str(i), "doc": v} for i, v in enumerate(valid)]}
    assert docs(write(tmp_path / "changes.json", dumps(changes))) == valid


_LINE = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\n" not in b),
    st.sampled_from([b'{"last_seq":"9-x"}', b'{"pending":0,"last_seq":3}', b'{"l":1}', b'{"p":2}',
                     b'{"_id":"a","variables":{}}', b'{"x":1} ', b' {"x":1}', b'{"x":1}\r',
                     b"[{\"a\":1},{\"b\":2}]", b"\xef\xbb\xbf{\"x\":1}", b"", b"{}"]),
)


@given(st.lists(_LINE, max_size=8))
def test_a_streamed_line_gives_what_the_line_without_its_newline_gives(lines):
    # Streamed lines keep their newline; the usual ones skip the checks (a fast path).
    streamed = list(files._line_docs([line + b"\n" for line in lines]))
    assert streamed == list(files._line_docs(lines))


@pytest.mark.parametrize("step", [300, 10_000_000])
def test_a_streamed_gzip_cut_in_the_middle_keeps_every_line_before_the_cut(tmp_path, monkeypatch,
                                                                          step):
    """Big files are streamed line by line: the lines read before the failing read are not
    read again, the rest up to the damage are, each at its own line number."""
    monkeypatch.setattr(files, "SMALL_LIMIT", 1000)
    monkeypatch.setattr(files, "PROGRESS_STEP", step)
    # (big enough that the damage is past the first reads: ISA-L inflates 128 KB at a time)
    lines = [dumps({**A, "_id": str(i), "pad": "x" * (i % 50)}) for i in range(60_000)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    cut = data[:len(data) * 3 // 5]
    p = write(tmp_path / "big.jsonl.gz", cut)
    reading = Reading()
    got = docs(p, progress=reading)
    complete = zlib.decompressobj(31).decompress(cut).count(b"\n")
    assert 0 < complete < len(lines) and got == lines[:complete]
    assert [reading.where(i) for i in (0, complete - 1)] == [f"{p}:1", f"{p}:{complete}"]
    assert [(x.path, x.reason) for x in reading.problems] == [(p, "damaged")]


@pytest.mark.parametrize("size", [3000, 60_000], ids=["read-whole", "streamed"])
def test_a_couchdb_dump_cut_in_the_middle_keeps_its_rows(tmp_path, monkeypatch, size):
    monkeypatch.setattr(files, "SMALL_LIMIT", 1000)
    rows = [{"id": str(i), "key": str(i), "value": {}, "doc": {**A, "_id": str(i)}}
            for i in range(size)]
    text = (b'{"total_rows":%d,"offset":0,"rows":[\n' % size + b",\n".join(map(dumps, rows))
            + b"\n]}\n")
    data = gzip.compress(text)
    cut = data[:len(data) // 2]
    p = write(tmp_path / "all_docs.json.gz", cut)
    reading = Reading()
    got = docs(p, progress=reading)
    whole_rows = zlib.decompressobj(31).decompress(cut).count(b"\n") - 1  # minus the header
    assert 0 < whole_rows < size and got == [r["doc"] for r in rows[:whole_rows]]
    assert reading.where(whole_rows - 1) == f"{p}:{whole_rows + 1}"
    assert reading.problems[0].reason == "damaged"
