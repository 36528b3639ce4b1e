"""``wb.cascade``: replay a cascade from stored runs, with no new calls. Each case is
answered by the first variant in ``order``; when its answer fails the ``accept`` test it
is escalated to the next, and the last variant's answer is taken as it is. The result is
the cascade's score and cost per 1,000 calls against always using the last (strongest)
variant, with intervals on both differences, clustered by case.

A cascade's cost counts every variant it asked: an escalated case pays for the cheap
answer it threw away too.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.core.money import NO_MATHS_CLASS, format_money
from workbench.decide.costs import PRICES, price_runs
from workbench.decide.variants import find_variant, session_of, variants_of
from workbench.scoring.base import as_scorer
from workbench.scoring.calls import ModelCalls
from workbench.scoring.engine import score_within
from workbench.scoring.scored import scored_frame, scorer_name, stored_passes

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.session import Session

__all__ = ["Cascade", "cascade"]


@dataclass
class Cascade:
    """The result of :func:`cascade`. ``df`` has one row per answered (case, sample):
    which variant answered, the cascade's and the strong variant's score and cost."""

    order: list[str]
    scorer: str
    price: str
    score: float
    strong_score: float
    score_difference: tuple[float, float, float]  # estimate, low, high (cascade - strong)
    per_1k: float
    strong_per_1k: float
    saving: tuple[float, float, float]  # share of the strong variant's cost saved
    escalated: float
    confidence: float
    df: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        d, low, high = self.score_difference
        s, s_low, s_high = self.saving
        saved = ("no saving to measure (the last variant cost nothing)" if math.isnan(s)
                 else f"{s:.0%} saved ({s_low:.0%} to {s_high:.0%})")
        return (
            f"Cascade {' -> '.join(self.order)}: {self.scorer} {self.score:.3f} vs"
            f" {self.strong_score:.3f} always using the last ({d:+.3f},"
            f" {self.confidence:.0%} interval {low:+.3f} to {high:+.3f}); cost"
            f" {format_money(self.per_1k)} vs {format_money(self.strong_per_1k)} per 1,000"
            f" calls at {self.price} price, {saved};"
            f" {self.escalated:.0%} of cases escalated."
        )

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        notes = "".join(f"<div style='color:var(--jp-warn-color1)'>{html.escape(n)}</div>"
                        for n in self.notes)
        return (f"<div class='{NO_MATHS_CLASS}' style='color:var(--jp-ui-font-color1)'>"
                f"{html.escape(self.summary())}{notes}</div>")


def _accepted(accept: Any, frame: pd.DataFrame, session: Session) -> dict[str, bool | None]:
    """run_id -> whether ``accept`` passes the run: a stored scorer by name, or a scorer
    (``wb.scorers.is_json()``, a function, a judge) scored on these runs now."""
    if isinstance(accept, str):
        return stored_passes(session.store, scorer_name(accept))

    chosen = as_scorer(accept)
    score_within(frame, chosen, calls=ModelCalls(session))  # stored; a second replay reads them
    return stored_passes(session.store, chosen.name)


def cascade(
    sweep: Any,
    *,
    order: Sequence[Any],
    accept: Any,
    scorer: str,
    price: str = "list",
    confidence: float = 0.95,
    session: Session,
) -> Cascade:
    """Replay the cascade ``order`` (variants named by knob values, cheapest first, e.g.
    ``[{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}]``) on the stored runs of ``sweep``:
    a case goes to the next variant when ``accept`` fails on the answer (a scorer name,
    or a scorer such as ``wb.scorers.is_json()``). ``scorer`` names the stored score the
    cascade is judged by. Sends no generation call."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)
    from scipy import stats  # deferred: keeps import workbench light (scipy ~0.9 s)

    if not isinstance(order, Sequence) or isinstance(order, (str, bytes)) or len(order) < 2:
        raise InvalidInputError("order needs two variants or more, cheapest first, e.g."
                                " order=[{'model': 'gpt-4o-mini'}, {'model': 'gpt-4o'}]")
    if price not in PRICES:
        raise InvalidInputError(f"price must be one of {', '.join(PRICES)}: {price!r}")
    session = session_of(sweep, session)
    variants = variants_of(sweep, scorer, session.store)
    labels = [find_variant(variants, o, what="order") for o in order]
    priced = price_runs(variants.runs, session)
    frame = scored_frame(sweep, None, session.store, "sweep")
    keyed = {label: priced[priced["variant"] == label].set_index(["case", "sample_index"])
             for label in labels}
    keys = set(keyed[labels[0]].index)
    for label in labels[1:]:
        keys &= set(keyed[label].index)
    notes = []
    dropped = len(keyed[labels[0]]) - len(keys)
    if dropped:
        notes.append(f"{dropped} runs of {labels[0]} have no partner in every variant: left out")
    if not keys:
        raise InvalidInputError("no test case was answered by every variant in order")
    verdicts: dict[str, bool | None] = {}
    for label in labels[:-1]:
        ids = set(keyed[label]["run_id"])
        verdicts.update(_accepted(accept, frame[frame["run_id"].isin(ids)], session))
    rows = []
    column = "usd_" + price
    for key in sorted(keys, key=str):
        cost = 0.0
        for label in labels:
            run = keyed[label].loc[key]
            cost += float(run[column])
            if label == labels[-1] or verdicts.get(str(run["run_id"])) is True:
                break
        strong = keyed[labels[-1]].loc[key]
        rows.append({"case": key[0], "sample_index": key[1], "answered_by": label,
                     "score": float(run["value"]), "cost": cost,
                     "strong_score": float(strong["value"]),
                     "strong_cost": float(strong[column])})
    table = pd.DataFrame(rows)
    by_case = table.groupby("case").mean(numeric_only=True)
    d = (by_case["score"] - by_case["strong_score"]).to_numpy()
    diff = _t_interval(d, confidence, stats, np)
    saved = (1 - by_case["cost"] / by_case["strong_cost"]).to_numpy()
    strong_total = float(by_case["strong_cost"].mean())
    # The share saved is a ratio of means; its interval comes from the per-case savings
    # weighted by the strong variant's cost (the delta method's leading term).
    weights = by_case["strong_cost"].to_numpy() / strong_total if strong_total else None
    saving = (_t_interval(saved * weights, confidence, stats, np)
              if weights is not None else (math.nan, math.nan, math.nan))
    return Cascade(
        order=labels, scorer=variants.scorer, price=price,
        score=float(table["score"].mean()), strong_score=float(table["strong_score"].mean()),
        score_difference=diff, per_1k=float(table["cost"].mean()) * 1000,
        strong_per_1k=float(table["strong_cost"].mean()) * 1000, saving=saving,
        escalated=float((table["answered_by"] != labels[0]).mean()), confidence=confidence,
        df=table, notes=notes,
    )


def _t_interval(values: Any, confidence: float, stats: Any,
                np: Any) -> tuple[float, float, float]:
    n = len(values)
    mean = float(np.mean(values)) if n else math.nan
    if n < 2 or float(np.std(values)) == 0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half
