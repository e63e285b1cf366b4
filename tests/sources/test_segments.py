"""A big JSON Lines file read by the processes of a parallel replay a segment each: every
process still gets every line at its position, its own documents whole, the others PASSED."""
from __future__ import annotations

import multiprocessing
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_shards import END, ODD_LINES, doc, reference, written
from sixminutes.columns import Chunk
from sixminutes.sources import files, segments
from sixminutes.sources.files import InputError, read_documents
from sixminutes.sources.reading import Reading
from sixminutes.sources.segments import Exchange, Stopped
from sixminutes.sources.shards import Shard
from sixminutes.windows import WINDOW


def exchange_for(folder: str, jobs: int, segment: int) -> Exchange:
    exchange = Exchange(folder, jobs, multiprocessing.get_context(), segment)
    exchange.alive = lambda owner: None  # (threads here: no process can end under them)
    return exchange


def read_together(path: str | list[str], jobs: int, segment: int, chunks: bool = False,
                  problems: bool = False, progress: bool = False
                  ) -> list[tuple[list, list[str | None], Reading]]:
    """What each of ``jobs`` readers sharing one exchange reads (threads: the waits are real);
    each had the problems reading the whole file has, unless ``problems`` (others expected)."""
    paths = [path] if isinstance(path, str) else path
    with tempfile.TemporaryDirectory() as folder:
        exchange = exchange_for(folder, jobs, segment)
        got: list = [None] * jobs

        def read(index: int) -> None:
            reading = Reading([].append if progress else None)
            try:
                out = list(read_documents(paths, reading, shard=Shard(index, jobs, exchange),
                                          chunks=chunks))
            except BaseException as error:  # (reported below, and the others told)
                exchange.fail()
                got[index] = error
                return
            finally:
                exchange.done(index)
            flat = [d for item in out for d in (item if type(item) is Chunk else [item])]
            got[index] = (flat, [reading.where(i) for i in range(len(flat))], reading)

        threads = [threading.Thread(target=read, args=(i,)) for i in range(jobs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "a reader hangs"
        for result in got:
            if isinstance(result, BaseException):
                raise result
        left = [p.name for p in Path(folder).iterdir()]  # (file-segment-reader.index)
        assert len(left) <= len(paths) * jobs * segments.AHEAD, left  # (read ahead past an end)
    if not problems:  # (those of reading the whole file, as one process does)
        whole = Reading()
        list(read_documents(paths, whole))
        assert [reading.problems for _, _, reading in got] == [whole.problems] * jobs
    return got


@pytest.fixture(autouse=True)
def streamed(monkeypatch):
    monkeypatch.setattr(files, "SMALL_LIMIT", 0)  # (streamed, as a big file is)
    monkeypatch.setattr(segments, "BUFFER", 64)  # lines cut by the buffer, lines longer than it


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.builds(lambda w, q, pad: doc(END + w * WINDOW + 7, q, pad="x" * pad) + b"\n",
              st.integers(0, 9), st.booleans(), st.integers(0, 300)),
    st.sampled_from(ODD_LINES)), min_size=1, max_size=40),
    st.integers(2, 3), st.integers(1, 400), st.booleans(), st.booleans())
def test_each_process_reads_what_it_would_read_alone(lines, jobs, segment, last_newline, chunks):
    with tempfile.TemporaryDirectory() as tmp:
        path = written(tmp, lines, last_newline)
        together = read_together(path, jobs, segment, chunks)
        for index, (docs, where, _) in enumerate(together):
            assert (docs, where) == reference(path, Shard(index, jobs))


