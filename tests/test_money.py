"""One money format everywhere, and money never in Markdown (JupyterLab typesets "$...$")."""

from __future__ import annotations

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
