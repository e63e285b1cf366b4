"""A group commit's encode=true documents: decoded once, repaired exactly where they need it."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import test_prescan
from helpers import raw
from sixminutes.unchecked import decode_checked
from sixminutes.web.body import repaired


def counting(calls: list[bytes]):
    def repair(plain: bytes) -> bytes:
        calls.append(plain)
        return repaired(plain)
    return repair


def old_freeswitch(uuid: str) -> bytes:
    """What FreeSWITCH before #3152 posted, percent-decoded: a quote and CR LF raw in a value."""
    good = raw(uuid=uuid, sip_full_from='"+8551" <sip:+8551@x>', switch_r_sdp="v=0\r\no=-")
    broken = good.replace(b'\\"', b'"').replace(b"\\r\\n", b"\r\n")
    assert broken != good and repaired(broken) != broken
    return broken


def test_a_document_the_strict_decode_reads_whole_is_not_scanned_again():
    calls: list[bytes] = []
    bodies = [raw(uuid=f"u-{n}") for n in range(3)]
    written, columns = decode_checked(bodies, [True] * 3, counting(calls))
    assert calls == [] and written == bodies and columns.ok.all()


def test_an_old_freeswitch_document_is_repaired_before_it_is_written_and_decoded_so():
    calls: list[bytes] = []
    broken = old_freeswitch("u-2")
    bodies = [raw(uuid="u-1"), broken, raw(uuid="u-3")]
    written, columns = decode_checked(bodies, [True] * 3, counting(calls))
    assert calls == [broken]
    assert written == [bodies[0], repaired(broken), bodies[2]]
    assert columns.ok.all()  # the repaired one counts, as it did when each POST was checked
    assert bodies[1] is broken  # (the list handed in is not changed)


def test_a_checked_document_is_never_repaired():
    """Raw JSON (application/json) is stored as it came: only encode=true's are repaired."""
    calls: list[bytes] = []
    broken = old_freeswitch("u-1")
    written, columns = decode_checked([broken], [False], counting(calls))
    assert calls == [] and written == [broken] and not columns.ok.any()


@st.composite
def cdrs(draw) -> bytes:
    """A CDR with any text in a value, its escapes undone as old FreeSWITCH's were, or not."""
    doc = raw(uuid=draw(st.text(max_size=8)), sip_full_from=draw(st.text(max_size=20)))
    if draw(st.booleans()):
        doc = doc.replace(b'\\"', b'"').replace(b"\\r\\n", b"\r\n").replace(b"\\n", b"\n")
    return doc


@settings(max_examples=400, deadline=None)
@given(plain=test_prescan.serialized() | test_prescan.mutated() | cdrs(), unchecked=st.booleans())
def test_what_is_written_is_what_checking_each_post_gave(plain, unchecked):
    """The exactness of the shortcut: the bytes journaled (and so replayed after a kill -9)
    are those the former per-POST check gave, for any document, valid or not."""
    written, _ = decode_checked([raw(uuid="x"), plain], [True, unchecked], repaired)
    assert written == [raw(uuid="x"), repaired(plain) if unchecked else plain]
