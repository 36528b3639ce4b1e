"""The statements both stores run on the runs, claims and prices tables, each built for one
:class:`~.dialect.Dialect` with that driver's placeholders as it is written (and cached per
dialect); the runs filters as a :class:`RunFilter`, which becomes SQL only in the dialect
of the store (or reader) that runs it. Nothing here scans or rewrites SQL text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from workbench.core.record import COLUMNS
from workbench.store.dialect import Dialect

__all__ = [
    "COLUMN_LIST",
    "PRICES_SQL",
    "RunFilter",
    "find_ok_sql",
    "find_run_sql",
    "upsert_price_sql",
    "claim_sql",
    "release_sql",
    "mean_tokens_query",
]

# Quoted: "user" is a reserved word in PostgreSQL (SQLite takes it either way).
COLUMN_LIST = ", ".join(f'"{name}"' for name in COLUMNS)
PRICES_SQL = (
    "SELECT model, input_per_mtok, output_per_mtok, cached_input_per_mtok"
    " FROM prices ORDER BY model"
)


@functools.lru_cache(maxsize=8)
def find_ok_sql(dialect: Dialect) -> str:
    """The newest ok run of (request_hash, sample_index)."""
    return (
        f"SELECT {COLUMN_LIST} FROM runs WHERE request_hash = {dialect.param(1)}"
        f" AND sample_index = {dialect.param(2)} AND status = 'ok'"
        " ORDER BY created_at DESC, run_id DESC LIMIT 1"
    )


@functools.lru_cache(maxsize=8)
def find_run_sql(dialect: Dialect) -> str:
    return f"SELECT {COLUMN_LIST} FROM runs WHERE run_id = {dialect.param(1)}"


@functools.lru_cache(maxsize=8)
def upsert_price_sql(dialect: Dialect) -> str:
    """(model, input, output, cached input, updated_at): a model priced again takes the new."""
    return (
        "INSERT INTO prices (model, input_per_mtok, output_per_mtok,"
        f" cached_input_per_mtok, updated_at) VALUES ({dialect.marks(5)})"
        " ON CONFLICT (model) DO UPDATE SET input_per_mtok = excluded.input_per_mtok,"
        " output_per_mtok = excluded.output_per_mtok,"
        " cached_input_per_mtok = excluded.cached_input_per_mtok,"
        " updated_at = excluded.updated_at"
    )


@functools.lru_cache(maxsize=8)
def claim_sql(dialect: Dialect) -> str:
    """Portable (SQLite >= 3.35 and PostgreSQL): a claim is taken when the point is free or
    its claim is stale (a kernel that died mid-call); RETURNING says whether we got it.
    Parameters: common.claim_params."""
    return (
        "INSERT INTO claims (request_hash, sample_index, run_id, claimed_by, claimed_at)"
        f" VALUES ({dialect.marks(5)}) ON CONFLICT (request_hash, sample_index) DO UPDATE"
        " SET run_id = excluded.run_id, claimed_by = excluded.claimed_by,"
        f" claimed_at = excluded.claimed_at WHERE claims.claimed_at < {dialect.param(6)}"
        " RETURNING run_id"
    )


@functools.lru_cache(maxsize=8)
def release_sql(dialect: Dialect) -> str:
    return (
        f"DELETE FROM claims WHERE request_hash = {dialect.param(1)}"
        f" AND sample_index = {dialect.param(2)} AND run_id = {dialect.param(3)}"
    )


@functools.lru_cache(maxsize=16)
def _mean_tokens_sql(dialect: Dialect, by_experiment: bool) -> str:
    sql = (
        "SELECT AVG(completion_tokens) FROM runs WHERE kind = 'chat' AND status = 'ok'"
        f" AND cache_hit = 0 AND completion_tokens IS NOT NULL AND model = {dialect.param(1)}"
    )
    return sql + f" AND experiment = {dialect.param(2)}" if by_experiment else sql


def mean_tokens_query(
    dialect: Dialect, model: str, experiment: str | None
) -> tuple[str, list[Any]]:
    """The query behind ``mean_completion_tokens``: cache hits are left out (they repeat
    an earlier run's numbers and would weight a replayed notebook twice)."""
    params: list[Any] = [model] if experiment is None else [model, experiment]
    return _mean_tokens_sql(dialect, experiment is not None), params


@dataclass(frozen=True)
class RunFilter:
    """Which runs a read wants (built by ``common.run_filter``, which checks the values):
    each condition pairs a quoted column with its comparison, fixed text; ``params`` holds
    the values, one per condition, in the same order, always bound."""

    conditions: tuple[tuple[str, str], ...] = ()
    params: tuple[Any, ...] = ()

    def where(self, dialect: Dialect, first: int = 1) -> str:
        """``" WHERE ..."`` (or ``""``) in ``dialect``, its first parameter at ``first``."""
        return _where(dialect, self.conditions, first)

    def select(self, dialect: Dialect, limit: int | None = None) -> tuple[str, list[Any]]:
        """(SQL, parameters) of the matching runs, all or the newest ``limit`` (those
        newest first)."""
        params = list(self.params)
        sql = f"SELECT {COLUMN_LIST} FROM runs{self.where(dialect)}"
        if limit is not None:
            params.append(limit)
            sql += f" ORDER BY run_id DESC LIMIT {dialect.param(len(params))}"
        return sql, params

    def count(self, dialect: Dialect) -> tuple[str, list[Any]]:
        """(SQL, parameters) counting the matching runs."""
        return f"SELECT COUNT(*) FROM runs{self.where(dialect)}", list(self.params)


@functools.lru_cache(maxsize=256)
def _where(dialect: Dialect, conditions: tuple[tuple[str, str], ...], first: int) -> str:
    clauses = [
        f"{column} {comparison} {dialect.param(first + i)}"
        for i, (column, comparison) in enumerate(conditions)
    ]
    return " WHERE " + " AND ".join(clauses) if clauses else ""
