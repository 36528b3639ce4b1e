"""``wb.cheapest``: the cheapest variant of a sweep whose score is, with the confidence
asked for, at least ``min_score``; from stored runs only (0 requests).

The lower bound is one-sided. For pass/fail scores with one run per case it is Wilson's
score bound (it does not collapse at 0/n or n/n); otherwise the t bound on the per-case
means, so repeats of a case count once (clustered by case). Each variant is checked on
its own: with many variants, one may clear the bar by luck; ``adjust=True`` uses a
Bonferroni bound over the variants instead.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.core.money import NO_MATHS_CLASS, format_money
from workbench.decide.costs import PRICES, per_thousand, price_runs
from workbench.decide.variants import session_of, variants_of

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.session import Session

__all__ = ["Cheapest", "cheapest", "lower_bound"]


def lower_bound(values: Any, cases: Any, confidence: float) -> float:
    """The one-sided lower confidence bound of the mean score (see the module text)."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)
    from scipy import stats  # deferred: keeps import workbench light (scipy ~0.9 s)

    frame = pd.DataFrame({"case": cases, "value": np.asarray(values, dtype="float64")})
    means = frame.groupby("case", sort=False)["value"].mean().to_numpy()
    n = len(means)
    if n == 0:
        return math.nan
    binary = bool(np.isin(frame["value"], (0.0, 1.0)).all())
    if binary and len(frame) == n:
        # deferred: keeps import workbench light (statsmodels.stats.proportion ~1.3 s)
        from statsmodels.stats.proportion import proportion_confint

        low, _ = proportion_confint(int(means.sum()), n, alpha=2 * (1 - confidence),
                                    method="wilson")
        return float(low)
    if n < 2:
        return math.nan
    spread = float(np.std(means, ddof=1))
    return float(means.mean() - stats.t.ppf(confidence, n - 1) * spread / math.sqrt(n))


@dataclass
class Cheapest:
    """The result of :func:`cheapest`; ``df`` has every variant, cheapest first."""

    scorer: str
    min_score: float
    confidence: float
    price: str
    best: str | None
    df: pd.DataFrame

    def summary(self) -> str:
        if self.best is None:
            return (f"No variant's {self.scorer} is at least {self.min_score:g} with"
                    f" {self.confidence:.0%} confidence.")
        row = self.df[self.df["variant"] == self.best].iloc[0]
        return (f"Cheapest that passes: {self.best}, {self.scorer} {row['mean']:.3f} (lower"
                f" bound {row['lower_bound']:.3f} >= {self.min_score:g} at"
                f" {self.confidence:.0%}), {format_money(row['per_1k_' + self.price])} per"
                f" 1,000 calls at {self.price} price.")

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        heads = ["variant", "mean", "lower bound", "passes", *(f"$/1k {p}" for p in PRICES)]
        head = "".join(f"<th>{e(h)}</th>" for h in heads)
        body = []
        for row in self.df.to_dict("records"):
            bold = "font-weight:bold" if row["variant"] == self.best else ""
            money = "".join(f"<td style='text-align:right'>{e(_money(row['per_1k_' + p]))}</td>"
                            for p in PRICES)
            body.append(
                f"<tr style='{bold}'><td style='text-align:left'>{e(row['variant'])}</td>"
                f"<td style='text-align:right'>{row['mean']:.3f}</td>"
                f"<td style='text-align:right'>{row['lower_bound']:.3f}</td>"
                f"<td>{'yes' if row['passes'] else 'no'}</td>{money}</tr>")
        return (f"<div class='{NO_MATHS_CLASS}' style='color:var(--jp-ui-font-color1)'>"
                f"<b>{e(self.summary())}</b><div style='overflow-x:auto'><table>"
                f"<tr>{head}</tr>{''.join(body)}</table></div></div>")


def _money(value: float) -> str:
    return "unknown" if math.isnan(value) else format_money(value)


def cheapest(
    sweep: Any,
    *,
    scorer: str,
    min_score: float,
    confidence: float = 0.95,
    price: str = "list",
    adjust: bool = False,
    session: Session,
) -> Cheapest:
    """The cheapest variant of ``sweep`` (a Sweep, runs DataFrame or experiment name)
    whose ``score:<scorer>`` lower confidence bound is at least ``min_score``, priced per
    1,000 calls from its runs' measured tokens: at list ``price``, with the ``"cached"``
    input discount, or through the ``"batch"`` API (all three are in ``df``). Sends
    nothing."""
    if not isinstance(scorer, str) or not scorer:
        raise InvalidInputError("cheapest needs scorer='<name>', e.g. scorer='contains'")
    if not (isinstance(confidence, float) and 0.5 <= confidence < 1):
        raise InvalidInputError(f"confidence must be between 0.5 and 1, e.g. 0.95: {confidence!r}")
    if not isinstance(min_score, (int, float)) or isinstance(min_score, bool):
        raise InvalidInputError(f"min_score must be a number, e.g. 0.8: {min_score!r}")
    if price not in PRICES:
        raise InvalidInputError(f"price must be one of {', '.join(PRICES)}: {price!r}")
    session = session_of(sweep, session)
    variants = variants_of(sweep, scorer, session.store)
    priced = price_runs(variants.runs, session)
    level = 1 - (1 - confidence) / len(variants.labels) if adjust else confidence
    rows = []
    for label in variants.labels:
        mine = priced[priced["variant"] == label]
        low = lower_bound(mine["value"], mine["case"], level)
        rows.append({
            "variant": label,
            "mean": float(mine["value"].mean()),
            "lower_bound": low,
            "passes": bool(low >= min_score),
            "cases": int(mine["case"].nunique()),
            "runs": len(mine),
            **{f"per_1k_{p}": per_thousand(mine, p) for p in PRICES},
            **{f"knob:{k}": v for k, v in variants.knobs[label].items()},
        })
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    table = pd.DataFrame(rows).sort_values(f"per_1k_{price}", kind="stable",
                                           na_position="last").reset_index(drop=True)
    winners = table[table["passes"] & table[f"per_1k_{price}"].notna()]
    best = None if winners.empty else str(winners.iloc[0]["variant"])
    return Cheapest(variants.scorer, float(min_score), confidence, price, best, table)
