"""Runs with one scorer's stored values and pass/fail, for the statistics of issue 12
(``wb.compare_runs``, ``wb.stability``, ``wb.agreement``, ``wb.export_finetune``).

Reads stored scores only: nothing is scored or sent here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.scoring.columns import PREFIX, add_score_columns
from workbench.scoring.engine import runs_to_score
from workbench.scoring.table import latest_ids

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["scored_frame", "stored_passes", "case_of", "scorer_name"]


def scorer_name(scorer: str) -> str:
    """``"score:judge"`` or ``"judge"`` -> ``"judge"``."""
    return scorer[len(PREFIX):] if scorer.startswith(PREFIX) else scorer


def scored_frame(data: Any, scorer: str | None, store: AnyStore, what: str) -> pd.DataFrame:
    """The ok chat runs of ``data`` with their ``score:`` columns and, for ``scorer``, a
    ``passed`` column (pandas boolean, NA where the run has no score)."""
    frame: pd.DataFrame = runs_to_score(data, store)
    frame = add_score_columns(
        frame.drop(columns=[c for c in frame.columns if str(c).startswith(PREFIX)]),
        store,
    )
    if scorer is None:
        return frame
    name = scorer_name(scorer)
    column = PREFIX + name
    if column not in frame.columns:
        raise InvalidInputError(
            f"the {what} has no {column!r} scores: score it first with wb.score(..., scorers)"
            " or pass scorers=[...] to the sweep"
        )
    passes = stored_passes(store, name)
    frame = frame.copy()
    frame["passed"] = frame["run_id"].map(passes).astype("boolean")
    return frame


def stored_passes(store: AnyStore, name: str) -> dict[str, bool | None]:
    """run_id -> passed of the latest definition of scorer ``name``. A score stored
    without a verdict passes when its value is 1 or more (a yes/no scorer's 1)."""
    scorer_id = latest_ids(store).get(name)
    if scorer_id is None:
        return {}
    out: dict[str, bool | None] = {}
    for run_id, value, passed in store.score_values(scorer_id):
        if passed is not None:
            out[run_id] = bool(passed)
        else:
            out[run_id] = None if value is None else bool(value >= 1)
    return out


def case_of(row: Any) -> str:
    """The test case of a run: its ``item_id`` when it has one, else its template
    variables as canonical JSON, else its prompt."""
    item = row.get("item_id")
    if isinstance(item, str) and item:
        return item
    variables = row.get("variables")
    if isinstance(variables, str) and variables:
        try:
            return json.dumps(json.loads(variables), sort_keys=True)
        except ValueError:
            return variables
    prompt = row.get("prompt")
    return str(prompt) if isinstance(prompt, str) else ""
