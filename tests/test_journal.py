"""The ingest journal's segment files: what was appended comes back, in order, after any crash."""
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from sixminutes.journal import Journal


def records(journal: Journal, position: int = 0) -> list[tuple[int, str, bytes]]:
    return list(journal.after(position))


def test_records_come_back_in_order_and_ids_go_on_after_a_reopen(tmp_path):
    journal = Journal(str(tmp_path / "j"))
    assert journal.append([("http", b"a"), ("demo", b"b")]) == [1, 2]
    assert journal.append([("http", b"c")]) == [3]
    journal.close()
    again = Journal(str(tmp_path / "j"))
    assert records(again) == [(1, "http", b"a"), (2, "demo", b"b"), (3, "http", b"c")]
    assert records(again, 2) == [(3, "http", b"c")]
    assert again.append([("http", b"d")]) == [4]


def test_a_new_journal_numbers_after_the_ids_an_older_one_used(tmp_path):
    journal = Journal(str(tmp_path / "j"), after=41)
    assert journal.append([("http", b"x")]) == [42]


def test_a_torn_record_at_the_end_is_cut_and_the_next_append_takes_its_place(tmp_path):
    journal = Journal(str(tmp_path / "j"))
    journal.append([("http", b"first"), ("http", b"second")])
    (segment,) = (tmp_path / "j").iterdir()
    whole = segment.read_bytes()
    journal.append([("http", b"lost" * 20)])
    journal.close()
    os.truncate(segment, len(whole) + 50)  # a crash mid-append
    again = Journal(str(tmp_path / "j"))
    assert records(again) == [(1, "http", b"first"), (2, "http", b"second")]
    assert segment.stat().st_size == len(whole)
    assert again.append([("http", b"third")]) == [3]
    assert [body for _, _, body in records(again)] == [b"first", b"second", b"third"]


def test_a_record_whose_bytes_changed_ends_what_is_read(tmp_path):
    journal = Journal(str(tmp_path / "j"))
    journal.append([("http", b"one"), ("http", b"two")])
    journal.close()
    (segment,) = (tmp_path / "j").iterdir()
    data = bytearray(segment.read_bytes())
    data[-6] ^= 0xFF  # inside the second body: its CRC no longer matches
    segment.write_bytes(bytes(data))
    assert records(Journal(str(tmp_path / "j"))) == [(1, "http", b"one")]


def test_release_unlinks_whole_covered_segments_only_never_the_current_one(tmp_path):
    journal = Journal(str(tmp_path / "j"), segment_bytes=100)
    for n in range(1, 8):
        journal.append([("http", b"x" * 100)])  # a segment per record: each is over 100 bytes
    assert journal.segments == 7
    assert journal.release(3) == 3  # the segments of records 1, 2 and 3
    assert [i for i, _, _ in records(journal)] == [4, 5, 6, 7]
    assert journal.release(100) == 3 and journal.segments == 1  # the one being written stays
    assert [i for i, _, _ in records(journal)] == [7]
    journal.close()
    assert [i for i, _, _ in records(Journal(str(tmp_path / "j"), segment_bytes=100))] == [7]
    assert Journal(str(tmp_path / "j")).append([("http", b"y")]) == [8]



def test_detached_segments_are_no_longer_the_journal_s_and_if_left_on_disk_are_covered(tmp_path):
    """detach() hands the covered segments over for another thread to unlink; a crash before
    it did leaves them on disk, covered by the position saved with the snapshot."""
    journal = Journal(str(tmp_path / "j"), segment_bytes=100)
    for n in range(1, 5):
        journal.append([("http", b"x" * 100)])
    paths = journal.detach(2)
    assert [os.path.basename(p) for p in paths] == [f"{1:020d}.log", f"{2:020d}.log"]
    assert all(os.path.exists(p) for p in paths) and journal.segments == 2
    assert [i for i, _, _ in records(journal)] == [3, 4]
    assert journal.append([("http", b"y" * 100)]) == [5]
    journal.close()
    again = Journal(str(tmp_path / "j"), segment_bytes=100)  # (not unlinked: a crash)
    assert [i for i, _, _ in records(again, 2)] == [3, 4, 5]
    assert again.release(2) == 2 and not any(os.path.exists(p) for p in paths)


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(st.binary(max_size=300), min_size=1, max_size=4),
                        min_size=1, max_size=8),
       segment_bytes=st.integers(50, 2000), cut=st.floats(0, 1))
