"""Scoring a ``%%chat --score`` cell's answer within the cell's ``--budget``: the judge's
calls are part of what the cell spends, as they are of a sweep's.

Before anything is sent, the answer's and the judge's expected cost must fit the budget.
Once the answer is paid for, the judge gets what is left of it; a judge that no longer
fits is not asked, and the answer (paid for) is shown all the same, with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from workbench.calls.budget.estimate import Estimate
from workbench.core.errors import BudgetExceededError
from workbench.core.money import format_money
from workbench.scoring.base import Scorer
from workbench.scoring.calls import ModelCalls
from workbench.scoring.engine import score_within
from workbench.scoring.live import compact, estimate_planned

if TYPE_CHECKING:
    from workbench.calls.results import ChatResponse
    from workbench.calls.session import PreparedChat, Session

__all__ = ["refuse_cell_over_budget", "score_cell"]


def refuse_cell_over_budget(
    session: Session,
    prepared: PreparedChat,
    scorers: Sequence[Scorer],
    budget: Decimal,
    *,
    answered: bool,
) -> None:
    """Raise BudgetExceededError, before anything is sent, when the answer (nothing if
    ``answered`` from the table) and the scorers' model calls are expected to cost more
    than ``budget``."""
    judging = estimate_planned(scorers, [prepared], ModelCalls(session))
    if judging is None:
        return  # no scorer calls a model: the call's own check is the whole story
    total = judging + (Estimate.zero() if answered else session.spend.estimate_chat(prepared))
    # The one budget (calls/budget): "1 run + 1 judge call"; unpriced judges refused too.
    session.spend.refuse("Call", total, own=budget, own_name="--budget")


def score_cell(
    responses: Sequence[ChatResponse],
    scorers: Sequence[Scorer],
    session: Session,
    budget: Decimal | None,
) -> list[str]:
    """The compact scores of the cell's answer; the scorers' model calls may spend what
    the cell's calls left of ``budget``."""
    if budget is None:
        return compact(score_within([responses[-1]], scorers, calls=ModelCalls(session)))
    spent = sum((Decimal(str(r.cost_usd)) for r in responses if r.cost_usd), Decimal(0))
    try:
        calls = ModelCalls(session, budget=budget - spent)
        return compact(score_within([responses[-1]], scorers, calls=calls))
    except BudgetExceededError:
        warnings.warn(
            f"The judge was not asked: the answer cost {format_money(spent)} of --budget "
            f"{format_money(budget)}, and its calls would go past it. Score the answer later"
            " with wb.score(...)",
            RuntimeWarning,
            stacklevel=2,
        )
    free = [s for s in scorers if not s.uses_model]
    labels = (compact(score_within([responses[-1]], free, calls=ModelCalls(session)))
              if free else [])
    return [*labels, *(f"{s.name} not asked (--budget)" for s in scorers if s.uses_model)]
