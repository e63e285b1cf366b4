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


@pytest.mark.parametrize("slow", [False, True])
def test_brackets_all_inside_one_string_are_not_nesting(slow, monkeypatch):
    if slow:
        monkeypatch.setattr(rawjson, "_prescan", None)
    assert not too_deep(b'"' + b"[" * (MAX_NESTING + 1) + b'"')


def test_a_built_document_keeps_what_orjson_can_write_and_says_why_it_cannot_show_one():
    # 1e999 is refused by orjson: the document is read again with the standard library, its
    # integers of 19 digits and more as floats (what orjson can write back)
    doc = load(b'{"x":1e999,"m":42,"l":123456789012345678,"k":1234567890123456789}')
    assert doc == {"x": float("inf"), "m": 42, "l": 123456789012345678, "k": 1234567890123456789.0}
    assert type(doc["m"]) is int and type(doc["l"]) is int and type(doc["k"]) is float
    assert load(b"[1e999]") == {"error": "the document cannot be shown: not an object"}
    assert load(b"{")["error"].startswith("the document cannot be shown: JSONDecodeError: ")
    assert load(b'{"a":"\x00","b":nan}')["error"].startswith(
        "the document cannot be shown: JSONDecodeError: Invalid control character")


def test_clipping_starts_at_the_given_depth():
    assert clipped({"a": {"b": 1}}, 2) == {"a": {"b": 1}}
    assert clipped({"a": {"b": 1}}, 1) == {"a": "(nested too deep)"}
    assert clipped([[1]], 1) == ["(nested too deep)"]
    assert clipped({"a": 1}, 0) == "(nested too deep)" and clipped(7, 0) == 7


def test_a_nul_byte_leaves_the_document_as_it_is():
    raw = b'{"a":"\x00","b":nan}'  # (never valid JSON: no rewriting that could join parts wrongly)
    assert nonfinite_to_null(raw) == raw


@pytest.mark.parametrize("slow", [False, True])
def test_nesting_exactly_at_the_limit_is_not_too_deep_when_more_brackets_hide_in_strings(slow, monkeypatch):
    if slow:
        monkeypatch.setattr(rawjson, "_prescan", None)
    assert not too_deep(b"[" * MAX_NESTING + b'"[{"' + b"]" * MAX_NESTING)  # (more than the limit counted)
    assert too_deep(b"[" * (MAX_NESTING + 1) + b'"[{"' + b"]" * (MAX_NESTING + 1))
