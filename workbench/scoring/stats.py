"""95 % confidence intervals for score means and pass rates, and for their difference.

Means use Student's t (Welch for a difference); pass rates use Wilson's interval, which
stays inside [0, 1] and does not collapse to a point at 0/n or n/n. Pure Python: the few
quantiles needed do not justify scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Interval", "mean_interval", "wilson_interval", "difference_interval", "t_975"]

_Z = 1.959963984540054  # the normal distribution's 97.5 % quantile
# Student's t 97.5 % quantiles for 1..30 degrees of freedom (standard tables).
_T = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_975(df: float) -> float:
    """Student's t 97.5 % quantile; past 30 degrees of freedom a Cornish-Fisher series
    (error under 0.001 there)."""
    if df < 1:
        return math.inf
    if df <= 30 and float(df).is_integer():
        return _T[int(df) - 1]
    if df < 30:  # Welch's df is fractional: interpolate in the table
        low = int(df)
        frac = df - low
        return _T[low - 1] * (1 - frac) + _T[low] * frac
    z = _Z
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.estimate:.3g} [{self.low:.3g}, {self.high:.3g}]"


def mean_interval(values: Sequence[float]) -> Interval:
    """The mean and its 95 % t interval (NaN bounds below two values)."""
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_975(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def wilson_interval(passed: int, n: int) -> Interval:
    """The pass rate and its 95 % Wilson score interval."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    p = passed / n
    z2 = _Z * _Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n)


def difference_interval(a: Sequence[float], b: Sequence[float]) -> Interval:
    """mean(a) - mean(b) with its 95 % Welch interval (NaN bounds when it cannot be had)."""
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        return Interval(math.nan, math.nan, math.nan, na + nb)
    ma, mb = math.fsum(a) / na, math.fsum(b) / nb
    if na < 2 or nb < 2:
        return Interval(ma - mb, math.nan, math.nan, na + nb)
    va = math.fsum((v - ma) ** 2 for v in a) / (na - 1) / na
    vb = math.fsum((v - mb) ** 2 for v in b) / (nb - 1) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(ma - mb, ma - mb, ma - mb, na + nb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    half = t_975(df) * se
    return Interval(ma - mb, ma - mb - half, ma - mb + half, na + nb)
