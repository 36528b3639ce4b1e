"""A sweep's running spend against its own ``budget=``: its calls and its scorers' model
calls (a judge's) together, since both are paid for by the sweep.

The sweep's calls are added on its event loop and a judge's on the scoring thread, so the
sum is kept under a lock; each side checks it before sending its next call.
"""

from __future__ import annotations

import threading
from decimal import Decimal

from .errors import BudgetExceededError
from .money import format_money

__all__ = ["SweepSpend"]


class SweepSpend:
    """What one run of a sweep has spent (USD), split into its own calls and its scorers'
    calls; :meth:`check` raises BudgetExceededError once the total is above ``budget``."""

    def __init__(self, budget: Decimal | None) -> None:
        self.budget = budget
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

    @property
    def total(self) -> Decimal:
        with self._lock:
            return self.runs + self.scoring

    def check(self) -> None:
        """Raise before the next call once the sweep has spent more than its budget."""
        if self.budget is None:
            return
        with self._lock:
            runs, scoring = self.runs, self.scoring
        if runs + scoring > self.budget:
            split = (
                f" (runs {format_money(runs)} + scorers' model calls {format_money(scoring)})"
                if scoring
                else ""
            )
            raise BudgetExceededError(
                f"Sweep stopped: it has spent {format_money(runs + scoring)}{split}, above its "
                f"budget of {format_money(self.budget)}; the runs and scores so far are kept, "
                "run the sweep again with a larger budget to finish the rest"
            )
