"""What every store is: the :class:`Store` protocol that the SQLite store
(:class:`~.sqlite.SQLiteStore`) and the PostgreSQL store (:class:`~.postgres.PostgresStore`)
both implement, and the only surface code outside ``store/`` may rely on.

The scores, review and batch tables are reached through methods of their own (written once
for both backends in :mod:`.scores` and :mod:`.batches`). ``select_rows`` / ``execute`` /
``execute_many`` are for the store's own modules: they take SQL built in the store's
``dialect`` (:mod:`.dialect`), its driver's placeholders written in as the statement is
built (``?`` for SQLite, ``%s`` for PostgreSQL), and run it as it is: no store rewrites
SQL text, and every value is a bound parameter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from workbench.core.record import RunRecord
    from workbench.store.dialect import Dialect

__all__ = ["Store"]

Price = tuple[Decimal, Decimal, Decimal | None]


@runtime_checkable
class Store(Protocol):
    """The experiment table and the store's caches, whichever database holds them."""

    # True where several people write at once (sweeps claim points before sending).
    shared: bool
    # The SQL words and placeholder of this store's database and driver: statements sent
    # through select_rows / execute / execute_many are built with it.
    dialect: Dialect

    @property
    def path(self) -> Path | None:
        """The SQLite file; None for a server (fallback rows go to the working folder)."""

    @property
    def label(self) -> str:
        """The store as it may be shown (a path, or a URL with its password masked)."""

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # -- runs
    def append(self, record: RunRecord) -> None: ...

    def check_writable(self, records: Iterable[RunRecord] = ()) -> None: ...

    def find_ok(self, request_hash: str, sample_index: int) -> RunRecord | None: ...

    def find_run(self, run_id: str) -> RunRecord | None: ...

    def find_ok_many(
        self, identities: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], RunRecord]: ...

    def runs(
        self,
        experiment: str | None = None,
        sweep_id: str | None = None,
        status: str | None = None,
        since: datetime | str | None = None,
        limit: int | None = None,
        kind: str | None = None,
        user: str | None = None,
    ) -> pd.DataFrame: ...

    def count(
        self,
        experiment: str | None = None,
        sweep_id: str | None = None,
        status: str | None = None,
        since: datetime | str | None = None,
        limit: int | None = None,
        kind: str | None = None,
        user: str | None = None,
    ) -> int: ...

    def ok_identities(self, sweep_id: str) -> set[tuple[str, int]]: ...

    def mean_completion_tokens(
        self, model: str, experiment: str | None = None
    ) -> float | None: ...

    def add_rows(self, rows: Sequence[tuple[Any, ...]]) -> int: ...

    def export(
        self,
        path: str | os.PathLike[str],
        experiment: str | None = None,
        *,
        keep_formulas: bool = False,
    ) -> Path: ...

    # -- claims on sweep points
    def claim(
        self, request_hash: str, sample_index: int, run_id: str, stale_s: float
    ) -> bool: ...

    def release(self, request_hash: str, sample_index: int, run_id: str) -> None: ...

    # -- prices and embeddings
    def set_price(
        self,
        model: str,
        input_per_mtok: Decimal,
        output_per_mtok: Decimal,
        cached_input_per_mtok: Decimal | None = None,
    ) -> None: ...

    def prices(self) -> dict[str, Price]: ...

    def get_embeddings(
        self, model: str, dimensions: int | None, texts: Sequence[str]
    ) -> dict[str, list[float]]: ...

    def put_embeddings(
        self, model: str, dimensions: int | None, vectors: Mapping[str, Sequence[float]]
    ) -> None: ...

    # -- datasets
    def put_dataset(self, name: str, version: str, expected: str | None, items: str) -> None: ...

    def put_dataset_rows(self, rows: Sequence[tuple[Any, ...]]) -> int: ...

    def get_dataset(
        self, name: str, version: str | None = None
    ) -> tuple[str, str | None, str] | None: ...

    def dataset_rows(
        self, keys: Iterable[tuple[str, str]] | None = None
    ) -> list[tuple[Any, ...]]: ...

    def datasets(self) -> pd.DataFrame: ...

    # -- scores and reviews (store/scores.py, once for both backends)
    def put_scores(self, rows: Sequence[Sequence[Any]]) -> int: ...

    def score_rows(self, scorer_id: str | None = None) -> list[tuple[Any, ...]]: ...

    def score_count(self, scorer_id: str) -> tuple[int, str | None]: ...

    def scorer_ids(self) -> list[tuple[str, str, str]]: ...

    def score_values(self, scorer_id: str) -> list[tuple[str, float | None, int | None]]: ...

    def keep_score_history(self, scorer_id: str, run_id: str, replaced_at: str) -> int: ...

    def score_history_rows(self, run_id: str | None = None) -> list[tuple[Any, ...]]: ...

    def put_preference(self, row: Sequence[Any]) -> None: ...

    def preference_rows(self) -> list[tuple[Any, ...]]: ...

    def run_texts(self, run_ids: Sequence[str]) -> list[tuple[str, str | None, str | None]]: ...

    # -- Batch API ledger (store/batches.py, once for both backends)
    def put_batch(self, row: Mapping[str, Any]) -> None: ...

    def update_batch(self, batch_id: str, changes: Mapping[str, Any]) -> int: ...

    def batch_rows(
        self, *, batch_id: str | None = None, sweep_id: str | None = None
    ) -> list[tuple[Any, ...]]: ...

    def renew_claim(self, request_hash: str, sample_index: int, run_id: str) -> bool: ...

    # -- the SQL surface, for the store's own modules (datasets, copying): statements
    # built in ``dialect``, run unchanged. Code outside store/ uses the methods above
    # (tests/test_store_sql_boundary.py)
    def select_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int: ...

    def data_version(self) -> int | None: ...
