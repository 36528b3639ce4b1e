"""The one budget: it estimates what work would cost, refuses before sending what does not
fit, and charges what was answered, for single calls, sweeps, the Batch API, embeddings
and scorers alike, so a refusal reads the same wherever it comes from.

- :mod:`.estimate`: :class:`Estimate` and the offline estimates (tokens, then dollars).
- :mod:`.gate`: the refusal before sending and the stop between calls, worded once.
- :mod:`.charge`: :class:`Spend`, what one piece of work (a sweep, a scoring, a cell) has
  spent against its own ``budget=`` and the session's.
- :mod:`.price`: a call's usage and price written into its row.
- :mod:`.session_budget`: :class:`Budget`, the object the session builds, through which
  every path estimates, checks and charges.
"""

from workbench.calls.budget.charge import Spend, SweepSpend
from workbench.calls.budget.estimate import DEFAULT_MAX_TOKENS, Estimate
from workbench.calls.budget.gate import refuse_over_budget, refused, stopped
from workbench.calls.budget.session_budget import Budget, SessionBudget

__all__ = [
    "Budget",
    "SessionBudget",
    "Spend",
    "SweepSpend",
    "Estimate",
    "DEFAULT_MAX_TOKENS",
    "refuse_over_budget",
    "refused",
    "stopped",
]
