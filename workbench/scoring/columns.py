"""Scores as columns of a runs table: ``score:<name>`` per scorer name, from the latest
definition of that name (a changed rubric's scores replace the old ones in the view; the
long table ``wb.scores()`` keeps both)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.scoring.table import latest_ids

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["PREFIX", "add_score_columns", "score_columns"]

PREFIX = "score:"


def score_columns(frame: pd.DataFrame) -> list[str]:
    """The ``score:<name>`` columns of a frame, in order."""
    return [str(c) for c in frame.columns if str(c).startswith(PREFIX)]


def add_score_columns(frame: pd.DataFrame, store: AnyStore) -> pd.DataFrame:
    """``frame`` with one float column per scorer name that has scored any of its runs
    (NaN where a run has no score from it). Returns the frame unchanged when none has."""
    if frame.empty or "run_id" not in frame.columns:
        return frame
    latest = latest_ids(store)
    if not latest:
        return frame
    wanted = set(frame["run_id"].tolist())
    added = {}
    for name, scorer_id in sorted(latest.items()):
        rows = store.score_values(scorer_id)
        values = {run_id: value for run_id, value, _ in rows if run_id in wanted}
        if values:
            column = frame["run_id"].map(values).astype("float64")
            added[PREFIX + name] = column
    if not added:
        return frame
    out = frame.copy()
    for column_name, column in added.items():
        out[column_name] = column
    return out
