"""Call costs from genai-prices' bundled table, custom prices and the local model.

Expected dollar figures are computed by hand from the providers' published prices, never
by calling genai-prices.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from workbench.core.pricing import (
    CustomPrice,
    PriceQuote,
    UnknownPriceWarning,
    estimate_cost,
    genai_prices_version,
    price,
    quote,
)
from workbench.core.usage import Usage

ROOT = Path(__file__).resolve().parents[1]
M = Decimal(1_000_000)


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise OSError("tests run offline")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)


@pytest.fixture
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _unique_model() -> str:
    # Unknown-model warnings are once per name per process: a fresh name per test.
    return f"no-such-model-{uuid.uuid4().hex[:8]}"


# 12,000 prompt tokens of which 4,000 were cached, 3,000 completion tokens.
USAGE = Usage(
    prompt_tokens=12_000, completion_tokens=3_000, cached_tokens=4_000, total_tokens=15_000
)


def test_genai_prices_holds_the_published_gpt_4o_mini_prices() -> None:
    # OpenAI's list price for gpt-4o-mini: $0.15/M input, $0.075/M cached input, $0.60/M output.
    from genai_prices.data_snapshot import get_snapshot

    _, model = get_snapshot().find_provider_model("gpt-4o-mini", None, "openai", None)
    prices = model.get_prices(datetime.now(timezone.utc))
    assert (prices.input_mtok, prices.cache_read_mtok, prices.output_mtok) == (
        Decimal("0.15"),
        Decimal("0.075"),
        Decimal("0.6"),
    )


def test_gpt_4o_mini_with_cached_tokens(no_warnings: None) -> None:
    expected = (
        Decimal(8_000) * Decimal("0.15")  # uncached prompt tokens
        + Decimal(4_000) * Decimal("0.075")  # cached prompt tokens, half price
        + Decimal(3_000) * Decimal("0.60")
    ) / M
    assert expected == Decimal("0.0033")
    result = quote("gpt-4o-mini", USAGE)
    assert result == PriceQuote(expected, f"genai-prices {genai_prices_version()}")
    assert price("gpt-4o-mini", USAGE) == expected


def test_dated_model_and_provider_prefix_find_the_same_price(no_warnings: None) -> None:
    expected = quote("gpt-4o-mini", USAGE).cost_usd
    assert quote("gpt-4o-mini-2024-07-18", USAGE).cost_usd == expected
    assert quote("openai:gpt-4o-mini", USAGE).cost_usd == expected
    assert quote("gpt-4o-mini", USAGE, provider_id=None).cost_usd == expected


def test_reasoning_tokens_are_billed_once_as_output(no_warnings: None) -> None:
    # o3-mini: $1.10/M input, $0.55/M cached input, $4.40/M output; OpenAI bills reasoning
    # tokens as output, and completion_tokens already includes them.
    usage = Usage(
        prompt_tokens=10_000, completion_tokens=5_000, cached_tokens=2_000, reasoning_tokens=4_000
    )
    expected = (
        Decimal(8_000) * Decimal("1.10")
        + Decimal(2_000) * Decimal("0.55")
        + Decimal(5_000) * Decimal("4.40")
    ) / M
    assert expected == Decimal("0.0319")
    assert quote("o3-mini", usage).cost_usd == expected
    without_details = Usage(prompt_tokens=10_000, completion_tokens=5_000, cached_tokens=2_000)
    assert quote("o3-mini", without_details).cost_usd == expected


def test_a_separate_reasoning_price_replaces_the_output_price_for_those_tokens(
    no_warnings: None,
) -> None:
    # perplexity/sonar-deep-research on OpenRouter: $2/M input, $8/M output, and genai-prices
    # records reasoning at $3/M: of 5,000 completion tokens, 4,000 are reasoning.
    usage = Usage(prompt_tokens=10_000, completion_tokens=5_000, reasoning_tokens=4_000)
    expected = (Decimal(10_000) * 2 + Decimal(1_000) * 8 + Decimal(4_000) * 3) / M
    assert (
        quote("perplexity/sonar-deep-research", usage, provider_id="openrouter").cost_usd
        == expected
    )


def test_at_prices_a_call_as_it_was_billed_then(no_warnings: None) -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0)
    # OpenAI cut o3's input price from $10/M to $2/M on 2025-06-10.
    assert quote("o3", usage, at=datetime(2025, 5, 1, tzinfo=timezone.utc)).cost_usd == Decimal(10)
    assert quote("o3", usage, at=datetime(2025, 7, 1, tzinfo=timezone.utc)).cost_usd == Decimal(2)


def test_embeddings_are_priced_by_input_only(no_warnings: None) -> None:
    # text-embedding-3-small: $0.02/M tokens; embedding usage has no completion_tokens.
    usage = Usage.from_openai({"prompt_tokens": 250_000, "total_tokens": 250_000})
    assert quote("text-embedding-3-small", usage).cost_usd == Decimal(250_000) * Decimal("0.02") / M


def test_a_custom_price_wins_over_the_table(no_warnings: None) -> None:
    custom = {"gpt-4o-mini": CustomPrice(Decimal("1"), Decimal("2"), Decimal("0.5"))}
    expected = (Decimal(8_000) * 1 + Decimal(4_000) * Decimal("0.5") + Decimal(3_000) * 2) / M
    assert quote("gpt-4o-mini", USAGE, custom=custom) == PriceQuote(expected, "custom")
    assert quote("openai:gpt-4o-mini", USAGE, custom=custom).cost_usd == expected


def test_a_custom_price_without_a_cached_price_bills_cached_tokens_as_input() -> None:
    custom = {"my-model": CustomPrice(Decimal("1"), Decimal("2"))}
    expected = (Decimal(12_000) * 1 + Decimal(3_000) * 2) / M
    assert quote("my-model", USAGE, custom=custom) == PriceQuote(expected, "custom")


def test_custom_price_numbers_become_exact_decimals() -> None:
    assert CustomPrice(0.15, "0.6", 1) == CustomPrice(  # type: ignore[arg-type]
        Decimal("0.15"), Decimal("0.6"), Decimal(1)
    )
    with pytest.raises(ValueError):
        CustomPrice(Decimal(-1), Decimal(1))
    with pytest.raises(TypeError):
        CustomPrice(None, Decimal(1))  # type: ignore[arg-type]


def test_the_local_model_costs_nothing(no_warnings: None) -> None:
    assert quote("smollm2", USAGE, local=True) == PriceQuote(Decimal(0), "local")
    assert quote("smollm2", None, local=True) == PriceQuote(Decimal(0), "local")


def test_no_usage_means_no_cost(no_warnings: None) -> None:
    assert quote("gpt-4o-mini", None) == PriceQuote(None, None)
    assert quote("gpt-4o-mini", Usage()) == PriceQuote(None, None)


def test_an_unknown_model_has_no_cost_and_warns_once() -> None:
    model = _unique_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert quote(model, USAGE) == PriceQuote(None, None)
        assert price(model, USAGE) is None
        assert estimate_cost(model, 10, 10) == PriceQuote(None, None)
    assert len(caught) == 1
    assert issubclass(caught[0].category, UnknownPriceWarning)
    message = str(caught[0].message)
    fix = f'wb.set_price("{model}", input_per_mtok=..., output_per_mtok=..., '
    assert fix + "cached_input_per_mtok=None)" in message


def test_an_unknown_provider_counts_as_unknown() -> None:
    with pytest.warns(UnknownPriceWarning, match="provider 'nowhere'"):
        assert quote(_unique_model(), USAGE, provider_id="nowhere").cost_usd is None


def test_inconsistent_usage_is_not_priced() -> None:
    with pytest.warns(UnknownPriceWarning, match="inconsistent usage"):
        assert quote("gpt-4o-mini", Usage(prompt_tokens=5, cached_tokens=9)).cost_usd is None


def test_estimate_cost_follows_the_same_rules(no_warnings: None) -> None:
    assert estimate_cost("gpt-4o-mini", 12_000, 3_000, cached_tokens=4_000) == quote(
        "gpt-4o-mini", USAGE
    )
    assert estimate_cost("smollm2", 10, 10, local=True).cost_usd == Decimal(0)


def test_importing_the_module_does_not_import_genai_prices() -> None:
    code = "import sys, workbench.core.pricing; print('genai_prices' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
