"""The experiment table on a PostgreSQL server: the team's shared store.

Same tables, named migrations and methods as the SQLite store (:mod:`.sqlite`); every value
is a bound parameter. Migrations run under an advisory lock, so kernels starting at once
migrate once. A lost connection is reopened and the statement retried for a while; past
that, the session keeps refused rows in its fallback file (:mod:`workbench.store.unsaved`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from workbench.core.errors import StoreError
from workbench.core.record import COLUMNS, RunRecord
from workbench.store import queries
from workbench.store.batches import BatchTables
from workbench.store.columnar import (
    PostgresArrowReader,
    runs_frame_from_table,
)
from workbench.store.common import (
    StoreBase,
    check_export_suffix,
    claim_params,
    embedding_rows,
    frame_of_rows,
    newest_by_identity,
    now_iso,
    price_texts,
    prices_from_rows,
    run_filter,
    text_key,
    vector_of,
)
from workbench.store.datasets import DatasetTables
from workbench.store.dialect import POSTGRES, POSTGRES_ADBC
from workbench.store.frames import record_from_row, record_to_row
from workbench.store.messages import one_line
from workbench.store.migrations import MIGRATIONS_TABLE, newer_store_error
from workbench.store.nul import answer_without_nul, refuse_nul_requests
from workbench.store.postgres_schema import apply_pending, has_table
from workbench.store.postgres_schema import unknown as unknown_migrations
from workbench.store.runfiles import write_runs
from workbench.store.scores import ScoreTables
from workbench.store.target import StoreURL

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

T = TypeVar("T")

CONNECT_TIMEOUT_S = 5
# How long a statement keeps trying while the server is unreachable (a restart, a network
# blip) before the store gives up and the row goes to the fallback file.
RECONNECT_S = 20.0

_QUOTED = [f'"{name}"' for name in COLUMNS]
_COLUMN_LIST = ", ".join(_QUOTED)
_INSERT_NEW = f"INSERT INTO runs ({_COLUMN_LIST}) VALUES ({POSTGRES.marks(len(COLUMNS))})"
# After a lost connection: a retried insert whose first COMMIT did land is not an error.
_INSERT = f"{_INSERT_NEW} ON CONFLICT (run_id) DO NOTHING"
_FIX = (
    "start the server, or check the URL in WORKBENCH_STORE / [store] url / wb.configure("
    "store=...) and the password (PGPASSWORD, ~/.pgpass or [store] password_env)"
)


class _Unreachable(StoreError):
    """No connection could be opened (server down, network, login): worth retrying."""


class PostgresStore(DatasetTables, ScoreTables, BatchTables, StoreBase):
    """The runs of every experiment in the ``runs`` table of a PostgreSQL database."""

    # Sweeps claim each point here before sending it: two people sweeping the same grid
    # at once send each (request_hash, sample_index) once.
    shared = True
    dialect = POSTGRES

    def __init__(self, url: str | StoreURL, *, password_env: str | None = None) -> None:
        self.url = (url if isinstance(url, StoreURL) else StoreURL.parse(url)).with_password_env(
            password_env
        )
        self.path: Path | None = None  # not a file: fallback rows go to the working folder
        self.reconnect_s = RECONNECT_S
        self._lock = threading.RLock()
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        self._refusal: str | None = None
        self._last_prices: dict[str, tuple[Decimal, Decimal, Decimal | None]] | None = None
        self._arrow = PostgresArrowReader(self.url.uri_with_password())
        self._connection()  # a server that is down or a wrong password: fail here
        self._run(self._migrate)
        self.prices()  # kept for pricing an answer that arrives while the server is away

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        with self._lock:
            conn, self._conn, self._closed = self._conn, None, True
            self._arrow.close()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url.masked!r})"

    @property
    def label(self) -> str:
        return self.url.masked

    # ------------------------------------------------------------------ schema

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        if newer := unknown_migrations(conn):
            self._refusal = str(newer_store_error(self.url.masked, newer))
            return
        import psycopg  # deferred: keeps import workbench light (psycopg ~0.1 s)

        try:
            apply_pending(conn, self.url.masked)
        except psycopg.errors.InsufficientPrivilege as exc:
            if has_table(conn, MIGRATIONS_TABLE) and has_table(conn, "runs"):
                # A read-only role on an older schema: reading and replays still work.
                self._refusal = self._read_only_message(exc)
                return
            raise StoreError(
                f"cannot create the workbench tables in {self.url.masked}"
                f" ({self._reason(exc)}): connect as a user who may create tables once"
            ) from exc

    # ------------------------------------------------------------------ runs

    def append(self, record: RunRecord) -> None:
        """Write one run, committed before returning (a replay on a read-only store is
        not logged; the answer still reaches the caller). A NUL in the answer's text,
        which PostgreSQL cannot hold, is kept as ␀ (:mod:`.nul`): the answer was paid."""
        row = answer_without_nul(record_to_row(record))
        if record.cache_hit and self._refusal is not None:
            return
        attempts = 0

        def insert(conn: psycopg.Connection[Any]) -> None:
            # The first try refuses a run_id already there (as SQLite does: a run appended
            # twice is a bug); a retry after a lost connection may find its own row.
            nonlocal attempts
            attempts += 1
            conn.execute(_INSERT_NEW if attempts == 1 else _INSERT, row)

        self._write(insert)

    def check_writable(self, records: Iterable[RunRecord] = ()) -> None:
        """Raise StoreError now if a row could not be written (before a paid call): the
        server is reachable, the role may insert, and no newer workbench migrated it;
        InvalidInputError if a request in ``records`` holds text PostgreSQL refuses (NUL)."""
        refuse_nul_requests(records, self.url.masked)
        if self._refusal is not None:
            raise StoreError(self._refusal)
        import psycopg  # deferred: keeps import workbench light (psycopg ~0.1 s)

        probe = record_to_row(
            RunRecord(
                kind="chat",
                provider="workbench",
                model="write-probe",
                experiment="write-probe",
                request_hash="write-probe",
            )
        )

        def work(conn: psycopg.Connection[Any]) -> list[str]:
            with conn.transaction(force_rollback=True):
                unknown = unknown_migrations(conn)
                if not unknown:
                    conn.execute(_INSERT, probe)
                return unknown

        try:
            unknown = self._run(work)
        except StoreError as exc:
            if isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
                self._refusal = self._read_only_message(exc.__cause__)
                raise StoreError(self._refusal) from exc
            raise
        if unknown:
            self._refusal = str(newer_store_error(self.url.masked, unknown))
            raise StoreError(self._refusal)

    def find_ok(self, request_hash: str, sample_index: int) -> RunRecord | None:
        rows = self._query(queries.find_ok_sql(POSTGRES), (request_hash, sample_index))
        return record_from_row(rows[0]) if rows else None

    def find_run(self, run_id: str) -> RunRecord | None:
        """The run with this run_id, or None."""
        rows = self._query(queries.find_run_sql(POSTGRES), (run_id,))
        return record_from_row(rows[0]) if rows else None

    def find_ok_many(
        self, identities: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], RunRecord]:
        wanted = set(identities)
        hashes = sorted({request_hash for request_hash, _ in wanted})
        newest: dict[tuple[str, int], Sequence[Any]] = {}
        if hashes:
            rows = self._query(
                f"SELECT {_COLUMN_LIST} FROM runs WHERE status = 'ok'"
                " AND request_hash = ANY(%s) ORDER BY created_at, run_id",
                (hashes,),
            )
            newest = newest_by_identity(rows, wanted)
        return {key: record_from_row(row) for key, row in newest.items()}

    def runs(
        self,
        experiment: str | None = None,
        sweep_id: str | None = None,
        status: str | None = None,
        since: datetime | str | None = None,
        limit: int | None = None,
        kind: str | None = None,
        user: str | None = None,
    ) -> pd.DataFrame:
        """The runs as a DataFrame ordered by run_id, with the same dtypes as SQLite's."""
        wanted = run_filter(experiment, sweep_id, status, since, kind, user)
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        self._connection()  # a closed store or a server that is down says so in one line
        # Column-wise: the ADBC driver reads PostgreSQL's binary COPY into Arrow.
        table = self._arrow.read(wanted.where(POSTGRES_ADBC), wanted.params, limit)
        if table is not None:
            return runs_frame_from_table(table)
        sql, params = wanted.select(POSTGRES, limit)
        return frame_of_rows(lambda: self._query(sql, params), newest_first=limit is not None)

    def mean_completion_tokens(self, model: str, experiment: str | None = None) -> float | None:
        ((mean,),) = self._query(*queries.mean_tokens_query(POSTGRES, model, experiment))
        return None if mean is None else float(mean)

    # ------------------------------------------------------------------ files

    def export(
        self, path: str | Any, experiment: str | None = None, *, keep_formulas: bool = False
    ) -> Path:
        """Write the runs to .parquet, .csv or .jsonl (see the SQLite store's export)."""
        target = Path(path)
        check_export_suffix(target, "export to")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_runs(self.runs(experiment=experiment), target, keep_formulas=keep_formulas)
            self._export_datasets(target, experiment)
        except ImportError as exc:
            raise StoreError(f"exporting {target} needs pyarrow: pip install pyarrow") from exc
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return target

    def add_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert rows in ``record.COLUMNS`` order, skipping run_ids already here: COPY
        into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING."""
        if not rows:
            return 0
        rows = [answer_without_nul(row) for row in rows]  # a paid answer (unsaved file)

        def insert(conn: psycopg.Connection[Any]) -> int:
            conn.execute(
                "CREATE TEMPORARY TABLE incoming_runs (LIKE runs INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            with conn.cursor() as cur:
                with cur.copy(f"COPY incoming_runs ({_COLUMN_LIST}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(
                    f"INSERT INTO runs ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM"
                    " incoming_runs ON CONFLICT (run_id) DO NOTHING"
                )
                return max(cur.rowcount, 0)

        return self._write(insert)

    # ------------------------------------------------------------------ claims

    def claim(self, request_hash: str, sample_index: int, run_id: str, stale_s: float) -> bool:
        params = claim_params(request_hash, sample_index, run_id, stale_s)
        claim = queries.claim_sql(POSTGRES)
        rows = self._write(lambda conn: conn.execute(claim, params).fetchall())
        return bool(rows)

    def release(self, request_hash: str, sample_index: int, run_id: str) -> None:
        params = (request_hash, sample_index, run_id)
        self._write(lambda conn: conn.execute(queries.release_sql(POSTGRES), params))

    # ------------------------------------------------------------------ prices

    def set_price(
        self,
        model: str,
        input_per_mtok: Decimal,
        output_per_mtok: Decimal,
        cached_input_per_mtok: Decimal | None = None,
    ) -> None:
        texts = price_texts([input_per_mtok, output_per_mtok, cached_input_per_mtok])
        params = (model, *texts, now_iso())
        self._write(lambda conn: conn.execute(queries.upsert_price_sql(POSTGRES), params))

    def prices(self) -> dict[str, tuple[Decimal, Decimal, Decimal | None]]:
        """Custom prices. The cost of an answer is worked out after it arrives: with the
        server gone by then, the prices read before the call price it, and the answer
        (and its row, in the fallback file) is not lost to a failed read."""
        try:
            rows = self._query(queries.PRICES_SQL)
        except _Unreachable:
            if self._last_prices is None:
                raise
            return dict(self._last_prices)
        self._last_prices = prices_from_rows(rows)
        return dict(self._last_prices)

    # ------------------------------------------------------------------ embeddings

    def get_embeddings(
        self, model: str, dimensions: int | None, texts: Sequence[str]
    ) -> dict[str, list[float]]:
        by_key = {text_key(text): text for text in texts}
        if not by_key:
            return {}
        rows = self._query(
            "SELECT text_sha256, vector FROM embeddings WHERE model = %s AND dimensions = %s"
            " AND text_sha256 = ANY(%s)",
            (model, dimensions or 0, list(by_key)),
        )
        return {by_key[key]: vector_of(blob) for key, blob in rows}

    def put_embeddings(
        self, model: str, dimensions: int | None, vectors: Mapping[str, Sequence[float]]
    ) -> None:
        rows = embedding_rows(model, dimensions, vectors, now_iso())

        def put(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO embeddings (model, dimensions, text_sha256, vector, created_at)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (model, dimensions, text_sha256)"
                    " DO UPDATE SET vector = excluded.vector, created_at = excluded.created_at",
                    rows,
                )

        self._write(put)

    # ------------------------------------------------------------------ shared SQL

    def select_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of one statement built in ``self.dialect`` (psycopg's ``%s``)."""
        return self._query(sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in its own transaction; returns the rows it changed."""
        return self.execute_many(sql, [params])

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """One statement per row of parameters, all in one transaction; rows changed."""
        return self._run_many(sql, rows)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0

        def work(conn: psycopg.Connection[Any]) -> int:
            with conn.cursor() as cur:
                cur.executemany(sql, rows)
                return max(cur.rowcount, 0)

        return self._write(work)

    def data_version(self) -> int | None:
        """None: PostgreSQL has no cheap counter of other sessions' commits, so a reader
        caching a table asks the table itself each time (see scoring/table.py)."""
        return None

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg  # deferred: keeps import workbench light (psycopg ~0.1 s)

        with self._lock:
            if self._closed:
                raise StoreError(f"the workbench store {self.url.masked} is closed")
            if self._conn is None or self._conn.closed:
                try:
                    self._conn = psycopg.connect(
                        self.url.conninfo(),
                        password=self.url.password,
                        autocommit=True,
                        connect_timeout=CONNECT_TIMEOUT_S,
                        application_name="prompt-workbench",
                    )
                except psycopg.Error as exc:
                    raise _Unreachable(str(self._error(exc))) from None
            return self._conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._run(lambda conn: conn.execute(sql, params).fetchall())

    def _write(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        if self._refusal is not None:
            raise StoreError(self._refusal)

        def transaction(conn: psycopg.Connection[Any]) -> T:
            with conn.transaction():
                return work(conn)

        return self._run(transaction)

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work(connection)`` under the lock; a lost connection is reopened and the work
        retried for up to ``reconnect_s`` seconds. Errors become one-line StoreErrors."""
        import psycopg  # deferred: keeps import workbench light (psycopg ~0.1 s)

        give_up = time.monotonic() + self.reconnect_s
        delay = 0.1
        with self._lock:
            while True:
                try:
                    return work(self._connection())
                except _Unreachable as exc:
                    # A wrong password will not fix itself: say so at once.
                    if time.monotonic() >= give_up or "cannot log in" in str(exc):
                        raise
                except psycopg.OperationalError as exc:
                    if self._conn is not None and not self._conn.closed:
                        raise self._error(exc) from exc  # a query error, not a lost link
                    self._conn = None
                    if time.monotonic() >= give_up:
                        raise self._error(exc) from exc
                except psycopg.Error as exc:
                    raise self._error(exc) from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _reason(self, exc: BaseException) -> str:
        return self.url.scrub(one_line(exc))

    def _error(self, exc: BaseException) -> StoreError:
        """One line naming the masked URL, what went wrong and the fix."""
        import psycopg  # deferred: keeps import workbench light (psycopg ~0.1 s)

        reason = self._reason(exc)
        lowered = reason.lower()
        if isinstance(exc, psycopg.OperationalError):
            if "password" in lowered or "authentication" in lowered:
                return StoreError(
                    f"cannot log in to the workbench store {self.url.masked} ({reason}): set"
                    " the password in PGPASSWORD, ~/.pgpass or the variable [store]"
                    " password_env names in workbench.toml"
                )
            return StoreError(
                f"cannot reach the workbench store {self.url.masked} ({reason}): {_FIX}"
            )
        if isinstance(exc, psycopg.errors.UniqueViolation) and "runs_pkey" in lowered:
            return StoreError(
                f"the workbench store {self.url.masked} already holds this run_id ({reason})"
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            error = StoreError(self._read_only_message(exc))
            error.__cause__ = exc
            return error
        return StoreError(f"the workbench store {self.url.masked} failed: {reason}")

    def _read_only_message(self, exc: BaseException) -> str:
        return (
            f"cannot write the workbench store {self.url.masked} ({self._reason(exc)}): this"
            " role may only read it (replays still work); ask for INSERT on its tables, or"
            " point WORKBENCH_STORE (or wb.configure(store=...)) at a store you may write"
        )
