"""``wb.sample_size`` and ``wb.detectable_difference``: how many test cases a comparison
needs before anything is sent, and the smallest difference a given number can detect.

Paired proportions (two pass/fail scorers on the same cases) are McNemar's test written as
a one-sample test on each case's difference d in {-1, 0, 1}: under no difference its
variance is the share of discordant cases psi, under a difference delta it is
psi - delta**2 (Connor 1987, "Sample size for testing differences in proportions for the
paired-sample design", Biometrics 43(1):207-211); statsmodels' ``normal_power_het`` takes
those two spreads. Paired means use the one-sample t test on the differences
(``TTestPower``); unpaired comparisons use statsmodels' two-sample tools.
"""

from __future__ import annotations

import math
from typing import Any

from workbench.core.errors import InvalidInputError

__all__ = ["sample_size", "detectable_difference", "discordance"]


def discordance(baseline: float, candidate: float, correlation: float = 0.0) -> float:
    """The share of cases on which two pass/fail outcomes disagree, for pass rates
    ``baseline`` and ``candidate`` whose outcomes have this (phi) correlation. With 0
    (independent answers) it is the most cautious guess for positively related variants:
    two prompts on one model mostly pass and fail the same cases, so fewer disagree."""
    p1, p2 = baseline, candidate
    both = p1 * p2 + correlation * math.sqrt(p1 * (1 - p1) * p2 * (1 - p2))
    return max(0.0, p1 + p2 - 2 * both)


