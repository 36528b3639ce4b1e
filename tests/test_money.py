"""One money format everywhere, and money never in Markdown (JupyterLab typesets "$...$")."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from workbench.calls.budget import Estimate
from workbench.calls.progress import SweepProgress
from workbench.calls.results import ChatResponse
from workbench.core.money import format_money, money_html
from workbench.core.pricing import ESTIMATED
from workbench.core.record import RunRecord
from workbench.notebook.display import Note, format_cost


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0, "$0"),
        (0.00042, "$0.00042"),
        (0.000423456, "$0.00042"),
        (0.0012, "$0.0012"),
        (0.01, "$0.01"),
        (0.5, "$0.50"),
        (1.234, "$1.23"),
        (1234.5, "$1,234.50"),
        (Decimal("0.000000123"), "$0.00000012"),
        (None, "unknown"),
        (float("nan"), "unknown"),
    ],
)
def test_small_amounts_keep_two_significant_digits(amount: float | None, text: str) -> None:
    assert format_money(amount) == text


def test_an_estimated_amount_is_marked() -> None:
    assert format_money(0.0012, estimated=True) == "~$0.0012"
    assert format_cost(None) == "cost unknown"


def test_the_sweep_paths_and_the_footer_agree() -> None:
    # Before: "$0.000000" in the progress line while the footer said "$0".
    assert SweepProgress(total=1, done=1, spent_usd=0.0).summary() == "1/1 done · $0"
    assert format_cost(0.0) == "$0"
    estimate = Estimate(2, 10, 4, 8, Decimal("0.0003"), Decimal("0.00042"), Decimal("0.0009"))
    assert str(estimate).endswith("$0.00042 expected ($0.0003 to $0.0009)")


def test_money_is_html_never_markdown() -> None:
    estimate = Estimate(2, 10, 4, 8, Decimal("0.0003"), Decimal("0.00042"), Decimal("0.0009"))
    assert not hasattr(estimate, "_repr_markdown_")
    assert 'class="tex2jax_ignore mathjax_ignore"' in estimate._repr_html_()
    note = Note("spent $1", html=money_html("spent $1 of $2"))
    bundle = note._repr_mimebundle_()
    assert "text/markdown" not in bundle and "$1 of $2" in bundle["text/html"]
    assert "text/markdown" in Note("plain words")._repr_mimebundle_()


@pytest.mark.parametrize(
    ("cost", "source", "text"),
    [(0.0, "local", "$0"), (0.00042, "genai-prices", "$0.00042"),
     (0.0012, f"genai-prices{ESTIMATED}", "~$0.0012"), (None, None, "unknown")],
)
def test_a_responses_cost_reads_as_money(cost: float | None, source: str | None,
                                         text: str) -> None:
    # Issue 22: the quickstart printed f"${answer.cost_usd}", "$0.0" on the local model.
    record = RunRecord(kind="chat", provider="local", model="m", cost_usd=cost,
                       price_source=source)
    assert ChatResponse(record=record).cost == text


def test_the_decide_views_keep_their_dollars_out_of_maths() -> None:
    # Seen in decide.ipynb: the cascade's "cost $0 vs $0 per 1,000 calls" showed as
    # "0𝑣𝑠0", JupyterLab typesetting the HTML output's "$0 vs $" as maths.
    import pandas as pd

    from workbench.decide.cascade import Cascade
    from workbench.decide.cheapest import Cheapest
    from workbench.decide.sequential import Decision, VariantOutcome

    nan = float("nan")
    cascade = Cascade(order=["a", "b"], scorer="contains", price="list", score=0.2,
                      strong_score=0.1, score_difference=(0.1, 0.0, 0.2), per_1k=0.0,
                      strong_per_1k=0.0, saving=(nan, nan, nan), escalated=0.8,
                      confidence=0.95, df=pd.DataFrame())
    cheapest = Cheapest(scorer="contains", min_score=0.05, confidence=0.95, price="list",
                        best="a", df=pd.DataFrame([{
                            "variant": "a", "mean": 0.2, "lower_bound": 0.1, "passes": True,
                            "per_1k_list": 0.0, "per_1k_cached": 0.0, "per_1k_batch": 0.0}]))
    decision = Decision(baseline="a", scorer="contains", alpha=0.05, margin=None,
                        variants=[VariantOutcome("b", "undecided", 30, -0.03, -0.4, 0.3)],
                        calls_planned=60, calls_made=60, dollars_not_spent=0.0, waves=3)
    for view in (cascade, cheapest, decision):
        page = view._repr_html_()
        assert "$0" in page
        assert re.match(r"<div class=[\"']tex2jax_ignore mathjax_ignore[\"']", page), page[:80]