def test_a_process_reads_only_its_segments_and_the_lines_it_counts(tmp_path, monkeypatch):
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"".join(doc(END + (i // 10) * WINDOW, _id=str(i)) + b"\n"
                              for i in range(400)))
    read, taken = [], []
    real_read, real_take = segments._read, segments._take

    def spy_read(fd, file, k, shard, scratch):
        read.append((shard.index, k))
        return real_read(fd, file, k, shard, scratch)

    def spy_take(fd, lines, shard, reading, path, scratch):
        found = real_take(fd, lines, shard, reading, path, scratch)
        taken.append((shard.index, sum(copied for _, _, copied in found),
                      sum(len(item) for items, _, _ in found for item in items
                          if isinstance(item, bytes))))
        return found

    monkeypatch.setattr(segments, "_read", spy_read)
    monkeypatch.setattr(segments, "_take", spy_take)
    together = read_together(str(path), 2, 4096)
    assert len(set(read)) == len(read) and len(read) > 4  # each segment read once...
    assert all(k % 2 == index for index, k in read)  # ... by its one process
    assert all(copied == size for _, copied, size in taken)  # (the bytes it says it copied)
    assert together[0][0] == reference(str(path), Shard(0, 2))[0]


def test_the_last_line_without_a_newline_is_an_odd_one_in_any_segment(tmp_path):
    path = tmp_path / "cdrs.jsonl"
    body = b"".join(doc(END + i * WINDOW) + b"\n" for i in range(6))
    path.write_bytes(body + doc(END))  # (its newline missing: decoded by every process)
    for segment in (1, 50, len(body) - 1, len(body), len(body) + 1, 1 << 20):
        for index, (docs, _, _) in enumerate(read_together(str(path), 2, segment)):
            assert docs == reference(str(path), Shard(index, 2))[0]


@pytest.mark.parametrize("buffer", [64, 1 << 20])  # (the lines read into a buffer of their size, or larger)
def test_a_file_that_shrank_while_read_is_a_problem_of_its_reading(tmp_path, monkeypatch, buffer):
    monkeypatch.setattr(segments, "BUFFER", buffer)
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"".join(doc(END + i * WINDOW, _id=str(i)) + b"\n" for i in range(40)))
    real_take = segments._take

    def shrink_first(fd, lines, shard, reading, where, scratch):
        with open(path, "r+b") as f:  # (rotated under the replay: cut in the middle)
            f.truncate(path.stat().st_size // 2)
        return real_take(fd, lines, shard, reading, where, scratch)

    monkeypatch.setattr(segments, "_take", shrink_first)
    together = read_together(str(path), 2, 1 << 20, problems=True)
    problems = [problem for _, _, reading in together for problem in reading.problems]
    assert [(p.path, p.reason, p.detail) for p in problems] == [
        (str(path), "unreadable", "the file shrank while it was read")]
    # what could not be read is handed on cut short (the engine rejects it), not lost silently
    cut = [d for d in together[1][0] if isinstance(d, bytes) and not d.endswith(b"}")]
    assert cut


def test_files_read_one_after_another_keep_their_segments_apart(tmp_path):
    paths = []
    for name, shift in (("a", 0), ("b", 7), ("c", 3)):  # (segments read ahead past each end)
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"".join(doc(END + (i + shift) * WINDOW // 3, _id=f"{name}{i}") + b"\n"
                                  for i in range(30)))
        paths.append(str(path))
    for jobs in (2, 3):
        for index, (docs, where, _) in enumerate(read_together(paths, jobs, 200)):
            assert (docs, where) == reference(paths, Shard(index, jobs))


def test_a_process_reads_its_next_segments_before_it_waits_for_another(tmp_path, monkeypatch):
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"".join(doc(END + i * WINDOW, _id=str(i)) + b"\n" for i in range(200)))
    events = []
    real_read, real_index = segments._read, Exchange.index

    def spy_read(fd, file, k, shard, scratch):
        events.append((shard.index, "read", k))
        return real_read(fd, file, k, shard, scratch)

    def spy_index(self, file, k, owner, reader):
        events.append((reader, "wait", k))
        return real_index(self, file, k, owner, reader)

    monkeypatch.setattr(segments, "_read", spy_read)
    monkeypatch.setattr(Exchange, "index", spy_index)
    read_together(str(path), 2, 500)
    first = [event[1:] for event in events if event[0] == 0][:segments.AHEAD + 2]
    assert first == [("read", 0), *[("read", 2 * i) for i in range(1, segments.AHEAD + 1)],
                     ("wait", 1)]  # (so the processes drift apart, not move in lockstep)


