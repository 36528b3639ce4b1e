"""``wb.check``: a regression gate on scores for pytest and nbval-checked notebooks.

It reads stored scores only (the ``score:<name>`` columns), so in a replayed notebook or
a test on a committed store it sends nothing and costs nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from workbench.core.checks import number
from workbench.core.errors import InvalidInputError
from workbench.decide.stats import Interval, difference_interval, mean_interval
from workbench.scoring.columns import PREFIX, add_score_columns
from workbench.scoring.engine import runs_to_score

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["check", "scored_values"]


def scored_values(data: Any, scorer: str, store: AnyStore, what: str) -> list[float]:
    """The non-missing values of ``score:<scorer>`` over the runs of ``data``."""
    frame: pd.DataFrame = runs_to_score(data, store)
    column = scorer if scorer.startswith(PREFIX) else PREFIX + scorer
    if column not in frame.columns:
        frame = add_score_columns(frame.drop(
            columns=[c for c in frame.columns if str(c).startswith(PREFIX)]), store)
    if column not in frame.columns:
        raise InvalidInputError(
            f"the {what} has no {column!r} scores: score it first with wb.score(..., scorers)"
            " or pass scorers=[...] to the sweep"
        )
    values = frame[column].dropna().astype("float64").tolist()
    if not values:
        raise InvalidInputError(f"every {column!r} score of the {what} is missing (None)")
    return [float(v) for v in values]


def check(
    candidate: Any,
    *,
    scorer: str,
    baseline: Any = None,
    min_score: float | None = None,
    max_drop: float | None = None,
    store: AnyStore,
) -> None:
    """Raise AssertionError, in one line, when the candidate's mean score is below
    ``min_score`` or more than ``max_drop`` below the baseline's mean."""
    if min_score is None and max_drop is None:
        raise InvalidInputError("wb.check needs min_score=..., max_drop=... or both")
    if max_drop is not None:
        number("max_drop", max_drop, low=0)
        if baseline is None:
            raise InvalidInputError("max_drop compares with a baseline: pass baseline=...")
    if min_score is not None:
        number("min_score", min_score)
    mine = scored_values(candidate, scorer, store, "candidate")
    here = mean_interval(mine)
    failures = []
    line = f"{scorer}: candidate mean {_shown(here)} over {here.n} runs"
    if min_score is not None and here.estimate < min_score:
        failures.append(f"below min_score {min_score:g}")
    if baseline is not None:
        theirs = scored_values(baseline, scorer, store, "baseline")
        base = mean_interval(theirs)
        diff = difference_interval(mine, theirs)
        line += (
            f", baseline mean {_shown(base)} over {base.n} runs, difference"
            f" {_shown(diff)}"
        )
        if max_drop is not None and diff.estimate < -max_drop:
            failures.append(f"drop of {-diff.estimate:.3g} above max_drop {max_drop:g}")
    if failures:
        raise AssertionError(f"{line}: {'; '.join(failures)} (95% intervals)")


def _shown(interval: Interval) -> str:
    if math.isnan(interval.low):
        return f"{interval.estimate:.3g}"
    return str(interval)
