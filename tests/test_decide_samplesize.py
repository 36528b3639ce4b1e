"""wb.sample_size and wb.detectable_difference against textbook formulas written out here
(not the statsmodels calls the module makes), within one case."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

import workbench as wb
from workbench.decide.samplesize import discordance

Z = NormalDist().inv_cdf


def connor(p10: float, p01: float, power: float, alpha: float) -> float:
    """Connor (1987), Biometrics 43(1):207-211, eq. (3): McNemar's test sample size,
    n = (z_{a/2} sqrt(psi) + z_b sqrt(psi - delta^2))^2 / delta^2 with psi = p10 + p01
    and delta = p10 - p01."""
    psi, delta = p10 + p01, p10 - p01
    top = Z(1 - alpha / 2) * math.sqrt(psi) + Z(power) * math.sqrt(psi - delta**2)
    return top**2 / delta**2


def guenther(effect: float, power: float, alpha: float) -> float:
    """Guenther (1981), "Sample size formulas for normal theory t tests", The American
    Statistician 35(4):243-244: the one-sample (paired) t test needs about
    ((z_{a/2} + z_b) / d)^2 + z_{a/2}^2 / 2 cases."""
    za = Z(1 - alpha / 2)
    return ((za + Z(power)) / effect) ** 2 + za**2 / 2


def fleiss(p1: float, p2: float, power: float, alpha: float) -> float:
    """Fleiss, Levin & Paik, Statistical Methods for Rates and Proportions (3rd ed.),
    eq. (4.14) without continuity correction: two independent proportions, per group."""
    pbar = (p1 + p2) / 2
    top = Z(1 - alpha / 2) * math.sqrt(2 * pbar * (1 - pbar)) + Z(power) * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2))
    return top**2 / (p2 - p1) ** 2


# (difference, baseline, power, alpha): paired pass rates, outcomes independent.
PAIRED_PROPORTIONS = [
    (0.05, 0.70, 0.80, 0.05),
    (0.10, 0.70, 0.80, 0.05),
    (0.10, 0.50, 0.90, 0.05),
    (0.20, 0.60, 0.80, 0.05),
    (0.05, 0.90, 0.80, 0.01),
    (-0.10, 0.80, 0.80, 0.05),
    (0.15, 0.30, 0.95, 0.10),
]


@pytest.mark.parametrize("difference,baseline,power,alpha", PAIRED_PROPORTIONS)
def test_paired_proportions_agree_with_connor(difference, baseline, power, alpha):
    p2 = baseline + difference
    p10, p01 = p2 * (1 - baseline), baseline * (1 - p2)  # candidate-only, baseline-only
    expected = connor(p10, p01, power, alpha)
    got = wb.sample_size(difference, baseline, power, alpha, paired=True)
    assert abs(got - expected) <= 1, (got, expected)


@pytest.mark.parametrize("discordant", [0.1, 0.2, 0.35])
def test_paired_proportions_with_a_measured_discordance(discordant):
    delta = 0.05
    p10, p01 = (discordant + delta) / 2, (discordant - delta) / 2
    got = wb.sample_size(delta, 0.7, discordant=discordant)
    assert abs(got - connor(p10, p01, 0.8, 0.05)) <= 1


@pytest.mark.parametrize("effect,power,alpha", [
    (0.2, 0.8, 0.05), (0.5, 0.8, 0.05), (0.5, 0.9, 0.01), (0.8, 0.8, 0.05), (0.3, 0.95, 0.1),
])
def test_paired_means_agree_with_guenther(effect, power, alpha):
    got = wb.sample_size(effect * 2.0, sd=2.0, power=power, alpha=alpha)
    assert abs(got - guenther(effect, power, alpha)) <= 1


def test_paired_means_cohen_table():
    # Cohen (1988), Statistical Power Analysis, Table 2.4.1: d = 0.5, two-tailed
    # a = 0.05, power 0.80 needs n = 34 for the one-sample t test (33.4 rounded up).
    assert wb.sample_size(0.5, sd=1.0) == 34


@pytest.mark.parametrize("p1,p2", [(0.7, 0.8), (0.5, 0.6), (0.2, 0.35)])
def test_unpaired_proportions_agree_with_fleiss(p1, p2):
    got = wb.sample_size(p2 - p1, p1, paired=False)
    assert abs(got - fleiss(p1, p2, 0.8, 0.05)) <= 1


def test_pairing_needs_fewer_cases_when_answers_agree():
    independent = wb.sample_size(0.1, 0.7)
    related = wb.sample_size(0.1, 0.7, correlation=0.6)
    assert related < independent / 2
    assert discordance(0.7, 0.8, 0.0) == pytest.approx(0.7 * 0.2 + 0.8 * 0.3)


@pytest.mark.parametrize("difference,baseline", [(0.05, 0.7), (0.1, 0.5), (0.2, 0.6)])
def test_detectable_difference_inverts_sample_size(difference, baseline):
    n = wb.sample_size(difference, baseline)
    d = wb.detectable_difference(n, baseline)
    assert d <= difference + 1e-6
    assert wb.detectable_difference(n - 2, baseline) > d  # fewer cases, a bigger difference


def test_detectable_difference_of_means():
    d = wb.detectable_difference(34, sd=1.0)
    assert d == pytest.approx(0.5, abs=0.01)


def test_nothing_detectable_is_nan():
    assert math.isnan(wb.detectable_difference(2, 0.98))


@pytest.mark.parametrize("kwargs,word", [
    ({"difference": 0.1}, "baseline="),
    ({"difference": 0.1, "baseline": 0.7, "sd": 1.0}, "baseline="),
    ({"difference": 0.4, "baseline": 0.7}, "baseline + difference"),
    ({"difference": 0.1, "baseline": 0.7, "power": 1.5}, "power"),
    ({"difference": 0, "baseline": 0.7}, "difference"),
])
def test_bad_input_names_the_fix(kwargs, word):
    with pytest.raises(wb.InvalidInputError, match=word.replace("+", r"\+")):
        wb.sample_size(**kwargs)
