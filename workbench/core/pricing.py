"""What a call cost in US dollars, offline: genai-prices' bundled table, a user's own
prices for models it lacks, or zero for the local model.

Pure functions over :class:`~workbench.core.usage.Usage`; nothing here touches the network.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation
from importlib.metadata import version
from typing import Any

from workbench.core.usage import Usage

__all__ = [
    "CustomPrice",
    "PriceQuote",
    "UnknownPriceWarning",
    "ESTIMATED",
    "is_estimated",
    "quote",
    "price",
    "estimate_cost",
    "genai_prices_version",
]

_PER_MTOK = Decimal(1_000_000)

# Fine-tuned ids look like "ft:gpt-4o-mini-2024-07-18:org::id"; "ft" is not a provider.
_NOT_PROVIDER_PREFIXES = frozenset({"ft"})


class UnknownPriceWarning(UserWarning):
    """No price is known for a model: its runs are recorded with no cost."""


@dataclass(frozen=True)
class CustomPrice:
    """A user's price for a model, in USD per million tokens.

    Cached prompt tokens cost ``cached_input_per_mtok``, or the input price when that is
    ``None`` (a provider without prompt-caching discounts). Numbers given as int, str or
    float are converted to ``Decimal`` (a float through its shortest repr, so ``0.15``
    becomes ``Decimal("0.15")``, not its binary expansion).
    """

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None or field.name != "cached_input_per_mtok":
                object.__setattr__(self, field.name, _price_decimal(field.name, value))

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> Decimal:
        """Cost of a call; ``prompt_tokens`` includes ``cached_tokens``, as OpenAI reports."""
        cached_price = (
            self.input_per_mtok
            if self.cached_input_per_mtok is None
            else self.cached_input_per_mtok
        )
        return (
            Decimal(prompt_tokens - cached_tokens) * self.input_per_mtok
            + Decimal(cached_tokens) * cached_price
            + Decimal(completion_tokens) * self.output_per_mtok
        ) / _PER_MTOK


@dataclass(frozen=True)
class PriceQuote:
    """A cost and where its price came from.

    ``source`` is ``"genai-prices X.Y.Z"`` (with the fetch date if its prices were updated
    at runtime), ``"custom"`` or ``"local"``; both fields are ``None`` when no price is
    known or the server reported no usage.
    """

    cost_usd: Decimal | None
    source: str | None


_NO_QUOTE = PriceQuote(None, None)

# Appended to a price_source when the tokens were counted with tiktoken because the
# server sent no usage: the price is real, the token counts are ours, so the cost is an
# estimate and says so (a billed cost never carries this mark).
ESTIMATED = " (estimated from counted tokens)"


def is_estimated(source: str | None) -> bool:
    """Whether a ``price_source`` marks its cost as estimated from counted tokens."""
    return source is not None and source.endswith(ESTIMATED)

# Unknown models warn once per name per process: a grid of 200 runs on a model without
# a price should say so once, not 200 times. The lock keeps "once" true across threads.
_warned_models: set[str] = set()
_warned_lock = threading.Lock()


def quote(
    model: str,
    usage: Usage | None,
    *,
    provider_id: str | None = "openai",
    local: bool = False,
    custom: Mapping[str, CustomPrice] | None = None,
    at: datetime | None = None,
    use_table: bool = True,
    batch: bool = False,
) -> PriceQuote:
    """Cost of one call of ``model`` with ``usage``.

    In order: ``local=True`` costs ``Decimal(0)`` (source ``"local"``) whatever the usage;
    no usage (``prompt_tokens is None``) gives no cost; a ``custom`` price for the model
    wins over the table; otherwise genai-prices' bundled table for ``provider_id`` (``None``
    lets genai-prices guess the provider from the model name) at time ``at`` (default
    now; pass a run's timestamp to re-price it as it was billed). A ``"name:"`` prefix
    such as ``"openai:gpt-4o-mini"`` is dropped for the lookup (custom prices are looked
    up with and without it); the provider is always ``provider_id``, never the prefix.
    ``use_table=False`` skips genai-prices (a self-hosted model has no public price).
    A model found nowhere gives no cost and an :class:`UnknownPriceWarning`, once per name.
    ``batch=True`` prices a Batch API call: the table's batch variant (half price on
    OpenAI), or its usual price where it has none; a custom price applies as it is.

    Reasoning tokens are inside ``completion_tokens`` and billed as output once; cached
    tokens are inside ``prompt_tokens`` and billed at the cached-input price.

    Usage counted locally (``usage.counted``) is priced the same way, but its source ends
    in :data:`ESTIMATED`: such a cost is an estimate, never passed off as a bill.
    """
    quoted = _quote(model, usage, provider_id, local, custom, at, use_table, batch)
    if usage is not None and usage.counted and quoted.source not in (None, "local"):
        return PriceQuote(quoted.cost_usd, quoted.source + ESTIMATED)
    return quoted


def _quote(
    model: str,
    usage: Usage | None,
    provider_id: str | None,
    local: bool,
    custom: Mapping[str, CustomPrice] | None,
    at: datetime | None,
    use_table: bool,
    batch: bool = False,
) -> PriceQuote:
    if local:
        return PriceQuote(Decimal(0), "local")
    if usage is None or usage.prompt_tokens is None:
        return _NO_QUOTE

    prompt = usage.prompt_tokens
    completion = usage.completion_tokens or 0  # embeddings report prompt tokens only
    cached = usage.cached_tokens or 0
    reasoning = usage.reasoning_tokens or 0
    if min(prompt, completion, cached, reasoning) < 0 or cached > prompt:
        # A server that counts cached tokens outside prompt_tokens (not OpenAI's
        # convention) would be mispriced; better no cost than a wrong one.
        warnings.warn(
            f"Cannot price {model}: inconsistent usage (prompt_tokens={prompt}, "
            f"cached_tokens={cached}, completion_tokens={completion}, "
            f"reasoning_tokens={reasoning})",
            UnknownPriceWarning,
            stacklevel=3,
        )
        return _NO_QUOTE

    reference = _without_provider_prefix(model)
    custom_price = _custom_price_for(custom, model, reference)
    if custom_price is not None:
        return PriceQuote(custom_price.cost(prompt, completion, cached), "custom")
    if not use_table:
        _warn_unknown(model, provider_id)
        return _NO_QUOTE

    if at is None:
        try:
            return _table_quote(
                reference, provider_id, prompt, cached, completion, reasoning, batch
            )
        except LookupError:  # unknown provider or model
            _warn_unknown(model, provider_id)
            return _NO_QUOTE
    quoted = _table_quote_at(
        reference, provider_id, prompt, cached, completion, reasoning, at, batch
    )
    if quoted is None:
        _warn_unknown(model, provider_id)
        return _NO_QUOTE
    return quoted


@functools.lru_cache(maxsize=4096)
def _table_quote(
    reference: str,
    provider_id: str | None,
    prompt: int,
    cached: int,
    completion: int,
    reasoning: int,
    batch: bool = False,
) -> PriceQuote:
    # Pricing one call in genai-prices costs ~0.4 ms; a sweep prices each point three
    # times to estimate it and once more when it is answered, mostly with the same token
    # counts. LookupError (no price) propagates and is not cached.
    quoted = _table_quote_at(
        reference, provider_id, prompt, cached, completion, reasoning, None, batch
    )
    if quoted is None:
        raise LookupError(reference)
    return quoted


def _table_quote_at(
    reference: str,
    provider_id: str | None,
    prompt: int,
    cached: int,
    completion: int,
    reasoning: int,
    at: datetime | None,
    batch: bool = False,
) -> PriceQuote | None:
    from genai_prices import Usage as PricesUsage  # deferred: keeps import workbench light (~0.2 s)

    # deferred: keeps import workbench light (genai_prices ~0.2 s)
    from genai_prices import __version__, calc_price

    prices_usage = PricesUsage(
        # genai-prices decomposes usage: input_tokens includes cache_read_tokens and is
        # billed as (input - cache_read) * input price + cache_read * cache-read price.
        input_tokens=prompt,
        cache_read_tokens=cached,
        output_tokens=completion,
        # Likewise output_tokens includes output_reasoning_tokens: for a model with no
        # separate reasoning price (every OpenAI model) they are billed once, as output;
        # a model with one gets (output - reasoning) * output + reasoning * its price.
        output_reasoning_tokens=reasoning if reasoning <= completion else None,
    )
    try:
        calculation = calc_price(
            prices_usage,
            reference,
            provider_id=provider_id,
            genai_request_timestamp=at,
            # The table's Batch API variants are selected by this context.
            price_context={"processing": "batch"} if batch else None,
        )
    except LookupError:  # unknown provider or model
        return None
    source = f"genai-prices {__version__}"
    if calculation.auto_update_timestamp is not None:
        source += f", prices fetched {calculation.auto_update_timestamp:%Y-%m-%d %H:%M}"
    return PriceQuote(calculation.total_price, source)


def price(model: str, usage: Usage | None, **kwargs: Any) -> Decimal | None:
    """Cost in USD of one call, or ``None`` when unknown; see :func:`quote` for ``kwargs``."""
    return quote(model, usage, **kwargs).cost_usd


def estimate_cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    **kwargs: Any,
) -> PriceQuote:
    """Quote a call that has not happened, from token counts (e.g. tiktoken's plus
    ``max_tokens``); the same rules and keyword arguments as :func:`quote`."""
    usage = Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )  # not marked counted: a quote of a call not yet made is an estimate by its nature
    return quote(model, usage, **kwargs)


def genai_prices_version() -> str:
    """Version of the installed genai-prices, whose bundled data is the price table.

    Its data carries no snapshot date of its own, so the package version is what
    identifies the prices used. Read from metadata: genai-prices is not imported.
    """
    return version("genai-prices")


def _without_provider_prefix(model: str) -> str:
    prefix, colon, rest = model.partition(":")
    if colon and rest and prefix.lower() not in _NOT_PROVIDER_PREFIXES:
        return rest
    return model


def _custom_price_for(
    custom: Mapping[str, CustomPrice] | None, model: str, reference: str
) -> CustomPrice | None:
    if not custom:
        return None
    found = custom.get(model)
    return found if found is not None else custom.get(reference)


def _warn_unknown(model: str, provider_id: str | None) -> None:
    with _warned_lock:
        if model in _warned_models:
            return
        _warned_models.add(model)
    where = f" (provider {provider_id!r})" if provider_id else ""
    warnings.warn(
        f"No price known for {model!r}{where} in genai-prices {genai_prices_version()}, "
        f'so its cost is None. Set one with wb.set_price("{model}", input_per_mtok=..., '
        "output_per_mtok=..., cached_input_per_mtok=None)",
        UnknownPriceWarning,
        stacklevel=4,
    )


def _price_decimal(name: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise TypeError(f"{name} must be a number of USD per million tokens, not {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(
            f"{name} must be a number of USD per million tokens, not {value!r}"
        ) from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a finite, non-negative USD per million tokens: {value!r}")
    return number
