"""Whatever a file holds, the reader never fails: it yields documents or names what it could
not use, and a gzip cut anywhere gives exactly the whole lines before the cut."""
from __future__ import annotations

import gzip
import json
import zlib

from hypothesis import given, settings, strategies as st

from sixminutes.config import Config
from sixminutes.engine import Engine
from sixminutes.sources.files import read_documents
from sixminutes.sources.reading import Reading

_STARTS = st.sampled_from([b"", b"<", b"<?xml version='1.0'?><cdr>", b'"', b"{", b"[", b"cdr=",
                           b"%3C", b"INSERT INTO cdr VALUES (", b"\x1f\x8b", b"\xef\xbb\xbf"])


@settings(max_examples=200, deadline=None)
@given(start=_STARTS, body=st.binary(max_size=300),
       suffix=st.sampled_from([".json", ".xml", ".csv", ".jsonl", ".cdr.xml.gz", ""]),
       gz=st.booleans())
def test_any_content_is_read_or_named_never_a_crash(tmp_path_factory, start, body, suffix, gz):
    path = tmp_path_factory.mktemp("fuzz") / f"f{suffix}"
    data = start + body
    path.write_bytes(gzip.compress(data) if gz else data)
    reading = Reading()
    items = list(read_documents([str(path)], progress=reading))
    assert reading.documents == len(items)
    assert all(reading.where(i) is not None for i in range(len(items)))
    for problem in reading.problems:
        assert problem.path == str(path) and problem.reason in ("damaged", "unknown_format")
    engine = Engine(Config(retention_hours=None))
    engine.feed_many(items)  # every item is counted: accepted or a reason
    assert sum(engine.outcomes.values()) == len(items)


LINES = [json.dumps({"_id": str(i), "variables": {"end_epoch": str(1_700_000_000 + i),
                                                  "pad": "x" * (i % 37)}}).encode()
         for i in range(400)]
DATA = gzip.compress(b"\n".join(LINES) + b"\n")


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, len(DATA) - 1))
def test_a_gzip_cut_anywhere_gives_the_whole_lines_before_the_cut(tmp_path_factory, cut):
    path = tmp_path_factory.mktemp("cut") / "f.jsonl.gz"
    path.write_bytes(DATA[:cut])
    reading = Reading()
    got = list(read_documents([str(path)], progress=reading))
    try:
        before = zlib.decompressobj(31).decompress(DATA[:cut])
    except zlib.error:
        before = b""
    whole = before.count(b"\n")
    if cut >= 2:  # (one byte of a gzip magic is no gzip: read as content in no format)
        assert got == LINES[:whole]
        assert [p.reason for p in reading.problems] == ["damaged"]