def test_each_process_tells_its_progress_segment_by_segment(tmp_path):
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"".join(doc(END + i * WINDOW, _id=str(i)) + b"\n" for i in range(100)))
    for index, (_, _, reading) in enumerate(read_together(str(path), 2, 400, progress=True)):
        steps = reading.progress.__self__  # (the list the steps were appended to)
        assert sum(steps) == path.stat().st_size  # the whole file, as read alone
        assert len(steps) > 10  # segment by segment, not all at the end


def test_a_process_waiting_for_a_segment_stops_when_another_fails(tmp_path):
    exchange = exchange_for(str(tmp_path), 2, 100)
    exchange.fail()
    with pytest.raises(Stopped):
        exchange.index(1, 0, 0, 1)


def test_a_segment_its_reader_never_left_is_an_error_not_a_wait(tmp_path):
    exchange = exchange_for(str(tmp_path), 2, 100)
    exchange.done(0)  # (its count ended without reading this file as segments)
    with pytest.raises(InputError, match="replay process 0 ended without reading segment 3"):
        exchange.index(1, 3, 0, 1)


def timed_out(waits: list) -> object:
    """A condition's wait that times out at once, noting the timeout it was given."""
    def wait(timeout=None) -> bool:
        waits.append(timeout)
        return False
    return wait


def test_the_parent_asks_whether_the_reader_it_waits_for_still_runs(tmp_path, monkeypatch):
    exchange = exchange_for(str(tmp_path), 2, 100)
    asked, waits = [], []

    def alive(owner: int) -> None:
        asked.append(owner)
        raise InputError(f"replay process {owner} ended with exit code 3")

    exchange.alive = alive
    monkeypatch.setattr(exchange._ready, "wait", timed_out(waits))
    with pytest.raises(InputError, match="ended with exit code 3"):
        exchange.index(1, 0, 1, 0)
    assert asked == [1]
    assert len(waits) == 1 and 0 < waits[0] <= 1  # (a killed process cannot say it is gone)


def test_a_process_whose_parent_is_gone_stops_waiting(tmp_path, monkeypatch):
    exchange = exchange_for(str(tmp_path), 2, 100)
    exchange.alive = None  # (a worker: it cannot see the others)
    monkeypatch.setattr(segments.os, "getppid", lambda: exchange.parent)
    calls = []
    monkeypatch.setattr(exchange._ready, "wait", lambda timeout=None: calls.append(timeout) or
                        (len(calls) > 2 and exchange.publish(1, 0, 0, bytearray(), True)) or False)
    assert exchange.index(1, 0, 0, 1)[1] is True  # (its parent there: it waited on)
    monkeypatch.setattr(segments.os, "getppid", lambda: 1)  # (adopted: its parent died)
    monkeypatch.setattr(exchange._ready, "wait", timed_out([]))
    with pytest.raises(Stopped):
        exchange.index(1, 1, 0, 1)


def test_the_parents_check_does_not_cross_to_the_processes(tmp_path):
    exchange = exchange_for(str(tmp_path), 2, 100)
    state = exchange.__getstate__()
    assert state["alive"] is None and exchange.alive is not None
    assert state["folder"] == str(tmp_path) and state["segment"] == 100


def test_an_index_holds_each_lines_start_end_and_plain_end_time(tmp_path):
    exchange = exchange_for(str(tmp_path), 3, 100)
    lines = np.array([[0, 10, END], [10, 11, -1]], np.int64)
    exchange.publish(1, 4, 2, bytearray(lines.tobytes()), True)
    for reader in (0, 1):
        got, end = exchange.index(1, 4, 2, reader)
        assert end is True and got.tolist() == lines.tolist()
    assert list(tmp_path.iterdir()) == []
