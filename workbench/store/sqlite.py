"""The experiment table: every call as one row of a SQLite file, plus the store's caches.

One file (WAL mode) is shared by every kernel and script that points at it; each append is
its own short transaction, so concurrent writers queue briefly instead of losing rows.
Opening, appending, replay and claims load no pandas (~0.9 s a cold first request waited).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.core.errors import StoreError
from workbench.core.record import COLUMNS, RunRecord
from workbench.store import queries
from workbench.store.batches import BatchTables
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
from workbench.store.datasets import DatasetTables, insert_dataset_sql
from workbench.store.dialect import SQLITE
from workbench.store.filled import FilledHint, guard_is_kept, insert_runs, rows_changed
from workbench.store.migrations import newer_store_error, unknown_migrations
from workbench.store.rows import record_from_row, record_to_row
from workbench.store.scores import ScoreTables
from workbench.store.sqlite_file import (
    changed_table_error,
    check_free_space,
    damaged_store_error,
    is_damaged,
    open_database,
    probe_write,
    read_only_store_error,
    with_retries,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SQLiteStore"]

T = TypeVar("T")

# Bound parameters per "IN (...)" query: under SQLite's historical limit of 999.
_CHUNK = 500

_COLUMN_LIST = ", ".join(COLUMNS)
_INSERT = f"INSERT INTO runs ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(COLUMNS))})"
_INSERT_DATASET = insert_dataset_sql(SQLITE)


class SQLiteStore(DatasetTables, ScoreTables, BatchTables, StoreBase):
    """The runs of every experiment in one SQLite file at ``path``.

    Safe to share between threads (calls are serialised on one connection) and between
    processes (SQLite's locking; WAL lets readers run while a writer appends).
    """

    # Sweeps claim points before sending only on a shared store (see dispatch.py).
    shared = False
    dialect = SQLITE

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        opened = open_database(self.path)
        self._conn = opened.conn
        # Why every write is refused before anything is sent (None: writes may go ahead).
        self._refusal: str | None = None
        # Set once any statement found a damaged page: no paid call goes out after that.
        self._damage: str | None = None
        self._scanned_for_damage = False
        self._filled = FilledHint()
        _OPEN_STORES.add(self)
        try:
            if opened.read_only:
                self._refusal = str(read_only_store_error(self.path))
            elif unknown := self._query_with(unknown_migrations):
                self._refusal = str(newer_store_error(self.path, unknown))
            elif not self._query_with(guard_is_kept):
                self._mend(0)  # builds the hint's guard (see filled.py); a full disk: later
            (self._page_size,) = self._query("PRAGMA page_size")[0]
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the connection; later calls raise StoreError. Closing twice is fine.

        The write-ahead log is checkpointed into the file first, so the ``.db`` file alone
        holds every row: a store copied, mailed or committed without its ``-wal`` (after an
        nbconvert run the file was a 4 KB shell and every row sat in the ``-wal``)."""
        with self._lock:
            conn, self._conn = self._conn, None
        _OPEN_STORES.discard(self)
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                # Keeps the query planner's statistics fresh; cheap when nothing changed.
                conn.execute("PRAGMA optimize")
            with contextlib.suppress(sqlite3.Error):
                # Short wait: another kernel writing or reading keeps its part of the log,
                # and checkpoints it when it closes. A read-only store has nothing to do.
                conn.execute(f"PRAGMA busy_timeout = {_CHECKPOINT_WAIT_MS}")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    @property
    def label(self) -> str:
        """The store as it may be shown (PostgresStore's twin: the URL, password masked)."""
        return str(self.path)

    # ------------------------------------------------------------------ runs

    def append(self, record: RunRecord) -> None:
        """Write one run, committed before returning.

        A replay (``cache_hit``) from a store that refuses writes (read-only, or from a
        newer workbench) is not logged: the answer still reaches the caller, and nothing
        paid is lost without its row.
        """
        row = record_to_row(record)
        if record.cache_hit and self._refusal is not None:
            return
        self._write(lambda conn: insert_runs(conn, _INSERT, (row,), self._filled))

    def check_writable(self, records: Iterable[RunRecord] = ()) -> None:
        """Raise StoreError now if a row could not be written (``records``, the rows about
        to be sent, are PostgreSQL's to check: SQLite keeps any text).

        Called before every paid call, so an answer is not lost after the fact: a read-only
        file (a colleague's store, read-only media) still answers replays but takes no new
        run, and a file can fill its disk, be damaged or be migrated by a newer workbench
        while a session runs, so nothing here is remembered from one call to the next
        except the one full scan for damaged pages. Cost measured on this project's 2-core
        machine: 0.14 ms a call on a small store, 0.23 ms at 200,000 runs (an append is
        0.26 ms); the first call also pays the scan, 0.3-0.6 s at 200,000 runs (178 MB).
        """
        if self._refusal is not None:
            raise StoreError(self._refusal)
        if self._damage is None and not self._scanned_for_damage:
            self._scan_for_damage()
        if self._damage is not None:
            raise StoreError(self._damage)
        check_free_space(self.path)
        self._probe()

    def _scan_for_damage(self) -> None:
        # A damaged page in the middle of the table breaks reads (wb.runs()) while appends,
        # which touch only the last pages, keep working: scan once, before the first paid
        # call of this store object. quick_check reads every page: ~1.7 ms per MB here
        # (0.3 s for 200,000 runs), too slow for every call; later damage is caught by the
        # probe (the last pages) or by any statement that meets it (see _locked).
        problems = [str(line) for (line,) in self._query("PRAGMA quick_check") if line != "ok"]
        if problems:
            reason = " ".join(problems[0].split())
            self._damage = str(damaged_store_error(self.path, reason))
        self._scanned_for_damage = True

    def _probe(self) -> None:
        try:
            unknown = self._locked(
                lambda conn: with_retries(self.path, lambda: probe_write(conn, self._page_size))
            )
        except StoreError as exc:
            if (changed := changed_table_error(self.path, exc)) is not None:
                raise changed from exc
            raise
        if unknown:
            self._refusal = str(newer_store_error(self.path, unknown))
            raise StoreError(self._refusal)

    def find_ok(self, request_hash: str, sample_index: int) -> RunRecord | None:
        """The newest ``ok`` run with this identity, or None (the cache/replay lookup)."""
        rows = self._query(queries.find_ok_sql(SQLITE), (request_hash, sample_index))
        return record_from_row(rows[0]) if rows else None

    def find_run(self, run_id: str) -> RunRecord | None:
        """The run with this run_id, or None."""
        rows = self._query(queries.find_run_sql(SQLITE), (run_id,))
        return record_from_row(rows[0]) if rows else None

    def find_ok_many(
        self, identities: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], RunRecord]:
        """find_ok for many identities at once: what a resumed sweep has already got."""
        wanted = set(identities)
        hashes = sorted({request_hash for request_hash, _ in wanted})
        newest: dict[tuple[str, int], Sequence[Any]] = {}
        for start in range(0, len(hashes), _CHUNK):
            chunk = hashes[start : start + _CHUNK]
            rows = self._query(
                f"SELECT {_COLUMN_LIST} FROM runs WHERE status = 'ok'"
                f" AND request_hash IN ({', '.join('?' * len(chunk))})"
                " ORDER BY created_at, run_id",
                chunk,
            )
            newest.update(newest_by_identity(rows, wanted))
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
        """The runs as a DataFrame, ordered by run_id (oldest first).

        ``limit`` keeps the most recent n runs. Columns are ``record.COLUMNS`` with real
        dtypes: created_at datetime64[us, UTC]; counts and knobs that may be missing Int64;
        temperature, top_p, cost_usd, latency_s, ttft_s float64; cache_hit and
        tokens_counted bool; text (JSON columns included) in pandas' default text dtype
        (pandas 3: "str", Arrow-backed, NaN where missing; pandas 2: object, str or None).
        """
        wanted = run_filter(experiment, sweep_id, status, since, kind, user)
        where, params = wanted.where(SQLITE), list(wanted.params)
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        with self._lock:
            self._connection()  # a closed store says so, whichever reader runs
        from workbench.store.columnar import read_runs_frame  # pandas: opening stays light

        # Column-wise through Arrow first (a million rows: ~0.3 x sqlite3's fetchall);
        # sqlite3 row by row when that reader cannot read this file.
        total = self.count(experiment, sweep_id, status, since, limit, kind, user)
        frame = read_runs_frame(
            self._read_uri(), where, params, limit=limit, rows=total, note_filled=self._mend
        )
        if frame is not None:
            return frame
        sql, params = wanted.select(SQLITE, limit)
        return frame_of_rows(lambda: self._query(sql, params), newest_first=limit is not None)

    def mean_completion_tokens(self, model: str, experiment: str | None = None) -> float | None:
        """Mean completion tokens of earlier ok chat runs of ``model`` (for estimates).

        Cache hits are left out: they repeat an earlier run's numbers and would weight a
        replayed notebook twice.
        """
        ((mean,),) = self._query(*queries.mean_tokens_query(SQLITE, model, experiment))
        return None if mean is None else float(mean)

    # ------------------------------------------------------------------ files

    def export(
        self,
        path: str | os.PathLike[str],
        experiment: str | None = None,
        *,
        keep_formulas: bool = False,
    ) -> Path:
        """Write the runs (of one experiment, or all) to .parquet, .csv or .jsonl; in a
        CSV, text a spreadsheet would run as a formula gets a leading ``'`` unless
        ``keep_formulas`` (Parquet and JSON lines are always exact)."""
        # pandas and pyarrow only where a file is written: keeps opening a store light
        from workbench.store.columnar import export_parquet
        from workbench.store.runfiles import write_runs

        target = Path(path)
        check_export_suffix(target, "export to")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            wanted = run_filter(experiment, None, None, None, None)
            where, params = wanted.where(SQLITE), list(wanted.params)
            rows = self.count(experiment=experiment)
            if not (
                target.suffix.lower() == ".parquet"
                and export_parquet(self._read_uri(), where, params, target, rows=rows)
            ):
                write_runs(self.runs(experiment=experiment), target, keep_formulas=keep_formulas)
            self._export_datasets(target, experiment)
        except ImportError as exc:
            raise StoreError(f"exporting {target} needs pyarrow: pip install pyarrow") from exc
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return target

    def add_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert rows in ``record.COLUMNS`` order, skipping run_ids already here."""

        def insert(conn: sqlite3.Connection) -> int:
            # Only a clash on run_id is skipped; any other constraint still fails loudly.
            sql = f"{_INSERT} ON CONFLICT (run_id) DO NOTHING"
            return insert_runs(conn, sql, rows, self._filled)

        # One transaction: a chunk imports completely or not at all.
        return self._write(insert)

    # ------------------------------------------------------------------ claims

    def claim(self, request_hash: str, sample_index: int, run_id: str, stale_s: float) -> bool:
        """Claim a point before sending it; False while someone else's claim on it is
        younger than ``stale_s`` seconds (their answer is coming: replay it)."""
        params = claim_params(request_hash, sample_index, run_id, stale_s)
        claim = queries.claim_sql(SQLITE)
        rows = self._write(lambda conn: conn.execute(claim, params).fetchall())
        return bool(rows)

    def release(self, request_hash: str, sample_index: int, run_id: str) -> None:
        """Give a claim back (the call failed): another sweep may send the point."""
        params = (request_hash, sample_index, run_id)
        self._write(lambda conn: conn.execute(queries.release_sql(SQLITE), params))

    # ------------------------------------------------------------------ prices

    def set_price(
        self,
        model: str,
        input_per_mtok: Decimal,
        output_per_mtok: Decimal,
        cached_input_per_mtok: Decimal | None = None,
    ) -> None:
        """Keep a custom price (USD per million tokens) for ``model`` in the store."""
        texts = price_texts([input_per_mtok, output_per_mtok, cached_input_per_mtok])
        params = (model, *texts, now_iso())
        self._write(lambda conn: conn.execute(queries.upsert_price_sql(SQLITE), params))

    def prices(self) -> dict[str, tuple[Decimal, Decimal, Decimal | None]]:
        """Custom prices: model -> (input, output, cached input) USD per million tokens."""
        return prices_from_rows(self._query(queries.PRICES_SQL))

    # ------------------------------------------------------------------ embeddings

    def get_embeddings(
        self, model: str, dimensions: int | None, texts: Sequence[str]
    ) -> dict[str, list[float]]:
        """Cached vectors of ``texts`` for (model, dimensions); texts not cached are absent."""
        by_key = {text_key(text): text for text in texts}
        keys = list(by_key)
        found: dict[str, list[float]] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            rows = self._query(
                "SELECT text_sha256, vector FROM embeddings WHERE model = ? AND dimensions = ?"
                f" AND text_sha256 IN ({', '.join('?' * len(chunk))})",
                [model, dimensions or 0, *chunk],
            )
            for key, blob in rows:
                found[by_key[key]] = vector_of(blob)
        return found

    def put_embeddings(
        self, model: str, dimensions: int | None, vectors: Mapping[str, Sequence[float]]
    ) -> None:
        """Cache vectors (as float32) per (model, dimensions, text); a text put again wins."""
        rows = embedding_rows(model, dimensions, vectors, now_iso())
        self._write(
            lambda conn: conn.executemany(
                "INSERT OR REPLACE INTO embeddings"
                " (model, dimensions, text_sha256, vector, created_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        )

    # ------------------------------------------------------------------ shared SQL

    def select_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of one statement built in ``self.dialect`` (sqlite3's ``?``)."""
        return self._query(sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in its own transaction; returns the rows it changed."""
        return self.execute_many(sql, [params])

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """One statement per row of parameters, all in one transaction; rows changed."""
        return self._run_many(sql, rows)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        def work(conn: sqlite3.Connection) -> int:
            return rows_changed(conn.executemany(sql, rows))

        return self._write(work)

    def data_version(self) -> int | None:
        """A number that changes when another connection commits to the file (our own
        writes keep it): what a reader caching a table checks before asking more."""
        ((version,),) = self._query("PRAGMA data_version")
        return int(version)

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the workbench store {self.path} is closed")
        return self._conn

    def _read_uri(self) -> str:
        """A SQLite URI to read this store from another connection."""
        return f"{self.path.absolute().as_uri()}?mode=ro"

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of one read-only statement."""
        return self._query_with(lambda conn: conn.execute(sql, params).fetchall())

    def _query_with(self, read: Callable[[sqlite3.Connection], T]) -> T:
        return self._locked(lambda conn: with_retries(self.path, lambda: read(conn)))

    def _mend(self, filled: int) -> None:
        with contextlib.suppress(StoreError):  # a read-only store keeps its stale hint
            self._write(lambda conn: self._filled.mend(conn, filled))

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in its own short write transaction, retried while the file is busy."""
        if self._refusal is not None:
            raise StoreError(self._refusal)

        def transaction(conn: sqlite3.Connection) -> T:
            # IMMEDIATE takes the write lock up front: a deferred transaction that
            # upgrades later can fail with SQLITE_BUSY without waiting at all.
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # report the first error
                        conn.execute("ROLLBACK")
                raise
            return result

        return self._locked(lambda conn: with_retries(self.path, lambda: transaction(conn)))

    def _locked(self, use: Callable[[sqlite3.Connection], T]) -> T:
        """``use(connection)`` under the store's lock, noting a damaged page if it meets one."""
        with self._lock:
            conn = self._connection()
            try:
                return use(conn)
            except StoreError as exc:
                if is_damaged(exc.__cause__):
                    self._damage = str(exc)
                raise


# ---------------------------------------------------------------------- helpers

# Stores still open when the interpreter exits (a kernel that used %load_ext workbench and
# was shut down, a script that never closed its store): closed, so checkpointed, at exit.
_OPEN_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()
_CHECKPOINT_WAIT_MS = 500


@atexit.register
def _close_open_stores() -> None:
    for store in list(_OPEN_STORES):
        with contextlib.suppress(Exception):
            store.close()


def __getattr__(name: str) -> Any:
    if name == "expand_json":  # imported on first use: it needs pandas (~0.4 s to import)
        from workbench.store.frames import expand_json

        return expand_json
    # The class's name before it said which backend it is; kept working for a while.
    if name == "ExperimentStore":
        warnings.warn(
            "ExperimentStore is now SQLiteStore (workbench.store.SQLiteStore)",
            DeprecationWarning,
            stacklevel=2,
        )
        return SQLiteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
