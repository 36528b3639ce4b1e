"""What each stored run would cost at list price, with its cached input tokens billed at
the cached price, and through the Batch API, from the tokens it measured: the prices
:func:`wb.cheapest` and :func:`wb.cascade` compare. Reads stored rows only: 0 requests.

The Batch price is genai-prices' batch variant (half price on OpenAI), priced without the
cache discount (OpenAI's Batch pricing page lists batch input and output prices only).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from workbench.core.errors import WorkbenchError
from workbench.core.usage import Usage

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.session import Session

__all__ = ["PRICES", "price_runs", "per_thousand"]

# The three prices of a run, as columns of price_runs(): the names wb.cheapest(price=) takes.
PRICES = ("list", "cached", "batch")


def _whole(value: Any) -> int | None:
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    if value is None or pd.isna(value):
        return None
    return int(value)


def _provider(session: Session, model: str, stored: Any) -> Any:
    """The provider a run was sent to: its stored name is ``name@host`` when the base URL
    was overridden (``openai@127.0.0.1:8000``); the name is what prices it."""
    name = str(stored).split("@", 1)[0] if isinstance(stored, str) and stored else None
    try:
        return session.resolve(model, name)[0]
    except WorkbenchError:
        return None  # a provider no longer configured: unpriced, NaN in the table


def price_runs(runs: pd.DataFrame, session: Session) -> pd.DataFrame:
    """``runs`` (model, provider, prompt/completion/cached tokens) with a dollar column
    per price in :data:`PRICES` (NaN where no price is known or no usage was reported)."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)


    out = runs.copy()
    columns: dict[str, list[float]] = {name: [] for name in PRICES}
    resolved: dict[tuple[str, str], Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unknown price is a NaN in the table, said there
        for row in runs.to_dict("records"):
            model, provider_name = str(row.get("model")), row.get("provider")
            key = (model, str(provider_name))
            if key not in resolved:
                resolved[key] = _provider(session, model, provider_name)
            provider = resolved[key]
            prompt = _whole(row.get("prompt_tokens"))
            completion = _whole(row.get("completion_tokens")) or 0
            cached = _whole(row.get("cached_tokens")) or 0
            if prompt is None or provider is None:
                for name in PRICES:
                    columns[name].append(np.nan)
                continue
            quotes = {
                "list": session.quote(model, Usage(prompt, completion, 0), provider),
                "cached": session.quote(model, Usage(prompt, completion, cached), provider),
                "batch": session.quote(model, Usage(prompt, completion, 0), provider,
                                       batch=True),
            }
            for name, quoted in quotes.items():
                columns[name].append(np.nan if quoted.cost_usd is None
                                     else float(quoted.cost_usd))
    for name, values in columns.items():
        out["usd_" + name] = np.asarray(values, dtype="float64")
    return out


def per_thousand(priced: pd.DataFrame, price: str) -> float:
    """Dollars per 1,000 calls: the mean run price times 1,000 (NaN when any run is
    unpriced, so an unknown price never looks cheap)."""
    values = priced["usd_" + price]
    if values.isna().any() or values.empty:
        return float("nan")
    return float(values.mean()) * 1000
