"""The store's ``batches`` table (migration m008_runs_mode_and_batches): the ledger of
Batch API submissions, and the renewal of the claim that collecting one holds.

A mixin of SQLiteStore and PostgresStore, written as :mod:`.scores` is: SQL once, each
backend's placeholder put in when a statement is built, no rewriting after.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from workbench.store.dialect import Dialect
from workbench.store.rows import iso_utc

__all__ = ["BATCH_COLUMNS", "BatchTables"]

# The columns of ``batches``, in the order rows are returned (sweeps.batch.ledger's
# BatchRow has one field per column, in this order).
BATCH_COLUMNS = (
    "batch_id",
    "provider",
    "sweep_id",
    "experiment",
    "input_file_id",
    "status",
    "created_at",
    "custom_ids",
    "output_file_id",
    "error_file_id",
    "total",
    "completed",
    "failed",
    "ended_at",
    "collected_at",
    "message",
)


@functools.lru_cache(maxsize=4)
def _select(dialect: Dialect, by: str) -> str:
    order = " ORDER BY created_at, batch_id" if by == "sweep_id" else ""
    return f"SELECT {', '.join(BATCH_COLUMNS)} FROM batches WHERE {by} = {dialect.mark}{order}"


@functools.lru_cache(maxsize=32)
def _update(dialect: Dialect, columns: tuple[str, ...]) -> str:
    sets = ", ".join(f"{name} = {dialect.mark}" for name in columns)
    return f"UPDATE batches SET {sets} WHERE batch_id = {dialect.mark}"


class BatchTables:
    """Batches submitted to a provider's Batch API, as sweeps recorded them."""

    dialect: Dialect

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # the store's, in its own placeholders

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        raise NotImplementedError  # the store's, in its own placeholders

    def put_batch(self, row: Mapping[str, Any]) -> None:
        """Record a batch the API created: a value for every one of ``BATCH_COLUMNS``."""
        if set(row) != set(BATCH_COLUMNS):
            raise ValueError(f"a batch row has the columns {BATCH_COLUMNS}, not {tuple(row)}")
        sql = (
            f"INSERT INTO batches ({', '.join(BATCH_COLUMNS)})"
            f" VALUES ({self.dialect.marks(len(BATCH_COLUMNS))})"
        )
        self._run_many(sql, [tuple(row[name] for name in BATCH_COLUMNS)])

    def update_batch(self, batch_id: str, changes: Mapping[str, Any]) -> int:
        """Set some columns of one batch's row; returns rows changed (0: no such batch)."""
        columns = tuple(changes)
        unknown = [name for name in columns if name not in BATCH_COLUMNS or name == "batch_id"]
        if unknown or not columns:
            raise ValueError(f"cannot set batch column(s) {unknown or '(none)'}")
        values = (*(changes[name] for name in columns), batch_id)
        return self._run_many(_update(self.dialect, columns), [values])

    def batch_rows(
        self, *, batch_id: str | None = None, sweep_id: str | None = None
    ) -> list[tuple[Any, ...]]:
        """The row of one batch, or a sweep's batches oldest first (``BATCH_COLUMNS``)."""
        if (batch_id is None) == (sweep_id is None):
            raise ValueError("give batch_id or sweep_id")
        by, key = ("batch_id", batch_id) if batch_id is not None else ("sweep_id", sweep_id)
        return [tuple(row) for row in self._query(_select(self.dialect, by), (key,))]

    def renew_claim(self, request_hash: str, sample_index: int, run_id: str) -> bool:
        """Keep a claim (see ``claim``) fresh; False when it is no longer this run's (it
        went stale and another took it over)."""
        sql = (
            f"UPDATE claims SET claimed_at = {self.dialect.mark} WHERE request_hash ="
            f" {self.dialect.mark} AND sample_index = {self.dialect.mark} AND run_id ="
            f" {self.dialect.mark}"
        )
        now = iso_utc(datetime.now(timezone.utc))
        return bool(self._run_many(sql, [(now, request_hash, sample_index, run_id)]))
