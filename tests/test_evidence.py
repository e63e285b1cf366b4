"""The Wilson interval: the bounds a ratio over n calls can be trusted within."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixminutes.evidence import wilson_interval


@pytest.mark.parametrize("k, n, low, high", [
    (50, 100, 0.4038, 0.5962),   # textbook values (z = 1.96)
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (1, 2, 0.0945, 0.9055),
])
def test_known_intervals(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-4)


def test_no_trials_say_nothing():
    assert wilson_interval(0, 0) == (0.0, 1.0)


@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_the_interval_holds_the_observed_ratio_within_zero_and_one(kn):
    k, n = kn
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0


@given(st.integers(1, 1000), st.integers(2, 50))
def test_more_calls_at_the_same_ratio_narrow_the_interval(n, times):
    k = n // 3
    low, high = wilson_interval(k, n)
    more_low, more_high = wilson_interval(k * times, n * times)
    assert more_high - more_low < high - low
