"""The reader of one process of a parallel replay: every document of its windows, another's as
PASSED, at the same positions as reading the whole file."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sixminutes import _prescan
from sixminutes.columns import Chunk
from sixminutes.sources import files, shards
from sixminutes.sources.files import read_documents
from sixminutes.sources.reading import Reading
from sixminutes.sources.shards import PASSED, Shard, shard_of
from sixminutes.windows import WINDOW

END = 1_700_000_000


def doc(epoch, quoted=True, **extra) -> bytes:
    value = f'"{epoch}"' if quoted else str(epoch)
    body = "".join(f',"{k}":{json.dumps(v)}' for k, v in extra.items())
    return f'{{"variables":{{"end_epoch":{value}}}{body}}}'.encode()


def reference(path: str | list[str], shard: Shard) -> tuple[list, list[str | None]]:
    """What the process reads, told from the whole file read as one process reads it."""
    reading = Reading()
    paths = [path] if isinstance(path, str) else path
    out = [d if shard.keeps(d) else PASSED for d in read_documents(paths, reading)]
    return out, [reading.where(i) for i in range(len(out))]


def sharded(path: str, shard: Shard) -> tuple[list, list[str | None]]:
    reading = Reading()
    out = list(read_documents([path], reading, shard=shard))
    return out, [reading.where(i) for i in range(len(out))]


def written(folder: str, lines: list[bytes], last_newline: bool) -> str:
    """A JSON Lines file of these lines in ``folder`` (its last newline left out if asked)."""
    content = b"".join(lines)
    if not last_newline:
        content = content.rstrip(b"\n")
    path = str(Path(folder) / "cdrs.jsonl")
    Path(path).write_bytes(content)
    return path


ODD_LINES = [
    b"\n",  # blank
    b'{"last_seq":"12-abc","pending":0}\n',  # a _changes feed's end
    b"[" + doc(END + 400) + b"," + doc(END + 800) + b"]\n",  # couchbackup: an array a line
    b'{"variables":{"end_epoch":"1700000000","end_epoch":"1700000400"}}\n',  # repeated key
    b'{"variables":{"end_epoch":1.7e9}}\n',  # not plain: decoded to tell
    b'{"variables":{"end_epoch":"x"}}\n',  # no end time: process 0's
    b"not json\n",
    b'\xef\xbb\xbf{"variables":{"end_epoch":"1700000000"}}\n',  # a BOM
    doc(END, quoted=False) + b"\r\n",  # a Windows line end
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.builds(lambda w, q: doc(END + w * WINDOW + 7, q) + b"\n", st.integers(0, 9), st.booleans()),
    st.sampled_from(ODD_LINES)), min_size=1, max_size=40),
    st.integers(1, 3), st.booleans(), st.data())
def test_a_process_reads_its_documents_at_their_positions(lines, jobs, last_newline, data):
    index = data.draw(st.integers(0, jobs - 1))
    with tempfile.TemporaryDirectory() as tmp:
        path = written(tmp, lines, last_newline)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(files, "SMALL_LIMIT", 0)  # (streamed, as a big file is)
            mp.setattr(shards, "BUFFER", 64)  # lines cut by the buffer, lines longer than it
            got = sharded(path, Shard(index, jobs))
            want = reference(path, Shard(index, jobs))
    assert got == want


@pytest.mark.parametrize("jobs", [None, 1, 2])
def test_documents_in_chunks_are_those_read_one_by_one_at_the_same_places(tmp_path, monkeypatch, jobs):
    monkeypatch.setattr(files, "SMALL_LIMIT", 0)
    monkeypatch.setattr(shards, "BUFFER", 256)  # (several chunks, lines cut by the buffer)
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"".join(doc(END + i * 97, _id=str(i)) + b"\n" for i in range(60)) +
                     b"".join(ODD_LINES) + doc(END, _id="last") + b"\n")
    shard = None if jobs is None else Shard(jobs - 1, jobs)
    one_by_one, in_chunks = Reading(), Reading()
    want = list(read_documents([str(path)], one_by_one, shard=shard))
    got = list(read_documents([str(path)], in_chunks, shard=shard, chunks=True))
    assert any(type(item) is Chunk for item in got)
    flat = [d for item in got for d in (item if type(item) is Chunk else [item])]
    assert flat == want
    assert [in_chunks.where(i) for i in range(len(flat))] == [one_by_one.where(i) for i in range(len(want))]


@pytest.mark.parametrize("buffer", [64, 300, 1 << 20])
@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_positions_hold_where_odd_lines_fall_among_the_documents(tmp_path, monkeypatch, jobs, buffer):
    """Odd lines (blank, arrays, a repeated key, not JSON...) between runs of plain documents,
    in buffers of every size: each process's documents are where the whole file has them."""
    monkeypatch.setattr(files, "SMALL_LIMIT", 0)
    monkeypatch.setattr(shards, "BUFFER", buffer)
    lines = []
    for i, odd in enumerate(ODD_LINES * 2):
        lines += [doc(END + (i * 5 + k) * WINDOW // 2, _id=f"{i}-{k}") + b"\n" for k in range(i % 4)]
        lines.append(odd)
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"".join(lines))
    for index in range(jobs):
        for chunks in (False, True):
            reading = Reading()
            got = list(read_documents([str(path)], reading, shard=Shard(index, jobs), chunks=chunks))
            flat = [d for item in got for d in (item if type(item) is Chunk else [item])]
            want = reference(str(path), Shard(index, jobs))
            assert (flat, [reading.where(i) for i in range(len(flat))]) == want


def test_the_splitter_copies_only_this_process_lines():
    own, other = doc(END - END % WINDOW), doc(END - END % WINDOW + WINDOW)
    data = own + b"\n" + other + b"\n" + b"\n" + other[:10]
    items, used, odd, copied = _prescan.split_lines(data, 2, shard_of(own, 2), WINDOW)
    assert items == [own, None, (b"\n",)]
    assert used == len(data) - 10  # the line cut short waits for the next buffer
    assert (odd, copied) == (1, len(own))
    marker = object()
    assert _prescan.split_lines(data, 2, shard_of(own, 2), WINDOW, marker)[0][1] is marker


def test_every_process_together_reads_each_document_once(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "SMALL_LIMIT", 0)
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"".join(doc(END + i * 97, _id=str(i)) + b"\n" for i in range(200)) +
                     b"".join(ODD_LINES))
    whole = list(read_documents([str(path)]))
    shares = [list(read_documents([str(path)], shard=Shard(i, 3))) for i in range(3)]
    assert all(len(share) == len(whole) for share in shares)
    for position, document in enumerate(whole):
        counted = [share[position] for share in shares if share[position] is not PASSED]
        assert counted == [document]