def test_after_a_crash_at_any_byte_the_journal_holds_a_prefix_and_numbers_on(
        tmp_path_factory, batches, segment_bytes, cut):
    """A kill -9 may cut the last segment anywhere: what is read back is exactly the records
    written before the cut, in order, and new ids follow the last one read, without a gap."""
    path = str(tmp_path_factory.mktemp("j"))
    journal = Journal(path, segment_bytes=segment_bytes)
    written = []
    for batch in batches:
        ids = journal.append([("http", body) for body in batch])
        written += list(zip(ids, batch))
    journal.close()
    last = max(os.listdir(path))
    with open(os.path.join(path, last), "r+b") as f:
        size = f.seek(0, 2)
        f.truncate(int(size * cut))
    again = Journal(path, segment_bytes=segment_bytes)
    read = [(i, body) for i, _, body in again.after(0)]
    assert read == written[: len(read)]
    assert [i for i, _ in read] == list(range(1, len(read) + 1))
    assert again.append([("http", b"z")]) == [len(read) + 1]


def test_every_append_is_on_disk_when_it_returns_the_segment_is_written_with_o_dsync(tmp_path):
    """No fdatasync after the write: the segment's descriptor makes each write durable."""
    import fcntl

    journal = Journal(str(tmp_path / "j"), segment_bytes=100)
    journal.append([("http", b"x" * 200)])
    journal.append([("http", b"y" * 200)])  # (a new segment: over 100 bytes)
    assert fcntl.fcntl(journal._fd, fcntl.F_GETFL) & os.O_DSYNC == os.O_DSYNC
    journal.close()
    again = Journal(str(tmp_path / "j"))  # reopened after a restart, the same
    assert fcntl.fcntl(again._fd, fcntl.F_GETFL) & os.O_DSYNC == os.O_DSYNC


@given(st.binary(min_size=0, max_size=20_000), st.integers(0, 2**32 - 1))
def test_the_crc_in_slices_is_the_crc(data, start):
    import zlib

    from sixminutes.journal import _crc

    assert _crc(data, start) == zlib.crc32(data, start)


def test_the_crc_is_isa_l_s_and_a_segment_checked_with_zlib_s_crc_reads_back(tmp_path):
    """The CRC is ISA-L's (~20x zlib's speed, with the GIL held) and the same CRC-32: a segment
    written before, checked with zlib's, reads back whole, and a record written now checks
    with zlib's."""
    import struct
    import zlib

    from isal import isal_zlib

    from sixminutes import journal as module

    assert module.crc32 is isal_zlib.crc32
    directory = tmp_path / "j"
    directory.mkdir()
    body = bytes(range(256)) * 40  # over a CRC slice
    head = struct.pack("<QdHI", 1, 1.5, 4, len(body))
    crc = zlib.crc32(body, zlib.crc32(b"http", zlib.crc32(head)))
    (directory / f"{1:020d}.log").write_bytes(head + b"http" + body + struct.pack("<I", crc))
    journal = Journal(str(directory))
    assert records(journal) == [(1, "http", body)]
    assert journal.append([("couchdb", body[::-1])]) == [2]
    journal.close()
    data = (directory / f"{1:020d}.log").read_bytes()[len(head) + 4 + len(body) + 4:]
    head2, rest = data[:len(head)], data[len(head):]
    assert struct.unpack("<I", rest[-4:])[0] == zlib.crc32(rest[:-4], zlib.crc32(head2))
