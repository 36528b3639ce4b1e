"""Moved to :mod:`workbench.calls.budget.estimate` (the one budget estimates, checks and
charges); the names stay importable from here."""

from workbench.calls.budget.estimate import (
    DEFAULT_MAX_TOKENS,
    Estimate,
    Pricing,
    estimate_embedding,
    estimate_messages,
    estimate_prompt_tokens,
    reserved_tokens,
)

__all__ = [
    "Estimate",
    "Pricing",
    "estimate_messages",
    "estimate_prompt_tokens",
    "estimate_embedding",
    "reserved_tokens",
    "DEFAULT_MAX_TOKENS",
]
