"""The ``scores`` table of the store (migration m005_scores): writing and reading scores.

Kept beside the scoring code rather than in store.py: it is the scoring package's own
table, reached through the store's serialised connection (``_query``/``_write``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ..store import ExperimentStore

__all__ = ["SCORE_COLUMNS", "write_scores", "scored_run_ids", "read_scores", "latest_ids"]

SCORE_COLUMNS = (
    "run_id",
    "scorer",
    "scorer_id",
    "value",
    "passed",
    "reason",
    "judge_run_id",
    "created_at",
)
_INSERT = (
    f"INSERT OR REPLACE INTO scores ({', '.join(SCORE_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(SCORE_COLUMNS))})"
)
_CHUNK = 500  # bound parameters per IN (...), under SQLite's historical 999


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def write_scores(store: ExperimentStore, rows: Sequence[tuple[Any, ...]]) -> None:
    """Store score rows (in SCORE_COLUMNS order) in one transaction; a row for the same
    (scorer_id, run_id) replaces the old one (that is what ``fresh=True`` asks for)."""
    if rows:
        store._write(lambda conn: conn.executemany(_INSERT, rows))


def scored_run_ids(store: ExperimentStore, scorer_id: str) -> set[str]:
    """The runs that already have a score from ``scorer_id``."""
    rows = store._query("SELECT run_id FROM scores WHERE scorer_id = ?", (scorer_id,))
    return {run_id for (run_id,) in rows}


def read_scores(
    store: ExperimentStore,
    *,
    scorer_ids: Iterable[str] | None = None,
    run_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Scores as a DataFrame (SCORE_COLUMNS), oldest first; filtered when asked."""
    sql = f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores"
    clauses: list[str] = []
    params: list[Any] = []
    if scorer_ids is not None:
        ids = list(scorer_ids)
        clauses.append(f"scorer_id IN ({', '.join('?' * len(ids))})")
        params += ids
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    if run_ids is None:
        rows = store._query(sql + where, params)
    else:
        wanted = list(dict.fromkeys(run_ids))
        rows = []
        glue = " AND " if where else " WHERE "
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows += store._query(
                f"{sql}{where}{glue}run_id IN ({', '.join('?' * len(chunk))})", [*params, *chunk]
            )
    return scores_frame(rows)


def scores_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Score rows as typed columns: value float64, passed boolean, created_at UTC."""
    import pandas as pd

    columns = list(zip(*rows, strict=True)) if rows else [()] * len(SCORE_COLUMNS)
    data = dict(zip(SCORE_COLUMNS, columns, strict=True))
    frame = pd.DataFrame(
        {
            "run_id": pd.Series(data["run_id"], dtype=object),
            "scorer": pd.Series(data["scorer"], dtype=object),
            "scorer_id": pd.Series(data["scorer_id"], dtype=object),
            "value": pd.Series(data["value"], dtype="float64"),
            "passed": pd.Series(
                [None if p is None else bool(p) for p in data["passed"]], dtype="boolean"
            ),
            "reason": pd.Series(data["reason"], dtype=object),
            "judge_run_id": pd.Series(data["judge_run_id"], dtype=object),
            "created_at": pd.to_datetime(pd.Series(data["created_at"], dtype=object),
                                         utc=True, format="ISO8601"),
        }
    )
    return frame.sort_values(["created_at", "scorer_id", "run_id"], kind="stable",
                             ignore_index=True)


def latest_ids(store: ExperimentStore) -> dict[str, str]:
    """Each scorer name's latest definition: name -> the scorer_id scored most recently."""
    rows = store._query(
        "SELECT scorer, scorer_id, MAX(created_at) FROM scores GROUP BY scorer_id"
    )
    latest: dict[str, tuple[str, str]] = {}
    for name, scorer_id, at in rows:
        if name not in latest or at > latest[name][1]:
            latest[name] = (scorer_id, at)
    return {name: scorer_id for name, (scorer_id, _) in latest.items()}
