"""Stat (CouchDB's _stats record) and Prometheus-style series keys."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sixminutes.stats import (SeriesKeyError, Stat, cached_key, key_maker, parse_series_key, parsed_key,
                              series_key)

# Values that keep sums exact enough to compare: no inf/nan, no values whose squares overflow.
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
small_ints = st.integers(min_value=-10_000, max_value=10_000)
values = st.lists(st.one_of(finite, small_ints), max_size=20)


def assert_same(a: Stat, b: Stat) -> None:
    """count/min/max exact, sum/squares approximately (float addition is not associative)."""
    assert a.count == b.count
    assert a.min == b.min
    assert a.max == b.max
    assert a.sum == pytest.approx(b.sum, rel=1e-9, abs=1e-6)
    assert a.squares == pytest.approx(b.squares, rel=1e-9, abs=1e-6)


# --- Stat ---------------------------------------------------------------------------------

def test_empty_stat_has_no_samples_and_infinite_bounds():
    stat = Stat()
    assert (stat.sum, stat.count, stat.squares) == (0.0, 0, 0.0)
    assert stat.min == math.inf and stat.max == -math.inf


def test_add_updates_sum_count_squares_min_max():
    stat = Stat()
    stat.add(3)
    stat.add(-2)
    stat.add(5)
    assert stat == Stat(sum=6, count=3, squares=9 + 4 + 25, min=-2, max=5)


def test_add_single_value_sets_min_and_max_to_it():
    stat = Stat()
    stat.add(7.5)
    assert stat.min == 7.5 and stat.max == 7.5


def test_of_equals_successive_adds():
    stat = Stat()
    for v in (1, 2, 3, 4):
        stat.add(v)
    assert Stat.of(1, 2, 3, 4) == stat


def test_of_nothing_is_empty():
    assert Stat.of() == Stat()


def test_merge_returns_new_stat_and_leaves_inputs_alone():
    a, b = Stat.of(1, 2), Stat.of(10)
    merged = a.merge(b)
    assert merged == Stat(sum=13, count=3, squares=1 + 4 + 100, min=1, max=10)
    assert a == Stat.of(1, 2) and b == Stat.of(10)
    assert merged is not a and merged is not b


def test_mean():
    assert Stat.of(2, 4, 9).mean == 5
    assert Stat().mean is None


def test_stddev_is_population_stddev():
    assert Stat.of(2, 4, 4, 4, 5, 5, 7, 9).stddev == pytest.approx(2.0)
    assert Stat.of(5).stddev == 0.0
    assert Stat().stddev is None


def test_stddev_never_negative_under_rounding():
    # squares/count - mean² can come out slightly negative for equal values; clamped to 0.
    stat = Stat.of(0.1, 0.1, 0.1)
    assert stat.stddev == pytest.approx(0.0, abs=1e-7)
    assert stat.stddev >= 0.0


def test_to_json_prints_integral_floats_as_ints():
    data = Stat.of(1.0, 2.0, 3.0).to_json()
    assert data == {"sum": 6, "count": 3, "squares": 14, "min": 1, "max": 3}
    assert all(type(v) is int for v in data.values())


def test_to_json_keeps_fractional_floats():
    data = Stat.of(0.5, 2.0).to_json()
    assert data == {"sum": 2.5, "count": 2, "squares": 4.25, "min": 0.5, "max": 2}
    assert type(data["sum"]) is float and type(data["min"]) is float
    assert type(data["max"]) is int


def test_to_json_of_a_stat_built_from_ints():
    # Stat.add keeps an int as min/max; to_json must print it (int has no is_integer() before 3.12).
    assert Stat.of(1, 2).to_json() == {"sum": 3, "count": 2, "squares": 5, "min": 1, "max": 2}
    assert Stat(sum=6, count=3, squares=14, min=1, max=3).to_json() == {
        "sum": 6, "count": 3, "squares": 14, "min": 1, "max": 3}


def test_to_json_keeps_huge_integral_floats_as_floats():
    data = Stat.of(2.0**60).to_json()
    assert type(data["sum"]) is float and data["sum"] == 2.0**60


def test_from_json_reads_to_json():
    stat = Stat.of(1.5, -3.0, 8.0)
    assert Stat.from_json(stat.to_json()) == stat


def test_from_json_types():
    stat = Stat.from_json({"sum": 3, "count": 2.0, "squares": 5, "min": 1, "max": 2})
    assert stat == Stat(3.0, 2, 5.0, 1.0, 2.0)
    assert type(stat.sum) is float and type(stat.count) is int and type(stat.min) is float


@given(values)
def test_of_matches_definition(xs):
    stat = Stat.of(*xs)
    assert stat.count == len(xs)
    assert stat.sum == pytest.approx(math.fsum(xs), rel=1e-9, abs=1e-6)
    assert stat.squares == pytest.approx(math.fsum(x * x for x in xs), rel=1e-9, abs=1e-6)
    assert stat.min == (min(xs) if xs else math.inf)
    assert stat.max == (max(xs) if xs else -math.inf)


@given(st.lists(finite, max_size=20))
def test_json_round_trip(xs):
    stat = Stat.of(*xs)
    if not xs:
        return  # the empty Stat's infinite bounds are checked below
    assert Stat.from_json(stat.to_json()) == stat


def test_json_round_trip_of_empty_stat():
    assert Stat.from_json(Stat().to_json()) == Stat()


@given(values, values, values)
def test_merge_is_associative(a, b, c):
    x, y, z = Stat.of(*a), Stat.of(*b), Stat.of(*c)
    assert_same(x.merge(y).merge(z), x.merge(y.merge(z)))


@given(values, values)
def test_merge_is_commutative(a, b):
    x, y = Stat.of(*a), Stat.of(*b)
    assert_same(x.merge(y), y.merge(x))
    assert x.merge(y).sum == y.merge(x).sum  # a + b == b + a exactly for two floats


@given(values, values)
def test_merge_equals_stat_of_union(a, b):
    assert_same(Stat.of(*a).merge(Stat.of(*b)), Stat.of(*a, *b))


@given(values)
def test_empty_stat_is_the_identity(xs):
    stat = Stat.of(*xs)
    assert Stat().merge(stat) == stat
    assert stat.merge(Stat()) == stat


# --- series keys ----------------------------------------------------------------------------

def test_series_key_without_labels_is_the_name():
    assert series_key("calls") == "calls"
    assert series_key("calls", {}) == "calls"


def test_series_key_sorts_labels_by_name():
    key = series_key("calls", {"profile": "carrier1", "direction": "egress"})
    assert key == 'calls{direction="egress",profile="carrier1"}'


def test_series_key_escapes_backslash_quote_and_newline():
    assert series_key("x", {"a": "back\\slash"}) == 'x{a="back\\\\slash"}'
    assert series_key("x", {"a": 'say "hi"'}) == 'x{a="say \\"hi\\""}'
    assert series_key("x", {"a": "two\nlines"}) == 'x{a="two\\nlines"}'


def test_series_key_leaves_other_characters_alone():
    assert series_key("x", {"a": "Café, {}=Zoë\t%20"}) == 'x{a="Café, {}=Zoë\t%20"}'


def test_series_key_formats_non_string_values_as_text():
    assert series_key("sip_status", {"code": 503}) == 'sip_status{code="503"}'


def test_parse_series_key_plain_name():
    assert parse_series_key("calls") == ("calls", {})


def test_parse_series_key_with_labels():
    assert parse_series_key('calls{direction="egress",profile="carrier1"}') == (
        "calls", {"direction": "egress", "profile": "carrier1"})


def test_parse_series_key_unescapes():
    assert parse_series_key('x{a="b\\\\c\\"d\\ne"}') == ("x", {"a": 'b\\c"d\ne'})


def test_parse_series_key_backslash_before_n_is_not_a_newline():
    # The value `\n` (backslash, letter n) is escaped as `\\n`, which must not read back as a newline.
    key = series_key("x", {"a": "\\n"})
    assert key == 'x{a="\\\\n"}'
    assert parse_series_key(key) == ("x", {"a": "\\n"})


def test_parse_series_key_empty_braces():
    assert parse_series_key("x{}") == ("x", {})


@pytest.mark.parametrize("bad", [
    "",
    "1calls",
    "calls{",
    "calls{a=\"b\"",
    "calls{a=b}",
    'calls{a="b"}trailing',
    'calls{a="b",}',
    'calls{1a="b"}',
    'calls{a="b"c="d"}',
    "calls x",
    'calls{a="unterminated}',
    '{a="b"}',
])
def test_parse_errors_raise_series_key_error(bad):
    with pytest.raises(SeriesKeyError):
        parse_series_key(bad)


def test_series_key_error_is_a_value_error():
    assert issubclass(SeriesKeyError, ValueError)


metric_names = st.from_regex(r"\A[A-Za-z_:][A-Za-z0-9_:]{0,15}\Z")
label_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,15}\Z")
label_values = st.text(max_size=20)  # any unicode, including \\ " \n { } , =


@settings(max_examples=300)
@given(metric_names, st.dictionaries(label_names, label_values, max_size=5))
def test_parse_series_key_inverts_series_key(name, labels):
    assert parse_series_key(series_key(name, labels)) == (name, labels)


@given(st.dictionaries(label_names, label_values, min_size=1, max_size=5))
def test_series_key_is_independent_of_label_order(labels):
    reversed_labels = dict(reversed(list(labels.items())))
    assert series_key("x", labels) == series_key("x", reversed_labels)


@given(metric_names, st.dictionaries(label_names, label_values, max_size=4))
def test_cached_key_equals_series_key(name, labels):
    assert cached_key(name, labels) == series_key(name, labels)
    assert cached_key(name, labels) == series_key(name, labels)  # from the cache this time


def test_cached_key_distinguishes_label_names_with_same_values():
    a = cached_key("calls", {"profile": "x"})
    b = cached_key("calls", {"account": "x"})
    assert a == 'calls{profile="x"}'
    assert b == 'calls{account="x"}'


def test_cached_key_distinguishes_names_with_same_labels():
    assert cached_key("calls", {"p": "x"}) != cached_key("answered", {"p": "x"})


def test_cached_key_formats_non_string_values_as_text():
    assert cached_key("sip_status", {"code": 486}) == 'sip_status{code="486"}'


def test_cached_key_does_not_confuse_equal_values_of_different_types():
    # 1 == True == 1.0 in Python, so they hash alike; the keys must still follow str(value).
    assert cached_key("flag_case", {"v": 1}) == 'flag_case{v="1"}'
    assert cached_key("flag_case", {"v": True}) == series_key("flag_case", {"v": "True"})
    assert cached_key("flag_case", {"v": 1.0}) == series_key("flag_case", {"v": "1.0"})


@given(metric_names, st.dictionaries(label_names, label_values, max_size=4))
def test_a_key_built_by_cached_key_is_remembered_as_it_parses(name, labels):
    key = cached_key(name, labels)
    assert parsed_key(key) == parse_series_key(key) == (name, labels)


@pytest.mark.parametrize("key, message", [
    ("5xx", "not a series key: '5xx'"),
    ("calls[x]", "not a series key: 'calls[x]'"),
    ('calls{a=1}', "bad labels in series key: 'calls{a=1}'"),
    ('calls{a="1"}x', "trailing text in series key: 'calls{a=\"1\"}x'"),
])
def test_a_bad_series_key_is_refused_naming_it(key, message):
    with pytest.raises(SeriesKeyError) as refused:
        parse_series_key(key)
    assert str(refused.value) == message


def test_bad_names_are_refused_every_time_and_good_ones_are_remembered():
    for _ in range(2):  # the second time from the memory of names already checked
        with pytest.raises(SeriesKeyError, match="not a valid series name: '5xx-errors'"):
            series_key("5xx-errors", {})
        with pytest.raises(SeriesKeyError, match="not a valid label name: 'sip-code'"):
            series_key("errors", {"sip-code": "503"})
        assert series_key("errors", {"code": 503}) == 'errors{code="503"}'


def test_integral_sums_print_as_integers_up_to_what_a_float_holds_exactly():
    stat = Stat()
    for value in (120.0, 1e6, 0.5):
        stat.add(value)
    json = stat.to_json()
    assert json["sum"] == 1000120.5 and json["count"] == 3
    assert json["max"] == 1000000 and type(json["max"]) is int
    assert type(json["min"]) is float
    big = Stat()
    big.add(2.0**53 + 2)  # past 2**53 a float is no exact integer any more: kept as a float
    assert type(big.to_json()["sum"]) is float
    assert type(Stat(sum=120.0, count=1, squares=14400.0, min=120.0, max=120.0).to_json()["sum"]) is int


label_names = st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), max_size=4)
label_values = st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 5))


@settings(max_examples=300)
@given(label_names, st.data())
def test_key_maker_equals_series_key(names, data):
    """A series' key builder writes what series_key writes, and parses back to its labels."""
    values = tuple(data.draw(st.lists(label_values, min_size=len(names), max_size=len(names))))
    make = key_maker("calls", tuple(names))
    texts = {n: "none" if v is None else str(v) for n, v in zip(names, values)}
    key = make(values)
    assert key == series_key("calls", texts)
    assert parsed_key(key) == ("calls", texts) == parse_series_key(key)
