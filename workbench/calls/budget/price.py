"""A call's usage and price written into its row (the custom prices kept in the store
first, then the provider's price table, 0 for the local model), for the budget to charge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.pricing import CustomPrice
from workbench.core.pricing import quote as table_quote
from workbench.core.tokens import count_chat_tokens, count_tokens
from workbench.core.usage import Usage

if TYPE_CHECKING:
    from workbench.api.providers import Provider
    from workbench.core.pricing import (
        PriceQuote,
    )
    from workbench.core.record import RunRecord
    from workbench.store import AnyStore

__all__ = ["custom_prices", "quote", "price_into", "counted_chat_usage"]


def custom_prices(store: AnyStore) -> dict[str, CustomPrice]:
    """The prices set with ``wb.set_price``, kept in the store."""
    return {m: CustomPrice(*p) for m, p in store.prices().items()}


def quote(
    model: str,
    usage: Usage,
    provider: Provider,
    custom: Mapping[str, CustomPrice],
    *,
    batch: bool = False,
) -> PriceQuote:
    """The price of ``usage`` on ``model`` at ``provider``; ``batch=True``: the Batch
    API's price."""
    return table_quote(
        model,
        usage,
        provider_id=provider.price_provider,
        use_table=provider.price_provider is not None,
        local=provider.local,
        custom=custom,
        batch=batch,
    )


def price_into(
    record: RunRecord, usage: Usage, provider: Provider, custom: Mapping[str, CustomPrice]
) -> Decimal | None:
    """Write ``usage`` and its price into ``record``; return the price (None: unknown),
    for the caller to charge to its budget."""
    record.prompt_tokens = usage.prompt_tokens
    record.completion_tokens = usage.completion_tokens
    record.cached_tokens = usage.cached_tokens
    record.reasoning_tokens = usage.reasoning_tokens
    record.total_tokens = usage.total_tokens
    record.tokens_counted = usage.counted
    # Counted usage gives a cost marked as estimated (see pricing.ESTIMATED); it
    # counts towards the spend and budgets all the same, as the best figure there is.
    priced = quote(record.model, usage, provider, custom, batch=record.mode == "batch")
    if record.kind == "chat" and usage.completion_tokens is None and not provider.local:
        # A chat answer whose completion count was unusable (dropped, with a note):
        # pricing the prompt alone would pass a part for the whole. Unknown instead.
        priced = replace(priced, cost_usd=None, source=None)
    record.cost_usd = float(priced.cost_usd) if priced.cost_usd is not None else None
    record.price_source = priced.source
    return priced.cost_usd


def counted_chat_usage(messages: list[Any], model: str, text: str) -> Usage:
    """The usage of an answer the server gave none for, counted here (and marked so)."""
    prompt = count_chat_tokens(messages, model)
    completion = count_tokens(text, model)
    return Usage(prompt, completion, None, None, prompt + completion, counted=True)
