"""The 6-minute window of an end time, and retention with an injected clock."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sixminutes.windows import FUTURE_TOLERANCE, WINDOW, Retention, window_of

epochs = st.integers(min_value=-(2**40), max_value=2**40)


def test_window_is_six_minutes():
    assert WINDOW == 360
    assert FUTURE_TOLERANCE == 3600


def test_window_of_boundaries():
    assert window_of(1_699_999_920) == 1_699_999_920  # a window start maps to itself
    assert window_of(1_700_000_000) == 1_699_999_920
    assert window_of(1_700_000_279) == 1_699_999_920  # last second of the window
    assert window_of(1_700_000_280) == 1_700_000_280  # first second of the next one
    assert window_of(0) == 0
    assert window_of(359) == 0
    assert window_of(360) == 360


def test_window_of_negative_epoch_rounds_down():
    assert window_of(-1) == -360


@given(epochs)
def test_window_holds_the_epoch(t):
    start = window_of(t)
    assert start <= t < start + WINDOW


@given(epochs)
def test_window_starts_on_a_multiple_of_360(t):
    assert window_of(t) % 360 == 0


@given(epochs)
def test_window_of_is_idempotent(t):
    assert window_of(window_of(t)) == window_of(t)


@given(epochs, st.integers(min_value=0, max_value=359))
def test_every_second_of_a_window_maps_to_its_start(t, offset):
    start = window_of(t)
    assert window_of(start + offset) == start


def clock_at(now: float):
    return lambda: now


def test_oldest_window_is_the_window_of_the_cut_off():
    now = 1_700_000_000
    retention = Retention(24, clock_at(now))
    assert retention.oldest_window() == window_of(now - 24 * 3600)


def test_oldest_window_with_fractional_hours_and_clock():
    retention = Retention(0.5, clock_at(1_700_000_000.75))
    assert retention.oldest_window() == window_of(1_700_000_000 - 1800)


def test_oldest_window_none_when_hours_is_none():
    assert Retention(None, clock_at(1_700_000_000)).oldest_window() is None


def test_newest_epoch_is_clock_plus_an_hour():
    assert Retention(24, clock_at(1_700_000_000)).newest_epoch() == 1_700_003_600
    assert Retention(None, clock_at(1_700_000_000.5)).newest_epoch() == 1_700_003_600.5


def test_retention_reads_the_clock_each_time():
    now = [1_700_000_000]
    retention = Retention(1, lambda: now[0])
    first = retention.oldest_window()
    now[0] += 3600
    assert retention.oldest_window() == first + 3600
    assert retention.newest_epoch() == now[0] + 3600


def test_default_retention_is_24_hours():
    assert Retention().hours == 24


def test_the_cut_off_on_a_window_start_keeps_that_window_and_a_second_earlier_does_not():
    """The cut-off is exactly ``hours`` before now: when it falls on a window's start, that
    window is the oldest kept; a second more and it would be the one before."""
    start = 1_699_999_920  # a window start
    assert Retention(1, clock_at(start + 3600)).oldest_window() == start
    assert Retention(1, clock_at(start + 3599)).oldest_window() == start - WINDOW
    assert Retention(24, clock_at(start + 24 * 3600)).oldest_window() == start
