"""Moved to :mod:`workbench.calls.budget.price` (the one budget estimates, checks and
charges); the names stay importable from here."""

from workbench.calls.budget.price import counted_chat_usage, custom_prices, price_into, quote

__all__ = ["custom_prices", "quote", "price_into", "counted_chat_usage"]
