"""Where each document was read: the reader's numbers map back to file:line, file[item], file."""
from __future__ import annotations

import gzip
import json

from hypothesis import assume, given, settings, strategies as st

from sixminutes.sources.files import read_documents
from sixminutes.sources.reading import Reading, ReadOptions

DOC = {"_id": "x", "variables": {"end_epoch": "1700000000"}}

_LINES = st.lists(st.sampled_from(["doc", "blank", "last_seq", "junk", "array2", "crlf"]),
                  min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(kinds=_LINES, gz=st.booleans())
def test_every_document_of_json_lines_is_at_its_line(tmp_path_factory, kinds, gz):
    # (lines that are all broken are one broken document to the reader: no line is JSON)
    assume({"doc", "crlf", "array2"} & set(kinds))
    lines: list[bytes] = []
    expected: list[int] = []  # the line of each document, in order
    for number, kind in enumerate(kinds, 1):
        doc = json.dumps({**DOC, "_id": str(number)}).encode()
        if kind == "doc":
            lines.append(doc)
            expected.append(number)
        elif kind == "crlf":
            lines.append(doc + b"\r")
            expected.append(number)
        elif kind == "blank":
            lines.append(b"  ")
        elif kind == "last_seq":
            lines.append(b'{"last_seq":"9-x","pending":0}')
        elif kind == "junk":
            lines.append(b'{"broken": ')
            expected.append(number)  # yielded all the same: the engine rejects it
        else:
            lines.append(b"[" + doc + b"," + doc + b"]")
            expected += [number, number]
    data = b"\n".join(lines) + b"\n"
    try:  # one JSON value in all (an array, say) is another layout: see the next test
        json.loads(data)
        assume(False)
    except ValueError:
        pass
    path = tmp_path_factory.mktemp("r") / ("f.jsonl.gz" if gz else "f.jsonl")
    path.write_bytes(gzip.compress(data) if gz else data)
    reading = Reading()
    got = list(read_documents([str(path)], progress=reading))
    assert [reading.where(i) for i in range(len(got))] == [f"{path}:{n}" for n in expected]
    assert reading.where(len(got)) is None


def test_arrays_dumps_and_single_documents(tmp_path):
    array = tmp_path / "a.json"
    array.write_text(json.dumps([DOC, DOC, DOC]))
    dump = tmp_path / "changes.json"
    dump.write_text(json.dumps({"results": [{"id": "1", "doc": DOC}, {"id": "2", "doc": DOC}]}))
    single = tmp_path / "one.cdr.json"
    single.write_text(json.dumps(DOC, indent=2))
    reading = Reading()
    assert len(list(read_documents([str(array), str(dump), str(single)], progress=reading))) == 6
    assert [reading.where(i) for i in range(6)] == [
        f"{array}[0]", f"{array}[1]", f"{array}[2]",
        f"{dump}:results[0]", f"{dump}:results[1]", str(single)]


def test_leading_blank_lines_count(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text("\n\n" + json.dumps(DOC) + "\n\n" + json.dumps(DOC) + "\n")
    reading = Reading()
    assert len(list(read_documents([str(path)], progress=reading))) == 2
    assert [reading.where(0), reading.where(1)] == [f"{path}:3", f"{path}:5"]


def test_options_travel_through_the_environment():
    options = ReadOptions(csv_columns=("uuid", "end_stamp"), csv_template="sql",
                          timezone="Europe/Paris")
    assert ReadOptions.from_env(options.to_env()) == options
    assert ReadOptions.from_env({}) == ReadOptions()
