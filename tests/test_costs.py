"""Costs are honest: an estimate says it is one, an unknown cost is never $0, and a budget
refuses calls it cannot keep track of. Against a real loopback HTTP server."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal

import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.calls.progress import SweepProgress, spent_text
from workbench.calls.session import get_session
from workbench.core.money import format_money
from workbench.core.pricing import ESTIMATED, UnknownPriceWarning
from workbench.notebook.cellsweep import SweepDisplay
from workbench.notebook.display import footer

Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]  # the start_api fixture

UNPRICED = "costs-test-unpriced-model"  # no price in genai-prices, none set (a name of
# its own: the unknown-price warning is given once per name per process)


def answer(request: Received) -> Reply:
    """Chat and embeddings; a model named ``*-no-usage`` answers without ``usage``."""
    body = request.body
    if request.path.endswith("/embeddings"):
        reply = Reply(
            body={
                "object": "list",
                "model": body["model"],
                "data": [
                    {"object": "embedding", "index": i, "embedding": [1.0, 0.0]}
                    for i, _ in enumerate(body["input"])
                ],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            }
        )
    else:
        text = f"answer to {body['messages'][-1]['content']}"
        reply = chat_reply(text, model=body["model"], prompt_tokens=12_000, completion_tokens=3_000)
    if body["model"].endswith("-no-usage"):
        del reply.body["usage"]
    return reply


@pytest.fixture
def api(start_api: Start) -> LoopbackAPI:
    return start_api(answer)


@pytest.fixture(autouse=True)
def quiet_unknown_prices() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownPriceWarning)
        yield


# -- a cost from counted tokens is an estimate, and says so -------------------------------


def test_cost_from_counted_tokens_is_marked_as_an_estimate(api: LoopbackAPI) -> None:
    wb.set_price("gpt-4o-mini-no-usage", input_per_mtok=1, output_per_mtok=2)
    billed = wb.chat("billed", model="gpt-4o-mini")
    counted = wb.chat("counted", model="gpt-4o-mini-no-usage")
    rows = wb.runs()
    assert not rows.iloc[0].price_source.endswith(ESTIMATED)
    assert rows.iloc[0].price_source.startswith("genai-prices")
    assert rows.iloc[1].tokens_counted
    assert rows.iloc[1].price_source == "custom" + ESTIMATED
    assert counted.cost_usd is not None and counted.cost_usd > 0
    # It counts towards the spend (and so the budget), as the best figure there is.
    assert get_session().spent == pytest.approx(
        Decimal(str(billed.cost_usd)) + Decimal(str(counted.cost_usd))
    )
    assert "~$" in footer(counted) and "~$" not in footer(billed)


def test_embedding_cost_from_counted_tokens_is_marked_too(api: LoopbackAPI) -> None:
    wb.set_price("embed-no-usage", input_per_mtok=1, output_per_mtok=0)
    wb.embed(["a cat", "a dog"], model="embed-no-usage")
    row = wb.runs().iloc[-1]
    assert row.tokens_counted and row.cost_usd > 0
    assert row.price_source == "custom" + ESTIMATED


def test_sweep_rows_and_summary_mark_the_estimate(api: LoopbackAPI) -> None:
    wb.set_price("gpt-4o-mini-no-usage", input_per_mtok=1, output_per_mtok=2)
    s = wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, model="gpt-4o-mini-no-usage")
    s.run(progress=False)
    assert all(source == "custom" + ESTIMATED for source in s.df.price_source)
    assert " · ~$" in SweepDisplay(s).summary


# -- an unknown cost is "unknown", never $0 -----------------------------------------------


def test_spent_text_never_shows_an_unknown_cost_as_zero() -> None:
    assert spent_text(0.0012, 0) == "$0.0012"
    assert spent_text(0.0, 3) == "unknown"
    assert spent_text(0.0012, 1) == "$0.0012 + unknown"
    assert SweepProgress(total=2, done=2, unpriced=2).summary() == "2/2 done · unknown"


def test_sweep_of_an_unpriced_model_reports_its_spend_as_unknown(
    api: LoopbackAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    s = wb.sweep("Say {{w}}.", vars={"w": ["a", "b", "c"]}, model=UNPRICED)
    s.run(progress=True)
    assert s.df.cost_usd.isna().all()
    assert s.progress.summary().endswith("· unknown")
    assert "spent=unknown" in capsys.readouterr().err
    assert "cost unknown" in SweepDisplay(s).summary and "$" not in SweepDisplay(s).summary


def test_sweep_partly_unpriced_says_plus_unknown(api: LoopbackAPI) -> None:
    s = wb.sweep("Say hi.", grid={"model": ["gpt-4o-mini", UNPRICED]})
    s.run(progress=False)
    priced = float(s.df.cost_usd.sum())
    assert s.progress.summary().endswith(f"{format_money(priced)} + unknown")
    assert f" + unknown · sweep {s.sweep_id}" in SweepDisplay(s).summary


# -- a budget refuses what it cannot keep track of ----------------------------------------


def test_overspent_session_budget_refuses_unpriced_calls(api: LoopbackAPI) -> None:
    wb.configure(budget=0.001, allow_unpriced=True)
    # Estimated tiny ("hi", 1 token), billed $0.0033 by the server: now overspent.
    wb.chat("hi", model="gpt-4o-mini", max_tokens=1)
    with pytest.raises(wb.BudgetExceededError, match="session budget of .* is spent") as caught:
        wb.chat("again", model=UNPRICED)
    assert "\n" not in str(caught.value)
    with pytest.raises(wb.BudgetExceededError, match="is spent"):
        wb.embed("a text", model=UNPRICED)
    assert api.count() == 1 and len(wb.runs()) == 1


def test_budget_refuses_unpriced_calls_unless_allowed(api: LoopbackAPI) -> None:
    wb.configure(budget=1.0)
    with pytest.raises(wb.BudgetExceededError, match=f"no price is known for '{UNPRICED}'"):
        wb.chat("hi", model=UNPRICED)
    with pytest.raises(wb.BudgetExceededError, match="allow_unpriced=True"):
        wb.embed("a text", model=UNPRICED)
    with pytest.raises(wb.BudgetExceededError, match="no price is known"):
        wb.chat("hi", model=UNPRICED, budget=0.5)
    assert api.count() == 0 and len(wb.runs()) == 0
    wb.configure(allow_unpriced=True)
    assert wb.chat("hi", model=UNPRICED).cost_usd is None
    wb.embed("a text", model=UNPRICED)
    assert api.count() == 2
    assert get_session().unpriced_calls == 2


def test_per_call_budget_refuses_an_unpriced_model(api: LoopbackAPI) -> None:
    with pytest.raises(wb.BudgetExceededError, match="no price is known"):
        wb.chat("hi", model=UNPRICED, budget=0.5)
    assert api.count() == 0
    wb.chat("hi", model=UNPRICED)  # no budget: nothing to keep, the call goes
    assert api.count() == 1


def test_sweep_under_a_budget_refuses_unpriced_models_unless_allowed(api: LoopbackAPI) -> None:
    s = wb.sweep("Say hi.", grid={"model": ["gpt-4o-mini", UNPRICED]}, budget=1.0)
    with pytest.raises(wb.BudgetExceededError, match=f"no price is known for '{UNPRICED}',"):
        s.run(progress=False)
    assert api.count() == 0
    wb.configure(allow_unpriced=True)
    s.run(progress=False)
    assert api.count() == 2 and len(s.df) == 2


def test_allow_unpriced_must_be_a_bool() -> None:
    with pytest.raises(wb.InvalidInputError, match="allow_unpriced must be True or False"):
        wb.configure(allow_unpriced="yes")  # type: ignore[arg-type]


def test_session_status_shows_unknown_spend(api: LoopbackAPI) -> None:
    from workbench.notebook.magics import _status

    wb.chat("hi", model=UNPRICED)
    assert "unknown this session" in _status(get_session(), []).plain
    assert pd.isna(wb.runs().iloc[-1].cost_usd)


def test_overspent_session_refuses_a_sweep_of_unpriced_models(api: LoopbackAPI) -> None:
    wb.configure(budget=0.001, allow_unpriced=True)
    wb.chat("hi", model="gpt-4o-mini", max_tokens=1)  # billed $0.0033: overspent
    s = wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, model=UNPRICED)
    with pytest.raises(wb.BudgetExceededError, match="refused before sending anything: the"):
        s.run(progress=False)
    assert api.count() == 1


# -- one budget: every path refuses the same way (workbench/calls/budget.py) ------------


def test_score_under_a_budget_refuses_an_unpriced_judge(api: LoopbackAPI) -> None:
    # Issue 20: three unpriced judge calls went through wb.score(..., budget=0.5).
    for word in ("a", "b", "c"):
        wb.chat(f"Say {word}.", model="gpt-4o-mini", max_tokens=5, experiment="judged")
    sent = api.count()
    judge = wb.scorers.judge("Is it right?", model=UNPRICED)
    with pytest.raises(
        wb.BudgetExceededError,
        match=f"^Scoring refused before sending anything: no price is known for '{UNPRICED}'",
    ):
        wb.score("judged", judge, budget=0.5)
    assert api.count() == sent  # no judge call went out
    wb.configure(allow_unpriced=True)  # as for one call: allowed, the calls go
    wb.score("judged", judge, budget=0.5)
    assert api.count() == sent + 3


def test_a_sweep_refused_for_an_unpriced_judge_names_the_judge_model(api: LoopbackAPI) -> None:
    # Issue 20: the runs' model is priced, the judge's is not; the line read
    # "no price is known for , so the budget cannot be kept".
    s = wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, model="gpt-4o-mini", max_tokens=5,
                 budget=1.0, scorers=[wb.scorers.judge("Is it right?", model=UNPRICED)])
    with pytest.raises(wb.BudgetExceededError) as caught:
        s.run(progress=False)
    assert f"no price is known for '{UNPRICED}', so the budget cannot be kept" in str(
        caught.value
    )
    assert api.count() == 0


def test_every_refusal_before_sending_reads_the_same(api: LoopbackAPI) -> None:
    """One wording: ``<What> refused before sending anything: <reason and fix>``."""
    refusals = {
        "Call": lambda: wb.chat("hi", model="gpt-4o-mini", max_tokens=4000, budget=1e-9),
        "Sweep": lambda: wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, model="gpt-4o-mini",
                                  max_tokens=4000, budget=1e-9).run(progress=False),
        "Embedding": lambda: wb.embed("a text", model=UNPRICED),
    }
    wb.configure(budget=0.5)
    for what, refused in refusals.items():
        with pytest.raises(wb.BudgetExceededError) as caught:
            refused()
        message = str(caught.value)
        assert message.startswith(f"{what} refused before sending anything: "), message
        assert "\n" not in message
    assert api.count() == 0
