"""The Wilson interval: the bounds a ratio over n calls can be trusted within."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixminutes.evidence import Z95, mean_interval, t_of, wilson_interval, z_of


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


# --- the edges of each bound (what mutation testing found unchecked) ---------------------------

def test_one_call_is_some_evidence_and_the_ends_are_exact():
    assert wilson_interval(1, 1) == pytest.approx((0.2065, 1.0), abs=1e-4)  # not "nothing known"
    assert wilson_interval(0, 1) == pytest.approx((0.0, 0.7935), abs=1e-4)
    for n in (1, 3, 7, 10, 999, 100_000):  # no rounding dust at 0 or 1
        assert wilson_interval(0, n)[0] == 0.0
        assert wilson_interval(n, n)[1] == 1.0


def test_more_successes_than_trials_count_as_all_of_them():
    assert wilson_interval(12, 10) == wilson_interval(10, 10)
    assert wilson_interval(-2, 10) == wilson_interval(0, 10)


def test_the_normal_quantile_of_a_confidence_and_what_is_refused():
    assert z_of(0) == 0.0
    assert z_of(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_of(0.99) == pytest.approx(2.575829, abs=1e-6)
    for bad in (1, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"confidence must be in \[0, 1\), got"):
            z_of(bad)


def test_no_degrees_of_freedom_is_an_unbounded_t():
    assert t_of(Z95, 0) == math.inf and t_of(0.5, 0) == math.inf
    assert t_of(0.0, 0) == 0.0 and t_of(-1.0, 0) == 0.0


def test_a_mean_interval_from_known_samples():
    # 1, 2, 3, 4, 5: mean 3, sample variance 2.5, standard error sqrt(0.5); t(0.975, 4) = 2.7764
    low, high = mean_interval(15, 5, 55)
    assert (low, high) == pytest.approx((3 - 2.7764 * math.sqrt(0.5), 3 + 2.7764 * math.sqrt(0.5)), rel=1e-3)
    # 1, 3: mean 2, standard error 1; df 1
    assert mean_interval(4, 2, 10) == pytest.approx((2 - t_of(Z95, 1), 2 + t_of(Z95, 1)))
    assert mean_interval(10, 5, 20) == (2.0, 2.0)  # five equal values: no spread at all


def test_a_mean_of_fewer_than_two_samples_is_unbounded_unless_no_confidence_is_asked():
    assert mean_interval(0, 0, 0) == (-math.inf, math.inf)
    assert mean_interval(5, 1, 25) == (-math.inf, math.inf)
    assert mean_interval(5, 1, 25, z=0) == (5.0, 5.0)  # the point value, as the seed's rules
    assert mean_interval(15, 5, 55, z=0) == (3.0, 3.0)
