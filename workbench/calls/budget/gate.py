"""The budget's refusals, worded once: before sending (:func:`refuse_over_budget`,
:func:`refused`) and between calls (:func:`stopped`).

Every path (a call, a sweep, a Batch API submission, an embedding, a scoring, a cell) is
refused by :func:`refuse_over_budget` from its :class:`~.estimate.Estimate`, so the line
reads the same wherever it comes from::

    Sweep refused before sending anything: the expected cost $0.31 is above the budget
    of $0.01. Estimate: 9 runs · ... Lower max_tokens or shrink the grid, or raise
    budget=...

Only what can be lowered (the first words of the fix) depends on what was refused.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from workbench.core.errors import BudgetExceededError
from workbench.core.money import format_money

if TYPE_CHECKING:
    from workbench.calls.budget.estimate import Estimate

__all__ = [
    "SessionLimit", "refuse_over_budget", "refuse_above", "refused", "stopped",
    "RAISE_SESSION", "SHRINK",
]

RAISE_SESSION = "wb.configure(budget=...)"

# What makes each kind of work cheaper: the first half of a refusal's fix.
SHRINK = {
    "Call": "lower max_tokens",
    "Sweep": "lower max_tokens or shrink the grid",
    "Batch": "lower max_tokens or shrink the grid",
    "Embedding": "embed fewer texts",
    "Scoring": "score fewer runs",
    "Optimization": "use fewer cases or a smaller max_tokens=...",
}


class SessionLimit(Protocol):
    """What the gate and a piece of work's :class:`~.charge.Spend` ask of the session's
    budget (:class:`~.session_budget.Budget` is the one implementation). A protocol here,
    so the refusals and the spend need not import the budget that uses them."""

    allow_unpriced: bool

    def remaining(self) -> Decimal | None: ...

    def check_not_spent(self, what: str, *, running: bool = False) -> None: ...


def refused(what: str, reason: str) -> BudgetExceededError:
    """The one wording of a refusal before sending: ``"<What> refused before sending
    anything: <reason>"``, the reason ending with the fix."""
    return BudgetExceededError(f"{what} refused before sending anything: {reason}")


def stopped(what: str, reason: str) -> BudgetExceededError:
    """The one wording of a stop between calls: ``"<What> stopped: <reason>"``."""
    return BudgetExceededError(f"{what} stopped: {reason}")


def refuse_above(
    what: str, cost: Decimal | None, budget: Decimal, *, kind: str = "worst-case",
    detail: str = "", own_name: str = "budget=...",
) -> None:
    """Raise before sending ``what`` when its ``cost`` (``None``: no price known) is above
    ``budget``: for work priced by its own plan rather than an :class:`Estimate` (an
    optimization's starting evaluation and validation). Same wording as
    :func:`refuse_over_budget`; ``detail`` says what the cost covers."""
    if cost is None:
        raise refused(
            what,
            "no price is known for its model, so the budget cannot be kept. Set one with "
            'wb.set_price("model", ...)',
        )
    if cost <= budget:
        return
    shrink = SHRINK.get(what, "send less")
    covers = f" ({detail})" if detail else ""
    raise refused(
        what,
        f"the {kind} cost{covers} {format_money(cost)} is above the budget of "
        f"{format_money(budget)}. {shrink[:1].upper()}{shrink[1:]}, or raise {own_name}",
    )


def refuse_over_budget(
    what: str,
    session: SessionLimit,
    estimate: Estimate,
    *,
    own: Decimal | None = None,
    own_name: str = "budget=...",
    strict: bool = False,
    batch: bool = False,
) -> None:
    """Raise BudgetExceededError before sending ``what`` (a key of :data:`SHRINK`) when
    the session's budget is spent, or when the ``estimate``'s cost is unknown or above
    ``own`` (the work's own budget, set as ``own_name``) or what the session has left.

    The cost is the expected one, the worst case with ``strict``, at the Batch API's
    price with ``batch``. Nothing to check without a budget."""
    session.check_not_spent(what)
    if own is None and session.remaining() is None:
        return
    if strict:
        cost = estimate.batch_cost_high if batch else estimate.cost_high
    else:
        cost = estimate.batch_cost_expected if batch else estimate.cost_expected
    if cost is None:
        if session.allow_unpriced:
            return
        names = sorted(estimate.unpriced_models)
        which = ", ".join(map(repr, names)) or "some of its models"
        example = names[0] if len(names) == 1 else "model"
        raise refused(
            what,
            f"no price is known for {which}, so the budget cannot be kept. Set one with "
            f'wb.set_price("{example}", ...), or send calls of unknown cost anyway with '
            "wb.configure(allow_unpriced=True)",
        )
    left = session.remaining()
    if own is not None and (left is None or own <= left):
        limit, whose, raise_it = own, f"the budget of {format_money(own)}", own_name
    else:
        assert left is not None  # one of the two is set (checked above)
        limit, whose, raise_it = left, f"the {format_money(left)} left of the session budget", (
            RAISE_SESSION
        )
    if cost <= limit:
        return
    kind = "worst-case" if strict else "expected"
    price = " at the batch price" if batch else ""
    shrink = SHRINK.get(what, "send less")
    raise refused(
        what,
        f"the {kind} cost{price} {format_money(cost)} is above {whose}. Estimate: {estimate}."
        f" {shrink[:1].upper()}{shrink[1:]}, or raise {raise_it}",
    )