def _check(name: str, value: Any, low: float, high: float, *, open_low: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (low < value < high if open_low else low <= value < high):
        return float(value)
    raise InvalidInputError(f"{name} must be a number between {low} and {high}: {value!r}")


def _paired_proportion_power(difference: float, cases: float, baseline: float, alpha: float,
                             discordant: float | None, correlation: float) -> float:
    # deferred: keeps import workbench light (statsmodels.stats.power ~1.3 s)
    from statsmodels.stats.power import normal_power_het

    psi = discordant if discordant is not None else discordance(
        baseline, baseline + difference, correlation)
    delta = abs(difference)
    if psi <= delta**2:  # every discordant case goes one way: any n of 1 or more shows it
        return 1.0
    return float(normal_power_het(delta, cases, alpha, std_null=math.sqrt(psi),
                                  std_alternative=math.sqrt(psi - delta**2)))


def _power(difference: float, cases: float, *, baseline: float | None, sd: float | None,
           alpha: float, paired: bool, discordant: float | None, correlation: float) -> float:
    # deferred: keeps import workbench light (statsmodels.stats ~1.3 s)
    from statsmodels.stats import power as sm_power

    if baseline is None:
        assert sd is not None
        effect = abs(difference) / sd
        if paired:
            return float(sm_power.TTestPower().power(effect, cases, alpha))
        return float(sm_power.TTestIndPower().power(effect, cases, alpha))
    if paired:
        return _paired_proportion_power(difference, cases, baseline, alpha, discordant,
                                        correlation)
    # deferred: keeps import workbench light (statsmodels.stats.proportion ~1.3 s)
    from statsmodels.stats.proportion import power_proportions_2indep

    result = power_proportions_2indep(difference, baseline, cases, alpha=alpha)
    return float(result.power)


def _inputs(difference: float | None, baseline: float | None, sd: float | None, power: float,
            alpha: float) -> tuple[float | None, float]:
    _check("power", power, 0.0, 1.0)
    _check("alpha", alpha, 0.0, 1.0)
    if (baseline is None) == (sd is None):
        raise InvalidInputError(
            "give baseline=<pass rate> for pass/fail scores, or sd=<spread of the paired"
            " differences> for numeric scores (one of them)"
        )
    if baseline is not None:
        _check("baseline", baseline, 0.0, 1.0)
    if sd is not None:
        _check("sd", sd, 0.0, math.inf)
    if difference is not None:
        if baseline is not None:
            _check("baseline + difference", baseline + difference, 0.0, 1.0)
        if not isinstance(difference, (int, float)) or difference == 0:
            raise InvalidInputError(f"difference must be a non-zero number: {difference!r}")
    return baseline, float(power)


def sample_size(
    difference: float,
    baseline: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    paired: bool = True,
    *,
    sd: float | None = None,
    discordant: float | None = None,
    correlation: float = 0.0,
) -> int:
    """The number of test cases (per variant) needed to detect ``difference`` with
    ``power`` at two-sided level ``alpha``.

    Pass/fail scores: ``baseline`` is the baseline's pass rate (0.7), ``difference`` the
    change in it (0.05 = 5 points). Paired, the answer depends on how often the two
    disagree: give ``discordant`` (the share of cases where one passes and the other
    fails, e.g. from a pilot) or ``correlation``; by default the two are taken as
    independent, which asks for the most cases. Numeric scores: ``sd`` is the standard
    deviation of the per-case differences (paired) or of one side's scores (unpaired).
    """
    _inputs(difference, baseline, sd, power, alpha)
    if discordant is not None:
        _check("discordant", discordant, 0.0, 1.0)
    # deferred: keeps import workbench light (statsmodels.stats ~1.3 s)
    from statsmodels.stats import power as sm_power

    if baseline is None:
        assert sd is not None
        effect = abs(difference) / sd
        tool = sm_power.TTestPower() if paired else sm_power.TTestIndPower()
        n = float(tool.solve_power(effect_size=effect, power=power, alpha=alpha))
        return max(2, math.ceil(n - 1e-9))
    if not paired:
        # deferred: keeps import workbench light (statsmodels.stats.proportion ~1.3 s)
        from statsmodels.stats.proportion import samplesize_proportions_2indep_onetail

        n = float(samplesize_proportions_2indep_onetail(
            difference, baseline, power, alpha=alpha, alternative="two-sided"))
        return max(2, math.ceil(n - 1e-9))
    return _smallest_n(lambda n: _paired_proportion_power(
        difference, n, baseline, alpha, discordant, correlation), power)


def _smallest_n(power_of: Any, target: float) -> int:
    """The smallest whole number of cases whose power reaches ``target`` (power grows
    with n: doubling then bisecting)."""
    high = 2
    while power_of(high) < target:
        high *= 2
        if high > 10**9:
            raise InvalidInputError("no number of cases reaches that power")
    low = max(1, high // 2)
    while low < high:
        mid = (low + high) // 2
        if power_of(mid) >= target:
            high = mid
        else:
            low = mid + 1
    return max(2, high)


def detectable_difference(
    cases: int,
    baseline: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    paired: bool = True,
    *,
    sd: float | None = None,
    discordant: float | None = None,
    correlation: float = 0.0,
    repeats: int = 1,
) -> float:
    """The smallest improvement ``cases`` test cases detect with ``power`` at level
    ``alpha`` (the inverse of :func:`sample_size`; the same arguments). For pass rates it
    is capped by 1 - ``baseline``; ``nan`` when even the largest cannot be detected.

    ``repeats`` samples per case: averaging them lowers only the part of the spread that
    comes from sampling; taken here as if each repeat were a new case, so it is an
    optimistic bound (Miller 2024, "Adding Error Bars to Evals", section 4)."""
    if isinstance(cases, bool) or not isinstance(cases, int) or cases < 2:
        raise InvalidInputError(f"cases must be a whole number, 2 or more: {cases!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InvalidInputError(f"repeats must be a whole number, 1 or more: {repeats!r}")
    _inputs(None, baseline, sd, power, alpha)
    n = cases * repeats
    from scipy.optimize import brentq  # deferred: keeps import workbench light (~0.6 s)

    if baseline is None:
        assert sd is not None
        # deferred: keeps import workbench light (statsmodels.stats ~1.3 s)
        from statsmodels.stats import power as sm_power

        tool = sm_power.TTestPower() if paired else sm_power.TTestIndPower()
        return float(tool.solve_power(nobs=n, power=power, alpha=alpha)) * sd
    top = 1.0 - baseline - 1e-9

    def gap(d: float) -> float:
        return _power(d, n, baseline=baseline, sd=None, alpha=alpha, paired=paired,
                      discordant=discordant, correlation=correlation) - power

    if gap(top) < 0:
        return math.nan
    return float(brentq(gap, 1e-6, top, xtol=1e-7))
