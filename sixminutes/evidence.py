"""How sure a ratio is: the bounds an alert needs before it calls a carrier failing.

A ratio over a handful of calls says little: 1 failure in 2 calls is 50 %, and so is 500 in
1,000. The Wilson score interval (Wilson, 1927) gives, for k successes in n trials, the range
where the true proportion lies with the chosen confidence; unlike the normal approximation it
stays within [0, 1] and behaves for small n and for k near 0 or n.
"""
from __future__ import annotations

import math

__all__ = ["wilson_interval", "Z95"]

Z95 = 1.959963984540054
"""The two-sided 95 % quantile of the normal distribution."""


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
