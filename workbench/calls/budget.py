"""The one budget: what may be sent, checked before sending, and what was spent, charged
after. Single calls, sweeps, the Batch API, embeddings and scorers all go through here, so
a refusal reads the same wherever it comes from.

Two kinds of money are kept: the session's (:class:`SessionBudget`, set with
``wb.configure(budget=...)``) and one piece of work's own ``budget=`` (:class:`Spend`: a
sweep's runs and its judge's calls, a scoring, a cell). A piece of work is refused before
anything is sent when its estimate does not fit (:func:`refuse_over_budget`) and stopped
between calls once either budget is spent (:meth:`Spend.check`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from workbench.core.errors import BudgetExceededError
from workbench.core.money import format_money

if TYPE_CHECKING:
    from workbench.calls.estimate import Estimate

__all__ = ["SessionBudget", "Spend", "refuse_over_budget", "refused", "stopped"]

RAISE_SESSION = "raise it with wb.configure(budget=...)"


def refused(what: str, reason: str) -> BudgetExceededError:
    """The one wording of a refusal before sending: ``"<What> refused before sending
    anything: <reason>"``, the reason ending with the fix."""
    return BudgetExceededError(f"{what} refused before sending anything: {reason}")


def stopped(what: str, reason: str) -> BudgetExceededError:
    """The one wording of a stop between calls: ``"<What> stopped: <reason>"``."""
    return BudgetExceededError(f"{what} stopped: {reason}")


class SessionBudget:
    """The session's budget (USD, None: none) and what the session has spent.

    Charged from whichever thread an answer arrives on (a sweep's loop, a judge's
    thread), so the sums are kept under a lock.
    """

    def __init__(self) -> None:
        self.limit: Decimal | None = None
        self.spent = Decimal(0)
        # Calls answered at a price nobody knows: the spend is "$X + unknown" then.
        self.unpriced_calls = 0
        # With a budget set, a call whose cost cannot be known is refused unless this is
        # True: a budget that silently lets unpriced calls through is no budget.
        self.allow_unpriced = False
        self._lock = threading.Lock()

    def remaining(self) -> Decimal | None:
        return None if self.limit is None else self.limit - self.spent

    def charge(self, cost: Decimal | None) -> None:
        """Count one answered call; an unknown cost is counted as unknown, never as $0."""
        with self._lock:
            if cost is not None:
                self.spent += cost
            else:
                self.unpriced_calls += 1

    def check_not_spent(self, what: str, *, running: bool = False) -> None:
        """Raise once the session has spent its budget: nothing more goes out, whether its
        price is known or not."""
        remaining = self.remaining()
        if remaining is None or remaining >= 0:
            return
        if running:
            raise stopped(
                what,
                f"the session budget of {format_money(self.limit)} is spent; {RAISE_SESSION}"
                " and run it again to finish the rest",
            )
        raise refused(
            what,
            f"the session budget of {format_money(self.limit)} is spent "
            f"({format_money(self.spent)}); {RAISE_SESSION}",
        )


def refuse_over_budget(
    what: str,
    session: SessionBudget,
    cost: Decimal | None,
    *,
    unpriced: Iterable[str] = (),
    own: Decimal | None = None,
    label: str = "expected cost",
    estimate: Estimate | None = None,
    fix: str = "raise it with budget=... or wb.configure(budget=...)",
) -> None:
    """Raise BudgetExceededError before sending ``what`` (``"Call"``, ``"Sweep"``,
    ``"Batch"``, ``"Scoring"``, ``"Embedding"``...), estimated at ``cost`` (None: some
    price unknown, the models in ``unpriced``), when the session's budget is spent, or
    when ``cost`` is unknown or above ``own`` (the work's own budget) or what the session
    has left. Nothing to check without a budget."""
    session.check_not_spent(what)
    limits = [b for b in (own, session.remaining()) if b is not None]
    if not limits:
        return
    if cost is None:
        if session.allow_unpriced:
            return
        names = sorted(set(unpriced))
        which = ", ".join(map(repr, names)) or "some of its models"
        example = names[0] if len(names) == 1 else "model"
        raise refused(
            what,
            f"no price is known for {which}, so the budget cannot be kept. Set one with "
            f'wb.set_price("{example}", ...), or send calls of unknown cost anyway with '
            "wb.configure(allow_unpriced=True)",
        )
    limit = min(limits)
    if cost > limit:
        detail = f" Estimate: {estimate}." if estimate is not None else ""
        raise refused(
            what,
            f"the {label} {format_money(cost)} is above the budget of "
            f"{format_money(limit)}.{detail} {fix[:1].upper()}{fix[1:]}",
        )


class Spend:
    """What one piece of work has spent (USD) against its own ``budget`` and the
    session's; split into its own calls and its scorers' model calls (a judge's), which
    are paid for by the work too. ``within``: a larger piece of work this one's calls
    also count against (a judge's calls inside a sweep)."""

    def __init__(
        self,
        what: str,
        budget: Decimal | None,
        session: SessionBudget | None = None,
        *,
        within: Spend | None = None,
        kept: str = "the runs and scores so far are kept",
        again: str = "",
    ) -> None:
        self.what = what
        self.budget = budget
        self.session = session
        self.within = within
        self.kept = kept
        self.again = again or f"run the {what.lower()} again"
        self.runs = Decimal(0)
        self.scoring = Decimal(0)
        self._lock = threading.Lock()

    def add(self, cost: float | Decimal | None, *, scoring: bool = False) -> None:
        """Count one answered call; an unknown cost (None) adds nothing."""
        if cost is None:
            return
        amount = Decimal(str(cost))
        with self._lock:
            if scoring:
                self.scoring += amount
            else:
                self.runs += amount
        if self.within is not None:
            self.within.add(amount, scoring=True)

    @property
    def total(self) -> Decimal:
        with self._lock:
            return self.runs + self.scoring

    def check(self) -> None:
        """Raise before the next call once this work, the work it is part of, or the
        session has spent more than its budget."""
        if self.within is not None:
            self.within.check()
        if self.budget is not None:
            with self._lock:
                runs, scoring = self.runs, self.scoring
            if runs + scoring > self.budget:
                split = (
                    f" (runs {format_money(runs)} + scorers' model calls "
                    f"{format_money(scoring)})"
                    if scoring and runs
                    else ""
                )
                raise stopped(
                    self.what,
                    f"it has spent {format_money(runs + scoring)}{split}, above its budget of "
                    f"{format_money(self.budget)}; {self.kept}, {self.again} with a larger "
                    "budget to finish the rest",
                )
        if self.session is not None:
            self.session.check_not_spent(self.what, running=True)

    def __call__(self, cost: float | None) -> None:
        """A scorer's ``on_cost``: None before a call (check), a cost after one (add)."""
        if cost is None:
            self.check()
        else:
            self.add(cost, scoring=True)
