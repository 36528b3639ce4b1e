"""Human review: ``wb.ReviewPanel`` (ratings stored as ``human`` scores, with history) and
pairwise preferences with their win rate (``wb.preferences``)."""

from __future__ import annotations

from workbench.notebook.review.panel import Case, ReviewPanel, blind_swap, pair_key
from workbench.notebook.review.store import (
           WinRate,
           add_preference,
           rate,
           read_preferences,
           score_history,
           win_rate,
)

__all__ = ["ReviewPanel", "Case", "pair_key", "blind_swap", "WinRate", "add_preference",
           "rate", "read_preferences", "score_history", "win_rate"]
