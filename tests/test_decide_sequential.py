"""Sequential sweeps: the confidence sequence against confseq's reference values, its
error rate by simulation (no server), and s.run(until="decided") on a loopback server."""

from __future__ import annotations

from typing import Any

import pytest
from decide_server import PassRateServer

import workbench as wb
from workbench.decide.confidence_sequence import (
    EmpiricalBernsteinCS,
    gamma_exponential_log_mixture,
    gamma_exponential_mixture_bound,
    poly_stitching_bound,
)
from workbench.decide.sequential import SequentialTest, simulate


def test_boundaries_match_confseq_reference_values() -> None:
    # confseq (github.com/gostevehoward/confseq), src/confseq/uniform_boundaries_unittest.cpp,
    # with ALPHA = ALPHA_OPT = 0.05 and V_OPT = 100:
    #   gamma_exponential_log_mixture(10, 100, V_OPT, 2) == -0.2490165 (1e-5)
    #   gamma_exponential_mixture_bound(100, ALPHA, V_OPT, 2) == 33.02017 (1e-5)
    #   poly_stitching_bound(100, ALPHA, 10, 3) == 64.48755 (1e-5)
    #   poly_stitching_bound(100, ALPHA, 10, -1) == 28.99389 (1e-5)
    assert gamma_exponential_log_mixture(10, 100, 100, 2) == pytest.approx(-0.2490165, abs=1e-5)
    assert gamma_exponential_mixture_bound(100, 0.05, 100, 2) == pytest.approx(33.02017, abs=1e-5)
    assert poly_stitching_bound(100, 0.05, 10, 3) == pytest.approx(64.48755, abs=1e-5)
    assert poly_stitching_bound(100, 0.05, 10, -1) == pytest.approx(28.99389, abs=1e-5)


def test_the_sequence_is_confseq_eb_on_a_fixed_series() -> None:
    # confseq's confseq_eb: centre = running mean, v = max(1, sum (x_i - previous mean)^2)
    # with 0 before the first, radius = gamma_exponential_mixture_bound(v, alpha / 2,
    # v_opt, c = hi - lo, alpha_opt = alpha / 2) / t. Rebuilt here by hand for 120 values.
    xs = [1, 0, 1, 1, -1, 0, 1, 1, 0, 1, 1, 0] * 10
    cs = EmpiricalBernsteinCS(-1.0, 1.0, 0.05, 10.0)
    low, high = cs.update([float(x) for x in xs])
    previous, v = 0.0, 0.0
    for t, x in enumerate(xs):
        v += (x - previous) ** 2
        previous = sum(xs[: t + 1]) / (t + 1)
    radius = gamma_exponential_mixture_bound(max(1.0, v), 0.025, 10.0, 2.0, 0.025) / len(xs)
    mean = sum(xs) / len(xs)
    assert 0 < radius < 0.5  # inside [-1, 1]: no clipping to compare
    # The module rounds v up to a 1 % grid: its radius is at most ~1 % wider, never narrower.
    assert mean - radius - 0.01 <= low <= mean - radius + 1e-12
    assert mean + radius - 1e-12 <= high <= mean + radius + 0.01


def test_no_true_difference_declares_a_winner_in_at_most_alpha_of_1000_runs() -> None:
    result = simulate(0.6, [0.6], cases=600, wave=30, runs=1000, alpha=0.05, seed=1)
    print(f"no true difference: {result}")  # the figure for bench/RESULTS.md
    assert result["runs"] == 1000
    assert result["better"] + result["worse"] <= 0.05
    assert result["better"] <= 0.05


def test_three_equal_variants_keep_the_family_error_below_alpha() -> None:
    result = simulate(0.5, [0.5, 0.5, 0.5], cases=300, wave=20, runs=1000, alpha=0.1, seed=2)
    assert result["better"] + result["worse"] <= 0.1


def test_a_real_difference_is_found_with_fewer_calls() -> None:
    result = simulate(0.6, [0.8], cases=600, wave=30, runs=200, seed=3)
    assert result["better"] >= 0.95
    assert result["share_of_calls"] <= 0.4


def test_futile_when_the_margin_is_out_of_reach() -> None:
    test = SequentialTest(["v"], alpha=0.05, margin=0.3)
    for _ in range(20):
        if test.update("v", [0.0] * 10) != "undecided":
            break
    assert test.states["v"] == "futile"


def sweep_on(start_api: Any, rates: dict[str, float], cases: int, **kwargs: Any) -> Any:
    api = start_api(PassRateServer({("gpt-4o-mini", s): r for s, r in rates.items()},
                                   independent=True))
    s = wb.sweep("Question {{i}}", vars={"i": list(range(cases))},
                 grid={"system": list(rates)}, model="gpt-4o-mini", max_tokens=5, **kwargs)
    return s, api


def test_run_until_decided_stops_early_and_says_so(start_api: Any) -> None:
    s, api = sweep_on(start_api, {"Be brief.": 0.3, "Think first.": 0.9}, 300)
    df = s.run(until="decided", baseline={"system": "Be brief."},
               scorer=wb.scorers.contains("yes"), alpha=0.05, progress=False)
    decision = s.decision
    assert decision.better == ["system='Think first.'"]
    made = api.count("/chat/completions")
    assert made == decision.calls_made < 0.5 * decision.calls_planned == 300
    assert decision.calls_not_made == 600 - made
    assert decision.dollars_not_spent is not None and decision.dollars_not_spent > 0
    assert len(df) == made  # s.df has the rows sent
    assert "not needed" in str(decision) and "not needed" in s.progress.message
    # Run again: the same waves, answered from the table, and the same decision.
    api.received.clear()
    s.run(until="decided", baseline={"system": "Be brief."},
          scorer=wb.scorers.contains("yes"), progress=False)
    assert api.count("/chat/completions") == 0
    assert s.decision.better == decision.better
    assert s.decision.calls_made == decision.calls_made


def test_run_until_decided_uses_the_sweeps_scorer_by_name(start_api: Any) -> None:
    s, api = sweep_on(start_api, {"a": 0.5, "b": 0.5}, 40,
                      scorers=[wb.scorers.contains("yes")])
    s.run(until="decided", baseline={"system": "a"}, scorer="contains", wave=10,
          progress=False)
    assert s.decision.better == []
    assert s.decision.variants[0].state == "undecided"
    assert api.count("/chat/completions") == 80  # undecided: every case was sent


def test_a_budget_is_kept_across_waves(start_api: Any) -> None:
    s, api = sweep_on(start_api, {"a": 0.5, "b": 0.5}, 100, budget=0.0001)
    with pytest.raises(wb.BudgetExceededError):
        s.run(until="decided", baseline={"system": "a"}, scorer=wb.scorers.contains("yes"),
              wave=10, progress=False)
    assert api.count("/chat/completions") < 200


@pytest.mark.parametrize("kwargs,word", [
    ({"baseline": {"system": "z"}, "scorer": "contains"}, "names no variant"),
    ({"baseline": {"system": "a"}, "scorer": "nope"}, "built-in"),
    ({"baseline": {"system": "a"}, "scorer": "contains", "alpha": 2.0}, "alpha"),
    ({"baseline": {"system": "a"}, "scorer": "contains", "until": "done"}, "until"),
])
def test_bad_input_names_the_fix(start_api: Any, kwargs: dict[str, Any], word: str) -> None:
    s, api = sweep_on(start_api, {"a": 0.5, "b": 0.5}, 5)
    with pytest.raises(wb.InvalidInputError, match=word):
        s.run(progress=False, **{"until": "decided", **kwargs})
    assert api.count() == 0
