"""Moved to :mod:`workbench.calls.budget` (one budget for calls, sweeps, batches,
embeddings and scorers); ``SweepSpend`` stays importable from here."""

from __future__ import annotations

from decimal import Decimal

from workbench.calls.budget import SessionBudget, Spend

__all__ = ["SweepSpend"]


class SweepSpend(Spend):
    """A sweep's own spend against its ``budget=`` and the session's (see :class:`Spend`)."""

    def __init__(self, budget: Decimal | None, session: SessionBudget | None = None) -> None:
        super().__init__("Sweep", budget, session)
