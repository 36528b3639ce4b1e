"""What one piece of work spends (:class:`Spend`): a sweep's runs and its judge's calls, a
scoring, a cell, each against its own ``budget=`` and the session's, charged as answers
arrive and checked between calls (the stop is worded in :mod:`.gate`)."""

from __future__ import annotations

import threading
from decimal import Decimal

from workbench.calls.budget.gate import SessionLimit, stopped
from workbench.core.money import format_money

__all__ = ["Spend", "SweepSpend"]


class Spend:
    """What one piece of work has spent (USD) against its own ``budget`` and the
    session's; split into its own calls and its scorers' model calls (a judge's), which
    are paid for by the work too. ``within``: a larger piece of work this one's calls
    also count against (a judge's calls inside a sweep)."""

    def __init__(
        self,
        what: str,
        budget: Decimal | None,
        session: SessionLimit | None = None,
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


class SweepSpend(Spend):
    """A sweep's own spend against its ``budget=`` and the session's (see :class:`Spend`)."""

    def __init__(self, budget: Decimal | None, session: SessionLimit | None = None) -> None:
        super().__init__("Sweep", budget, session)
