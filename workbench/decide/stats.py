"""95 % confidence intervals for score means and pass rates, and for their difference.

Means use Student's t (Welch for a difference); pass rates use Wilson's interval, which
stays inside [0, 1] and does not collapse to a point at 0/n or n/n. The quantiles come
from scipy.stats (imported on first use: it costs ~0.3 s, and ``import workbench`` stays
light).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Interval", "mean_interval", "wilson_interval", "difference_interval", "t_975"]


@lru_cache(maxsize=1)
def _z_975() -> float:
    from scipy.stats import norm  # deferred: keeps import workbench light (scipy.stats ~0.9 s)

    return float(norm.ppf(0.975))


@lru_cache(maxsize=256)
def t_975(df: float) -> float:
    """Student's t 97.5 % quantile for ``df`` degrees of freedom (fractional for Welch);
    infinite below one degree of freedom."""
    if not df >= 1:
        return math.inf
    from scipy.stats import t  # deferred: keeps import workbench light (scipy.stats ~0.9 s)

    return float(t.ppf(0.975, df))


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
    z = _z_975()
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
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
