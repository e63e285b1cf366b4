"""FreeSWITCH's JSON as bytes: bare non-finite tokens, the nesting limit, documents built for show."""
from __future__ import annotations

import pytest

from sixminutes import rawjson
from sixminutes.rawjson import CLIP_DEPTH, MAX_NESTING, clipped, load, nonfinite_to_null, too_deep


def test_nonfinite_tokens_become_null_outside_strings_only():
    raw = b'{"mos":nan,"r":-inf,"note":"nan inf","x":NaN}'
    assert nonfinite_to_null(raw) == b'{"mos":null,"r":null,"note":"nan inf","x":null}'


@pytest.mark.parametrize("slow", [False, True])
def test_the_nesting_limit_counts_brackets_outside_strings(slow, monkeypatch):
    if slow:
        monkeypatch.setattr(rawjson, "_prescan", None)
    assert not too_deep(b"[" * MAX_NESTING + b"]" * MAX_NESTING)
    assert too_deep(b"[" * (MAX_NESTING + 1))  # (not JSON: the check does not need it to be)
    assert not too_deep(b'{"a":"' + b"[" * (MAX_NESTING + 1) + b'"}')
    assert not too_deep(b'{"a":"\\"' + b"{" * (MAX_NESTING + 1) + b'"}')  # an escaped quote
    assert too_deep(b'{"a":"\\\\",' + b"{" * (MAX_NESTING + 1))  # an escaped backslash


def test_a_built_document_never_raises():
    assert load(b'{"mos":nan}') == {"mos": None}
    assert load(b'{"n":18446744073709551616}') == {"n": 18446744073709551616}
    assert load(b"{").keys() == {"error"}


def test_a_built_document_is_clipped_where_orjson_could_not_write_it():
    deep: object = 1
    for _ in range(CLIP_DEPTH + 5):
        deep = [deep]
    shown = clipped({"x": deep})
    for _ in range(CLIP_DEPTH - 1):
        shown = shown["x"] if isinstance(shown, dict) else shown[0]
    assert shown == ["(nested too deep)"]
