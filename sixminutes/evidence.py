"""How sure a ratio or a mean is: the bounds an alert needs before it calls a carrier failing.

A ratio over a handful of calls says little: 1 failure in 2 calls is 50 %, and so is 500 in
1,000. The Wilson score interval (Wilson, 1927) gives, for k successes in n trials, the range
where the true proportion lies with the chosen confidence; unlike the normal approximation it
stays within [0, 1] and behaves for small n and for k near 0 or n.

A mean (PDD, MOS) gets Student's t interval, from the Stat's count, sum and sum of squares:
mean ± t · s / √n. Its quantile comes from the Cornish–Fisher expansion of t around the normal
quantile (Abramowitz & Stegun 26.7.5), within 0.5 % of the exact value from 5 degrees of freedom.
A confidence of 0 gives a zero-width interval: the point estimate, the seed's fixed line.
"""
from __future__ import annotations

import math
from statistics import NormalDist

__all__ = ["wilson_interval", "mean_interval", "z_of", "t_of", "Z95"]

Z95 = 1.959963984540054
"""The two-sided 95 % quantile of the normal distribution."""


def z_of(confidence: float) -> float:
    """The normal quantile of a two-sided interval at this confidence (0 → 0)."""
    if not 0 <= confidence < 1:
        raise ValueError(f"confidence must be in [0, 1), got {confidence!r}")
    return 0.0 if confidence == 0 else NormalDist().inv_cdf(0.5 + confidence / 2)


def t_of(z: float, df: int) -> float:
    """Student's t quantile with ``df`` degrees of freedom at the normal quantile ``z``."""
    if df <= 0:
        return math.inf if z > 0 else 0.0
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The (lower, upper) bounds of the proportion k/n at the confidence z stands for;
    (0, 1) when there are no trials at all."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(k / n, 0.0), 1.0)
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    scale = 1 + z2 / n
    low = 0.0 if k <= 0 else max(0.0, (centre - spread) / scale)  # (exact at the ends:
    high = 1.0 if k >= n else min(1.0, (centre + spread) / scale)  # rounding leaves 1e-17)
    return min(low, p), max(high, p)


def mean_interval(total: float, count: int, squares: float, z: float = Z95) -> tuple[float, float]:
    """The (lower, upper) bounds of a mean from a Stat's sum, count and sum of squares;
    unbounded with fewer than two samples (one value says nothing of the spread)."""
    if count <= 0:
        return -math.inf, math.inf
    mean = total / count
    if z == 0:
        return mean, mean
    if count < 2:
        return -math.inf, math.inf
    variance = max(0.0, (squares - total * mean) / (count - 1))  # (rounding can dip below 0)
    spread = t_of(z, count - 1) * math.sqrt(variance / count)
    return mean - spread, mean + spread
