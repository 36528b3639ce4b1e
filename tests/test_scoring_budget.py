"""A sweep's own budget counts its judge's calls while it runs (real HTTP on loopback,
a priced model, so each call's cost is known)."""

from __future__ import annotations

from typing import Any

import pytest
from loopback import Received, Reply, chat_reply

import workbench as wb
from workbench.calls.budget.charge import SweepSpend
from workbench.core.errors import BudgetExceededError

S = wb.scorers


def costly_judge(request: Received) -> Reply:
    """Answers cost almost nothing; each judge verdict costs $0.12 (200,000 output tokens
    of gpt-4o-mini), far above what its max_tokens led the estimate to expect."""
    body = request.body
    if "response_format" in body:
        return chat_reply('{"score": 5, "reason": "fine"}', model=body["model"],
                          prompt_tokens=80, completion_tokens=200_000)
    return chat_reply(f"About {body['messages'][-1]['content']}", model=body["model"],
                      prompt_tokens=20, completion_tokens=5)


def judges(api: Any) -> int:
    return sum(1 for r in api.received if "response_format" in (r.body or {}))


def city_sweep(budget: float) -> Any:
    return wb.sweep("{{city}}", vars={"city": ["Paris", "Rome", "Oslo", "Lima", "Baku", "Riga"]},
                    model="gpt-4o-mini", max_tokens=10, experiment="caps", concurrency=1,
                    budget=budget, scorers=[S.contains("about"),
                                            S.judge("Is it right?", model="gpt-4o-mini")])


def test_a_sweep_whose_judge_calls_overspend_its_budget_stops(start_api: Any) -> None:
    api = start_api(costly_judge)
    s = city_sweep(budget=0.05)
    assert s.estimate().cost_expected < 0.05  # so the refusal before sending lets it go
    with pytest.raises(
        BudgetExceededError,
        match=r"^Sweep stopped: it has spent \$0\.12 \(runs .* \+ scorers' model calls "
        r"\$0\.12\), above its budget of \$0\.05; the runs and scores so far are kept, "
        "run the sweep again with a larger budget to finish the rest",
    ):
        s.run(progress=False)
    # The judge's calls go one at a time: after the first, the sweep is over its budget.
    assert judges(api) == 1
    judged = wb.scores(scorer="judge")
    paid = judged[judged.value.notna()].reset_index(drop=True)
    assert paid.value.tolist() == [5.0]
    assert paid.judge_run_id[0] in set(wb.runs(experiment="caps:judge").run_id)
    # The runs whose judge the budget stopped are stored as failed, saying why.
    unsent = judged[judged.value.isna()]
    assert all(r.startswith("budget: Sweep stopped") for r in unsent.reason)
    assert (s.df.status == "ok").all() and len(s.df) >= 1  # the runs answered are kept

    # Run again with room for the rest: nothing answered or judged is paid for twice.
    done = city_sweep(budget=1.0).run(progress=False)
    assert len(done) == 6 and done["score:judge"].tolist() == [5.0] * 6
    assert judges(api) == 6
    assert api.count("/chat/completions") == 6 + 6  # six answers, six verdicts


def test_a_judge_under_the_budget_lets_the_sweep_finish(start_api: Any) -> None:
    api = start_api(costly_judge)
    df = city_sweep(budget=1.0).run(progress=False)
    assert df["score:judge"].tolist() == [5.0] * 6 and judges(api) == 6


def test_the_sweep_spend_counts_both_sides_and_stops_past_its_budget() -> None:
    from decimal import Decimal

    spend = SweepSpend(Decimal("0.10"))
    spend.add(0.04)
    spend.add(None)  # unknown cost: nothing to add
    spend.add(0.06, scoring=True)
    spend.check()  # exactly at the budget: the next call may go
    assert spend.total == Decimal("0.10")
    spend.add(0.01, scoring=True)
    with pytest.raises(BudgetExceededError, match=r"runs \$0\.04 \+ scorers' model calls"):
        spend.check()
    SweepSpend(None).check()  # no budget: never stops
