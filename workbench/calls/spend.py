"""Moved to :mod:`workbench.calls.budget.charge` (the one budget estimates, checks and
charges); ``SweepSpend`` stays importable from here."""

from workbench.calls.budget.charge import SweepSpend

__all__ = ["SweepSpend"]
