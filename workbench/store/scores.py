"""The scoring and review tables (migrations m007_scores and m011_reviews): ``scores``,
``score_history`` and ``preferences``, the same on both backends.

A mixin of SQLiteStore and PostgresStore. Its SQL is written once, with each backend's
own placeholder (``dialect.mark``) put in when the statement is built: nothing is
rewritten after the fact. The backends give it ``_query`` (rows of one statement) and
``_run_many`` (one statement per row of parameters, in one transaction).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.store.dialect import Dialect

__all__ = ["SCORE_COLUMNS", "HISTORY_COLUMNS", "PREFERENCE_COLUMNS", "ScoreTables"]

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
HISTORY_COLUMNS = (*SCORE_COLUMNS, "replaced_at")
PREFERENCE_COLUMNS = ("baseline_run_id", "candidate_run_id", "winner", "rater", "reason",
                      "created_at")
_RUN_TEXT_CHUNK = 500  # run ids per IN (...): below SQLite's bound on parameters


@dataclass(frozen=True)
class _Statements:
    """The tables' statements in one dialect."""

    put_scores: str
    score_rows: str
    scorer_score_rows: str
    score_count: str
    scorer_ids: str
    score_values: str
    keep_history: str
    history_rows: str
    run_history_rows: str
    put_preference: str
    preference_rows: str


@functools.lru_cache(maxsize=4)
def _statements(dialect: Dialect) -> _Statements:
    p = dialect.mark
    scores = ", ".join(SCORE_COLUMNS)
    history = ", ".join(HISTORY_COLUMNS)
    return _Statements(
        # Portable upsert (SQLite >= 3.24, PostgreSQL): a new score of a (scorer_id,
        # run_id) replaces the old one, what fresh=True asks for.
        put_scores=(
            f"INSERT INTO scores ({scores}) VALUES ({dialect.marks(len(SCORE_COLUMNS))})"
            " ON CONFLICT (scorer_id, run_id) DO UPDATE SET "
            + ", ".join(
                f"{c} = excluded.{c}" for c in SCORE_COLUMNS if c not in ("scorer_id", "run_id")
            )
        ),
        score_rows=f"SELECT {scores} FROM scores ORDER BY created_at",
        scorer_score_rows=(
            f"SELECT {scores} FROM scores WHERE scorer_id = {p} ORDER BY created_at"
        ),
        score_count=f"SELECT COUNT(*), MAX(created_at) FROM scores WHERE scorer_id = {p}",
        # A scorer_id names one scorer: grouping by both is grouping by scorer_id.
        scorer_ids="SELECT scorer, scorer_id, MAX(created_at) FROM scores"
        " GROUP BY scorer, scorer_id",
        score_values=f"SELECT run_id, value, passed FROM scores WHERE scorer_id = {p}",
        keep_history=(
            f"INSERT INTO score_history ({history})"
            f" SELECT {scores}, {p} FROM scores WHERE scorer_id = {p} AND run_id = {p}"
        ),
        history_rows=f"SELECT {history} FROM score_history ORDER BY replaced_at",
        run_history_rows=(
            f"SELECT {history} FROM score_history WHERE run_id = {p} ORDER BY replaced_at"
        ),
        put_preference=(
            f"INSERT INTO preferences ({', '.join(PREFERENCE_COLUMNS)})"
            f" VALUES ({dialect.marks(len(PREFERENCE_COLUMNS))})"
        ),
        preference_rows=(
            f"SELECT {', '.join(PREFERENCE_COLUMNS)} FROM preferences"
            f" ORDER BY created_at, {dialect.row_order}"
        ),
    )


class ScoreTables:
    """Scores, replaced scores and pairwise preferences kept in the store."""

    dialect: Dialect

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # the store's, in its own placeholders

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        raise NotImplementedError  # the store's, in its own placeholders

    @property
    def _sql(self) -> _Statements:
        return _statements(self.dialect)

    # -- scores
    def put_scores(self, rows: Sequence[Sequence[Any]]) -> int:
        """Store score rows (``SCORE_COLUMNS`` order) in one transaction; a row for a
        (scorer_id, run_id) already there replaces it. Returns rows written."""
        if not rows:
            return 0
        return self._run_many(self._sql.put_scores, rows)

    def score_rows(self, scorer_id: str | None = None) -> list[tuple[Any, ...]]:
        """Every score (of one scorer id), ``SCORE_COLUMNS`` order, oldest first."""
        if scorer_id is None:
            return self._query(self._sql.score_rows)
        return self._query(self._sql.scorer_score_rows, (scorer_id,))

    def score_count(self, scorer_id: str) -> tuple[int, str | None]:
        """How many scores ``scorer_id`` has stored and the newest one's created_at."""
        ((count, newest),) = self._query(self._sql.score_count, (scorer_id,))
        return int(count), newest

    def scorer_ids(self) -> list[tuple[str, str, str]]:
        """(scorer name, scorer id, newest created_at) of every scorer that has scored."""
        return [tuple(row) for row in self._query(self._sql.scorer_ids)]

    def score_values(self, scorer_id: str) -> list[tuple[str, float | None, int | None]]:
        """(run_id, value, passed) of every score of ``scorer_id`` (passed 0/1/None)."""
        return [tuple(row) for row in self._query(self._sql.score_values, (scorer_id,))]

    # -- review: replaced scores and preferences
    def keep_score_history(self, scorer_id: str, run_id: str, replaced_at: str) -> int:
        """Copy the score of (scorer_id, run_id), if there is one, into score_history as
        replaced at ``replaced_at``; returns rows copied (0 or 1)."""
        return self._run_many(self._sql.keep_history, [(replaced_at, scorer_id, run_id)])

    def score_history_rows(self, run_id: str | None = None) -> list[tuple[Any, ...]]:
        """Replaced scores (of one run), ``HISTORY_COLUMNS`` order, oldest first."""
        if run_id is None:
            return self._query(self._sql.history_rows)
        return self._query(self._sql.run_history_rows, (run_id,))

    def put_preference(self, row: Sequence[Any]) -> None:
        """Append one preference (``PREFERENCE_COLUMNS`` order)."""
        self._run_many(self._sql.put_preference, [row])

    def preference_rows(self) -> list[tuple[Any, ...]]:
        """Every preference, ``PREFERENCE_COLUMNS`` order, in the order they were given."""
        return self._query(self._sql.preference_rows)

    def run_texts(self, run_ids: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
        """(run_id, prompt, output) of the given runs, in their order (ids not found are
        left out), without reading the whole table."""
        found: dict[str, tuple[str, str | None, str | None]] = {}
        for start in range(0, len(run_ids), _RUN_TEXT_CHUNK):
            chunk = list(run_ids[start:start + _RUN_TEXT_CHUNK])
            sql = (
                "SELECT run_id, prompt, output FROM runs"
                f" WHERE run_id IN ({self.dialect.marks(len(chunk))})"
            )
            for row in self._query(sql, chunk):
                found[row[0]] = (row[0], row[1], row[2])
        return [found[r] for r in run_ids if r in found]
