"""Anytime-valid confidence sequences for the mean of bounded observations (Howard,
Ramdas, McAuliffe & Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence
sequences", Annals of Statistics 49(2), Theorem 4: the empirical-Bernstein sequence).

Unlike a confidence interval, the sequence holds at every sample size at once: it may be
looked at after every wave of a sweep and the sweep stopped the moment it excludes zero,
and the chance that it ever misses the true mean stays at most alpha.

The boundaries are those of the authors' package ``confseq`` (its C++ header
``uniform_boundaries.h``), written here in scipy because ``confseq`` ships no wheel; the
tests check them against the reference values of confseq's own unit tests.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

__all__ = [
    "gamma_exponential_log_mixture",
    "gamma_exponential_mixture_bound",
    "poly_stitching_bound",
    "EmpiricalBernsteinCS",
]


def _best_rho(v_opt: float, alpha_opt: float) -> float:
    """The mixture's precision that makes the boundary tightest at intrinsic time
    ``v_opt`` (confseq's ``OneSidedNormalMixture::best_rho``)."""
    a = 2 * alpha_opt
    return v_opt / (2 * math.log(1 / a) + math.log(1 + 2 * math.log(1 / a)))


def gamma_exponential_log_mixture(s: float, v: float, v_opt: float, c: float,
                                  alpha_opt: float = 0.05) -> float:
    """The log of the gamma-exponential mixture supermartingale (Howard et al. 2021,
    Proposition 9) at sum ``s`` and intrinsic time ``v``, for scale ``c``."""
    from scipy.special import gammainc, gammaln  # deferred: keeps import workbench light (~0.4 s)

    rho = _best_rho(v_opt, alpha_opt)
    c2 = c * c
    rho_c2 = rho / c2
    leading = rho_c2 * math.log(rho_c2) - gammaln(rho_c2) - math.log(gammainc(rho_c2, rho_c2))
    cs_v = (c * s + v) / c2
    v_rho = (v + rho) / c2
    return float(leading + gammaln(v_rho) + math.log(gammainc(v_rho, cs_v + rho_c2))
                 - v_rho * math.log(cs_v + rho_c2) + cs_v)


def gamma_exponential_mixture_bound(v: float, alpha: float, v_opt: float, c: float,
                                    alpha_opt: float = 0.05) -> float:
    """The one-sided boundary u(v): P(S_t >= u(V_t) for some t) <= alpha."""
    from scipy.optimize import brentq  # deferred: keeps import workbench light (~0.6 s)

    threshold = math.log(1 / alpha)

    def excess(s: float) -> float:
        return gamma_exponential_log_mixture(s, v, v_opt, c, alpha_opt) - threshold

    high = max(v, 1e-9)
    for _ in range(60):
        if excess(high) > 0:
            break
        high *= 2
    return float(brentq(excess, 0.0, high, xtol=1e-10))


def poly_stitching_bound(v: float, alpha: float, v_min: float, c: float = 0.0,
                         s: float = 1.4, eta: float = 2.0) -> float:
    """The polynomial stitching boundary (Howard et al. 2021, Theorem 1, eq. (10)):
    closed form, a little wider than the mixture."""
    from scipy.special import zeta  # deferred: keeps import workbench light (scipy.special ~0.4 s)

    use_v = max(v, v_min)
    k1 = (eta**0.25 + eta**-0.25) / math.sqrt(2)
    k2 = (math.sqrt(eta) + 1) / 2
    ell = (s * math.log(math.log(eta * use_v / v_min))
           + math.log(float(zeta(s)) / math.log(eta) ** s) + math.log(1 / alpha))
    term = k2 * c * ell
    return math.sqrt(k1 * k1 * use_v * ell + term * term) + term


# Intrinsic time is rounded UP to a 1 % geometric grid before the boundary is solved:
# the boundary grows with v, so the rounded one is wider (still valid), and a run of
# thousands of updates solves it a few hundred times, not once per update.
_GRID = math.log(1.01)


@functools.lru_cache(maxsize=65536)
def _cached_bound(step: int, alpha: float, v_opt: float, c: float) -> float:
    return gamma_exponential_mixture_bound(math.exp(step * _GRID), alpha, v_opt, c, alpha)


def mixture_radius_sum(v: float, alpha: float, v_opt: float, c: float) -> float:
    """u(v) at the grid point at or above ``v`` (``v`` >= 1)."""
    step = math.ceil(math.log(max(v, 1.0)) / _GRID - 1e-12)
    return _cached_bound(step, alpha, v_opt, c)


@dataclass
class EmpiricalBernsteinCS:
    """A running two-sided (1 - alpha) confidence sequence for the mean of observations
    in [lo, hi] (Howard et al. 2021, Theorem 4, as confseq's ``confseq_eb``): centre the
    running mean, intrinsic time V_t = sum (x_i - predicted mean before x_i)^2, and the
    gamma-exponential mixture boundary of scale hi - lo at alpha / 2 each side.
    ``v_opt`` is the intrinsic time at which it is tightest (about n x the variance at
    the sample size where a decision is expected)."""

    lo: float = -1.0
    hi: float = 1.0
    alpha: float = 0.05
    v_opt: float = 30.0
    n: int = 0
    total: float = 0.0
    intrinsic_time: float = 0.0
    history: list[tuple[int, float, float]] = field(default_factory=list)

    def update(self, values: list[float] | tuple[float, ...]) -> tuple[float, float]:
        for x in values:
            if not self.lo <= x <= self.hi:
                raise ValueError(f"observation {x} outside [{self.lo}, {self.hi}]")
            predicted = self.total / self.n if self.n else 0.0
            predicted = min(self.hi, max(self.lo, predicted))
            self.intrinsic_time += (x - predicted) ** 2
            self.total += x
            self.n += 1
        low, high = self.interval
        self.history.append((self.n, low, high))
        return low, high

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        if self.n == 0:
            return self.lo, self.hi
        v = max(1.0, self.intrinsic_time)
        radius = mixture_radius_sum(v, self.alpha / 2, self.v_opt, self.hi - self.lo) / self.n
        return max(self.lo, self.mean - radius), min(self.hi, self.mean + radius)
