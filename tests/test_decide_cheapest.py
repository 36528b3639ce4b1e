"""wb.cheapest and wb.cascade on a sweep whose true pass rates and token counts are set
by a loopback server; both read stored runs only, so the server sees 0 requests.

Prices, from OpenAI's pricing page (platform.openai.com/docs/pricing), per 1M tokens:
gpt-4o-mini input $0.15, cached input $0.075, output $0.60; gpt-4o input $2.50, cached
input $1.25, output $10.00; the Batch API "Save 50% on inputs and outputs".
"""

from __future__ import annotations

from typing import Any

import pytest
from decide_server import PassRateServer, draw

import workbench as wb

CASES = 120
MINI, FOUR_O = "gpt-4o-mini", "gpt-4o"
# (prompt, completion, cached) tokens of every answer, per model.
USAGE = {MINI: (1000, 100, 800), FOUR_O: (1000, 100, 800)}
PER_MTOK = {MINI: (0.15, 0.075, 0.60), FOUR_O: (2.50, 1.25, 10.00)}


def per_1k(model: str, *, cached: bool = False, batch: bool = False) -> float:
    """Dollars per 1,000 calls, by hand from the price list above."""
    prompt, completion, cached_tokens = USAGE[model]
    p_in, p_cached, p_out = PER_MTOK[model]
    hit = cached_tokens if cached else 0
    dollars = ((prompt - hit) * p_in + hit * p_cached + completion * p_out) / 1e6
    return dollars * 1000 * (0.5 if batch else 1)


def run_sweep(start_api: Any, rates: dict[str, float], **server: Any) -> tuple[Any, Any]:
    api = start_api(PassRateServer({(m, None): r for m, r in rates.items()}, usage=USAGE,
                                   **server))
    s = wb.sweep("Question {{i}}", vars={"i": list(range(CASES))},
                 grid={"model": list(rates)}, max_tokens=5,
                 scorers=[wb.scorers.contains("yes")])
    s.run(progress=False)
    assert api.count("/chat/completions") == CASES * len(rates)
    api.received.clear()
    return s, api


def test_cheapest_takes_the_cheap_model_when_it_clears_the_bar(start_api: Any) -> None:
    s, api = run_sweep(start_api, {MINI: 0.9, FOUR_O: 0.95})
    result = wb.cheapest(s, scorer="contains", min_score=0.75)
    assert api.count() == 0
    assert result.best == f"model={MINI!r}"
    row = result.df.set_index("variant").loc[f"model={MINI!r}"]
    assert row["per_1k_list"] == pytest.approx(per_1k(MINI))
    assert row["per_1k_cached"] == pytest.approx(per_1k(MINI, cached=True))
    assert row["per_1k_batch"] == pytest.approx(per_1k(MINI, batch=True))
    assert "Cheapest that passes" in str(result)


def test_cheapest_refuses_a_model_whose_lower_bound_is_short(start_api: Any) -> None:
    s, api = run_sweep(start_api, {MINI: 0.8, FOUR_O: 0.97})
    # 0.8 observed over 120 cases has a 95 % lower bound near 0.74: not >= 0.78.
    result = wb.cheapest(s, scorer="contains", min_score=0.78)
    assert api.count() == 0
    assert result.best == f"model={FOUR_O!r}"
    assert not result.df.set_index("variant").loc[f"model={MINI!r}", "passes"]
    none = wb.cheapest(s, scorer="contains", min_score=0.99)
    assert none.best is None and "No variant" in str(none)


def test_cascade_escalates_unsure_answers_and_costs_less(start_api: Any) -> None:
    s, api = run_sweep(start_api, {MINI: 0.7, FOUR_O: 0.9}, unsure={MINI: 0.3})
    result = wb.cascade(s, order=[{"model": MINI}, {"model": FOUR_O}],
                        accept=wb.scorers.is_json(), scorer="contains")
    assert api.count() == 0
    # The truth, from the server's own draws: a sure cheap answer is kept, an unsure
    # one ("maybe", not JSON) goes to gpt-4o.
    unsure = [draw("unsure", MINI, str(i)) < 0.3 for i in range(CASES)]
    passed = [draw(str(i)) < (0.9 if u else 0.7) for i, u in enumerate(unsure)]
    assert result.escalated == pytest.approx(sum(unsure) / CASES)
    assert result.score == pytest.approx(sum(passed) / CASES)
    assert result.strong_score == pytest.approx(
        sum(draw(str(i)) < 0.9 for i in range(CASES)) / CASES)
    share = sum(unsure) / CASES
    assert result.per_1k == pytest.approx(per_1k(MINI) + share * per_1k(FOUR_O))
    assert result.strong_per_1k == pytest.approx(per_1k(FOUR_O))
    saving, low, high = result.saving
    assert saving == pytest.approx(1 - result.per_1k / result.strong_per_1k)
    assert low <= saving <= high
    d, d_low, d_high = result.score_difference
    assert d_low <= d <= d_high
    assert d < 0  # gpt-4o passes every case the cheap model passes: never better here
    assert "escalated" in str(result)


def test_cascade_with_a_stored_scorer_as_the_test(start_api: Any) -> None:
    s, api = run_sweep(start_api, {MINI: 0.6, FOUR_O: 0.9})
    result = wb.cascade(s, order=[{"model": MINI}, {"model": FOUR_O}], accept="contains",
                        scorer="contains", price="batch")
    assert api.count() == 0
    # Escalating every failure to a stronger model that passes a superset of cases.
    assert result.score == pytest.approx(result.strong_score)
    assert result.escalated == pytest.approx(
        sum(draw(str(i)) >= 0.6 for i in range(CASES)) / CASES)


def test_bad_order_names_the_fix(start_api: Any) -> None:
    s, _ = run_sweep(start_api, {MINI: 0.6, FOUR_O: 0.9})
    with pytest.raises(wb.InvalidInputError, match="two variants"):
        wb.cascade(s, order=[{"model": MINI}], accept="contains", scorer="contains")
    with pytest.raises(wb.InvalidInputError, match="names no variant"):
        wb.cascade(s, order=[{"model": "x"}, {"model": FOUR_O}], accept="contains",
                   scorer="contains")
