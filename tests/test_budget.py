"""The one budget (workbench/calls/budget): every path that sends calls (a single call, a
sweep, a Batch API submission, an embedding, a judge's scoring) is estimated and refused
by it, before sending anything, in one wording. Against a real loopback HTTP server that
counts what it receives (nothing, here)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.calls.budget import Estimate
from workbench.calls.budget.gate import SHRINK
from workbench.calls.session import get_session
from workbench.core.pricing import UnknownPriceWarning


def answer(request: Received) -> Reply:
    body = request.body
    if request.path.endswith("/embeddings"):
        data = [{"object": "embedding", "index": i, "embedding": [1.0, 0.0]}
                for i, _ in enumerate(body["input"])]
        return Reply(body={"object": "list", "model": body["model"], "data": data,
                           "usage": {"prompt_tokens": 4, "total_tokens": 4}})
    return chat_reply("Paris", model=body["model"], prompt_tokens=10, completion_tokens=5)


@pytest.fixture
def api(start_api: Callable[[Callable[[Received], Reply]], LoopbackAPI]) -> LoopbackAPI:
    return start_api(answer)


@pytest.fixture(autouse=True)
def quiet_unknown_prices() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownPriceWarning)
        yield


TINY = 1e-9  # USD: below the price of any call to gpt-4o-mini


def long_sweep(**kwargs: Any) -> Any:
    return wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, model="gpt-4o-mini",
                    max_tokens=4000, **kwargs)


def judged_runs() -> None:
    """Two stored runs to judge (paid for before any budget is set)."""
    for word in ("a", "b"):
        wb.chat(f"Say {word}.", model="gpt-4o-mini", max_tokens=5, experiment="judged")


JUDGE = {"model": "gpt-4o-mini", "max_tokens": 4000}

# Each path, refused by its own budget= (own=True) or by what the session has left.
PATHS: dict[str, tuple[str, Callable[[bool], Any]]] = {
    "single call": ("Call", lambda own: wb.chat(
        "hi", model="gpt-4o-mini", max_tokens=4000, budget=TINY if own else None)),
    "sweep": ("Sweep", lambda own: long_sweep(
        budget=TINY if own else None).run(progress=False)),
    "batch": ("Batch", lambda own: long_sweep(
        budget=TINY if own else None).run(mode="batch", progress=False)),
    "embedding": ("Embedding", lambda own: wb.embed(
        ["a text"] * 50, model="text-embedding-3-small")),
    "judge": ("Scoring", lambda own: wb.score(
        "judged", wb.scorers.judge("Is it right?", **JUDGE), budget=TINY if own else None)),
}


def shape(what: str, message: str) -> str:
    """The message with what varies by nature taken out: the kind of work, amounts, the
    estimate's text, the batch price's mention and what can be lowered."""
    assert message.startswith(f"{what} refused before sending anything: "), message
    out = message.removeprefix(what).replace(" at the batch price", "")
    out = re.sub(r"Estimate: .*?\. (?=[A-Z])", "Estimate: E. ", out)
    out = out.replace(SHRINK[what][:1].upper() + SHRINK[what][1:], "Lower it")
    return re.sub(r"\$\d[\d,]*(\.\d+)?", "$N", out)


@pytest.mark.parametrize("own", [True, False], ids=["own budget", "session budget"])
@pytest.mark.parametrize("path", list(PATHS))
def test_every_path_is_refused_by_the_one_budget_in_one_wording(
    api: LoopbackAPI, path: str, own: bool
) -> None:
    what, send = PATHS[path]
    if what == "Embedding" and own:
        pytest.skip("wb.embed has no budget= of its own: the session's keeps it")
    if what == "Scoring":
        judged_runs()
    sent = api.count()
    # What the session has left: a billionth of a dollar (spent what the runs cost).
    wb.configure(budget=(Decimal(1) if own else get_session().spent + Decimal(str(TINY))))
    with pytest.raises(wb.BudgetExceededError) as caught:
        send(own)
    message = str(caught.value)
    assert api.count() == sent  # nothing was sent
    assert "\n" not in message
    assert (" at the batch price " in message) == (what == "Batch")
    whose = "the budget of $N" if own else "the $N left of the session budget"
    fix = "budget=..." if own else "wb.configure(budget=...)"
    assert shape(what, message) == (
        f" refused before sending anything: the expected cost $N is above {whose}."
        f" Estimate: E. Lower it, or raise {fix}"
    )


def test_a_judged_sweeps_estimate_counts_judge_calls_apart_from_runs(api: LoopbackAPI) -> None:
    # Issue 22: the estimate said "64 runs" while the progress bar counted 32.
    s = long_sweep(scorers=[wb.scorers.judge("Is it right?", **JUDGE)])
    estimate = s.estimate()
    assert (estimate.runs, estimate.judge_calls) == (2, 2)
    assert str(estimate).startswith("2 runs + 2 judge calls · ")
    assert s.estimate(remaining=True).runs == 2
    assert api.count() == 0


def test_an_estimate_of_free_calls_says_dollars_once() -> None:
    # Issue 22: "$0 expected ($0 to $0)" on every local estimate.
    zero = Decimal(0)
    free = Estimate(3, 30, 12, 24, zero, zero, zero)
    assert str(free) == "3 runs · 30 prompt tokens · ~12 completion tokens (at most 24) · $0"
    priced = Estimate(1, 10, 4, 8, Decimal("0.0003"), Decimal("0.00042"), Decimal("0.0009"))
    assert str(priced).endswith(" · $0.00042 expected ($0.0003 to $0.0009)")
    judged = Estimate(0, 1_200, 40, 40, zero, zero, zero, judge_calls=1)
    assert str(judged).startswith("1 judge call · 1,200 prompt tokens")
    assert (free + judged).calls() == "3 runs + 1 judge call"


def test_the_session_budget_estimates_checks_and_charges(api: LoopbackAPI) -> None:
    budget = get_session().spend
    estimate = budget.estimate_messages([{"role": "user", "content": "hi"}],
                                        model="gpt-4o-mini", provider=_openai(), max_tokens=10)
    assert estimate.runs == 1 and estimate.cost_expected is not None
    budget.limit = estimate.cost_expected / 2
    with pytest.raises(wb.BudgetExceededError, match="^Call refused before sending"):
        wb.chat("hi", model="gpt-4o-mini", max_tokens=10)
    budget.limit = None
    response = wb.chat("hi", model="gpt-4o-mini", max_tokens=10)
    assert budget.spent == Decimal(str(response.cost_usd)) > 0


def _openai() -> Any:
    provider, _ = get_session().resolve("gpt-4o-mini", None)
    return provider


def test_an_embeddings_estimate_speaks_of_no_completion_tokens() -> None:
    embedding = Estimate(1, 41, 0, 0, Decimal("0.0000008"), Decimal("0.0000008"),
                         Decimal("0.0000008"))
    assert str(embedding) == "1 run · 41 prompt tokens · $0.0000008"


def test_only_the_budget_estimates_and_refuses() -> None:
    """Every path asks the one budget (calls/budget) for its estimate and its refusal:
    no other module words a budget refusal or prices calls before sending them."""
    import ast
    from pathlib import Path

    package = Path(wb.__file__).parent
    home = package / "calls" / "budget"
    owned = {"refuse_over_budget", "refused", "estimate_messages", "estimate_prompt_tokens",
             "estimate_embedding", "BudgetExceededError"}
    elsewhere = []
    for path in package.rglob("*.py"):
        if home in path.parents or path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                # session.spend.estimate_messages(...) is the budget's own method.
                via_budget = isinstance(node.func, ast.Attribute) and ast.unparse(
                    node.func.value).endswith("spend")
                if name in owned and not via_budget:
                    elsewhere.append(f"{path.relative_to(package)}:{node.lineno} {name}")
    assert elsewhere == []
