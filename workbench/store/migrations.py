"""The store's SQLite file: opening it safely, its errors in one line, its migrations.

Migrations are small named functions, applied in order and recorded by name with the time
applied, so a file created by any version of the workbench is brought up to date on open.
"""

from __future__ import annotations

import functools
import itertools
import shlex
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from ..errors import StoreError

__all__ = [
    "MIGRATIONS",
    "MIGRATIONS_TABLE",
    "POSTGRES_MIGRATIONS",
    "NotAWorkbenchStore",
    "OpenedDatabase",
    "applied_migrations",
    "pending_migrations",
    "unknown_migrations",
    "migrate",
    "open_database",
    "is_damaged",
    "damaged_store_error",
    "newer_store_error",
    "read_only_store_error",
    "low_disk_store_error",
    "with_retries",
    "store_error",
    "one_line",
]

T = TypeVar("T")

# How long SQLite itself waits for another process's write lock before giving up...
BUSY_TIMEOUT_S = 30.0
# ...and how many more times we try after that, as a safety net for the rare SQLITE_BUSY
# that the busy handler does not cover (e.g. while another connection recovers the WAL).
BUSY_RETRIES = 5

_FIX = "point WORKBENCH_STORE (or wb.configure(store=...)) at another file"

MIGRATIONS_TABLE = "schema_migrations"

Migration = Callable[[sqlite3.Connection], None]


# Migrations are frozen in time: once released, a migration never changes, even when
# RunRecord grows. A new column is a new migration (ALTER TABLE runs ADD COLUMN ...), so
# that a file created last year and a file created today end up with the same schema.


def _m001_create_runs(conn: sqlite3.Connection) -> None:
    # The column order is the order of RunRecord's fields (record.COLUMNS); a test holds
    # the two together. Required fields are NOT NULL so a half-filled row cannot land.
    conn.execute(
        """
        CREATE TABLE runs (
            kind               TEXT    NOT NULL,
            provider           TEXT    NOT NULL,
            model              TEXT    NOT NULL,
            run_id             TEXT    NOT NULL PRIMARY KEY,
            created_at         TEXT    NOT NULL,  -- ISO-8601 UTC, microseconds: sorts as text
            experiment         TEXT    NOT NULL,
            sweep_id           TEXT,
            response_model     TEXT,
            temperature        REAL,
            top_p              REAL,
            seed               INTEGER,
            max_tokens         INTEGER,
            params             TEXT    NOT NULL,  -- JSON
            system             TEXT,
            prompt             TEXT,
            messages           TEXT,              -- JSON
            template           TEXT,
            variables          TEXT,              -- JSON
            output             TEXT,
            finish_reason      TEXT,
            tool_calls         TEXT,              -- JSON
            prompt_tokens      INTEGER,
            completion_tokens  INTEGER,
            cached_tokens      INTEGER,
            reasoning_tokens   INTEGER,
            total_tokens       INTEGER,
            tokens_counted     INTEGER NOT NULL CHECK (tokens_counted IN (0, 1)),
            cost_usd           REAL,
            price_source       TEXT,
            latency_s          REAL,
            ttft_s             REAL,
            system_fingerprint TEXT,
            request_hash       TEXT    NOT NULL,
            sample_index       INTEGER NOT NULL,
            cache_hit          INTEGER NOT NULL CHECK (cache_hit IN (0, 1)),
            status             TEXT    NOT NULL,
            error              TEXT,
            retries            INTEGER NOT NULL
        )
        """
    )
    # Cache and replay look a run up by its identity on every call.
    conn.execute("CREATE INDEX idx_runs_identity ON runs (request_hash, sample_index)")
    # run_id as the second key lets "WHERE experiment = ? ORDER BY run_id" (and the same
    # for a sweep) walk the index in order instead of sorting afterwards.
    conn.execute("CREATE INDEX idx_runs_experiment ON runs (experiment, run_id)")
    conn.execute("CREATE INDEX idx_runs_sweep ON runs (sweep_id, run_id)")
    conn.execute("CREATE INDEX idx_runs_created_at ON runs (created_at)")


def _m002_create_embeddings(conn: sqlite3.Connection) -> None:
    # dimensions is 0 for "the model's default": NULL would not be equal to itself in the
    # primary key, and the same text could then be cached twice.
    conn.execute(
        """
        CREATE TABLE embeddings (
            model       TEXT    NOT NULL,
            dimensions  INTEGER NOT NULL,
            text_sha256 TEXT    NOT NULL,
            vector      BLOB    NOT NULL,  -- float32, native byte order of numpy tobytes
            created_at  TEXT    NOT NULL,
            PRIMARY KEY (model, dimensions, text_sha256)
        )
        """
    )


def _m003_create_prices(conn: sqlite3.Connection) -> None:
    # Prices are Decimal text: a REAL would turn $0.15 into 0.1499999999999999944...
    conn.execute(
        """
        CREATE TABLE prices (
            model                 TEXT NOT NULL PRIMARY KEY,
            input_per_mtok        TEXT NOT NULL,
            output_per_mtok       TEXT NOT NULL,
            cached_input_per_mtok TEXT,
            updated_at            TEXT NOT NULL
        )
        """
    )


def _m004_add_runs_notes(conn: sqlite3.Connection) -> None:
    # Reply values that could not be stored (dropped as NULL) are noted here, per row.
    conn.execute("ALTER TABLE runs ADD COLUMN notes TEXT")


def _m005_response_fields(conn: sqlite3.Connection) -> None:
    # What the API returns that the table dropped (refusals, logprobs, service tier), and
    # how many requests an embedding call took once split within the API's limits.
    for column, kind in (
        ("refusal", "TEXT"),
        ("logprobs", "TEXT"),  # JSON, compact: [[token, logprob, [[alt, logprob], ...]], ...]
        ("service_tier", "TEXT"),
        ("requests", "INTEGER"),
    ):
        conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")


def _m006_datasets(conn: sqlite3.Connection) -> None:
    # Which test case a run answered, and its reference answer as text, on the run itself:
    # scorers, exports and replays need no join to find them. All NULL outside datasets.
    for column in ("dataset", "dataset_version", "item_id", "expected"):
        conn.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
    # Runs of the same test case pair up across sweeps by item_id.
    conn.execute("CREATE INDEX idx_runs_item ON runs (item_id)")
    # A named dataset's rows, one version per content hash: the same rows stored again are
    # the same version, so wb.dataset(name, data) in a re-run notebook adds nothing.
    conn.execute(
        """
        CREATE TABLE datasets (
            name        TEXT NOT NULL,
            version     TEXT NOT NULL,  -- content hash of rows + expected column
            expected    TEXT,           -- the name of the column holding the reference answer
            items       TEXT NOT NULL,  -- JSON list of row objects, in the dataset's order
            stored_at   TEXT NOT NULL,  -- last stored: the latest version is the newest one
            PRIMARY KEY (name, version)
        )
        """
    )


def _m007_scores(conn: sqlite3.Connection) -> None:
    # One score per run per scorer definition: scorer_id is the name plus a hash of the
    # definition, so a changed rubric adds rows beside the old ones. A judge's own call is
    # an ordinary run, linked by judge_run_id. WITHOUT ROWID: rows are looked up and
    # clustered by (scorer_id, run_id), the question "is this run scored yet?". No second
    # index on run_id: it made writing 100,000 scores ~40 % slower (bench/scoring.py), and
    # reading one run's scores is rare next to scoring thousands.
    conn.execute(
        """
        CREATE TABLE scores (
            run_id       TEXT NOT NULL,
            scorer       TEXT NOT NULL,
            scorer_id    TEXT NOT NULL,
            value        REAL,
            passed       INTEGER CHECK (passed IN (0, 1)),
            reason       TEXT NOT NULL,
            judge_run_id TEXT,
            created_at   TEXT NOT NULL,
            PRIMARY KEY (scorer_id, run_id)
        ) WITHOUT ROWID
        """
    )


def _m008_runs_mode_and_batches(conn: sqlite3.Connection) -> None:
    # Issue 15, the Batch API. Every older row was sent live.
    conn.execute("ALTER TABLE runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'live'")
    # One row per batch, written the moment the API has created it: a kernel that restarts
    # finds its batches here and collects them. No key, no URL: the provider's name only.
    conn.execute(
        """
        CREATE TABLE batches (
            batch_id       TEXT    NOT NULL PRIMARY KEY,
            provider       TEXT    NOT NULL,
            sweep_id       TEXT    NOT NULL,
            experiment     TEXT    NOT NULL,
            input_file_id  TEXT    NOT NULL,
            status         TEXT    NOT NULL,  -- the API's: validating ... completed
            created_at     TEXT    NOT NULL,  -- ISO-8601 UTC
            custom_ids     TEXT    NOT NULL,  -- JSON list: request_hash:sample_index
            output_file_id TEXT,
            error_file_id  TEXT,
            total          INTEGER,           -- request_counts as the API last said
            completed      INTEGER,
            failed         INTEGER,
            ended_at       TEXT,              -- completed, failed, expired or cancelled
            collected_at   TEXT,              -- its answers are rows of runs since then
            message        TEXT               -- why it failed, in one line
        )
        """
    )
    conn.execute("CREATE INDEX idx_batches_sweep ON batches (sweep_id, created_at)")


def _m009_add_runs_user(conn: sqlite3.Connection) -> None:
    # Who ran it (WORKBENCH_USER or the OS user), so a shared store can be filtered by person.
    conn.execute('ALTER TABLE runs ADD COLUMN "user" TEXT')


def _m010_create_claims(conn: sqlite3.Connection) -> None:
    # A point of a sweep is claimed before it is sent: two people (or kernels) sweeping the
    # same grid at once send each (request_hash, sample_index) once; the other replays.
    conn.execute(
        """
        CREATE TABLE claims (
            request_hash TEXT    NOT NULL,
            sample_index INTEGER NOT NULL,
            run_id       TEXT    NOT NULL,
            claimed_by   TEXT,
            claimed_at   TEXT    NOT NULL,
            PRIMARY KEY (request_hash, sample_index)
        )
        """
    )


def _m011_reviews(conn: sqlite3.Connection) -> None:
    # A changed rating replaces its row in scores (keyed (scorer_id, run_id), so wb.scores()
    # and score:<name> keep one score per run); the replaced row is copied here first, with
    # the time it was replaced. Pairwise preferences are appended, never updated: the
    # latest row per (baseline, candidate, rater) counts, the older ones are the history.
    conn.execute(
        """
        CREATE TABLE score_history (
            run_id       TEXT NOT NULL,
            scorer       TEXT NOT NULL,
            scorer_id    TEXT NOT NULL,
            value        REAL,
            passed       INTEGER CHECK (passed IN (0, 1)),
            reason       TEXT NOT NULL,
            judge_run_id TEXT,
            created_at   TEXT NOT NULL,
            replaced_at  TEXT NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX idx_score_history_run ON score_history (run_id)")
    conn.execute(
        """
        CREATE TABLE preferences (
            baseline_run_id  TEXT NOT NULL,
            candidate_run_id TEXT NOT NULL,
            winner           TEXT NOT NULL CHECK (winner IN ('baseline', 'candidate', 'tie')),
            rater            TEXT NOT NULL,
            reason           TEXT NOT NULL,
            created_at       TEXT NOT NULL
        )
        """
    )


MIGRATIONS: tuple[tuple[str, Migration], ...] = tuple(
    (fn.__name__.lstrip("_"), fn)
    for fn in (
        _m001_create_runs,
        _m002_create_embeddings,
        _m003_create_prices,
        _m004_add_runs_notes,
        _m005_response_fields,
        _m006_datasets,
        _m007_scores,
        _m008_runs_mode_and_batches,
        _m009_add_runs_user,
        _m010_create_claims,
        _m011_reviews,
    )
)
"""Every migration in the order it must run, by the name recorded in the database."""

# The PostgreSQL form of each migration, by the same name: the statements run in order.
# A new migration adds its SQLite function above and its statements here (one string is
# enough where the dialects agree, as ALTER TABLE ... ADD COLUMN ... TEXT does); a test
# checks that every name has both forms. Types: TEXT for text (COLLATE "C" where SQLite's
# byte order matters: ids and ISO times sort as SQLite sorts them), BIGINT for INTEGER,
# DOUBLE PRECISION for REAL, BYTEA for BLOB; flags stay 0/1 integers as in SQLite.
POSTGRES_MIGRATIONS: dict[str, tuple[str, ...]] = {
    "m001_create_runs": (
        """
        CREATE TABLE runs (
            kind               TEXT    NOT NULL,
            provider           TEXT    NOT NULL,
            model              TEXT    NOT NULL,
            run_id             TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
            created_at         TEXT    COLLATE "C" NOT NULL,
            experiment         TEXT    NOT NULL,
            sweep_id           TEXT,
            response_model     TEXT,
            temperature        DOUBLE PRECISION,
            top_p              DOUBLE PRECISION,
            seed               BIGINT,
            max_tokens         BIGINT,
            params             TEXT    NOT NULL,
            system             TEXT,
            prompt             TEXT,
            messages           TEXT,
            template           TEXT,
            variables          TEXT,
            output             TEXT,
            finish_reason      TEXT,
            tool_calls         TEXT,
            prompt_tokens      BIGINT,
            completion_tokens  BIGINT,
            cached_tokens      BIGINT,
            reasoning_tokens   BIGINT,
            total_tokens       BIGINT,
            tokens_counted     BIGINT  NOT NULL CHECK (tokens_counted IN (0, 1)),
            cost_usd           DOUBLE PRECISION,
            price_source       TEXT,
            latency_s          DOUBLE PRECISION,
            ttft_s             DOUBLE PRECISION,
            system_fingerprint TEXT,
            request_hash       TEXT    COLLATE "C" NOT NULL,
            sample_index       BIGINT  NOT NULL,
            cache_hit          BIGINT  NOT NULL CHECK (cache_hit IN (0, 1)),
            status             TEXT    NOT NULL,
            error              TEXT,
            retries            BIGINT  NOT NULL
        )
        """,
        "CREATE INDEX idx_runs_identity ON runs (request_hash, sample_index)",
        "CREATE INDEX idx_runs_experiment ON runs (experiment, run_id)",
        "CREATE INDEX idx_runs_sweep ON runs (sweep_id, run_id)",
        "CREATE INDEX idx_runs_created_at ON runs (created_at)",
    ),
    "m002_create_embeddings": (
        """
        CREATE TABLE embeddings (
            model       TEXT   NOT NULL,
            dimensions  BIGINT NOT NULL,
            text_sha256 TEXT   NOT NULL,
            vector      BYTEA  NOT NULL,
            created_at  TEXT   NOT NULL,
            PRIMARY KEY (model, dimensions, text_sha256)
        )
        """,
    ),
    "m003_create_prices": (
        """
        CREATE TABLE prices (
            model                 TEXT NOT NULL PRIMARY KEY,
            input_per_mtok        TEXT NOT NULL,
            output_per_mtok       TEXT NOT NULL,
            cached_input_per_mtok TEXT,
            updated_at            TEXT NOT NULL
        )
        """,
    ),
    "m004_add_runs_notes": ("ALTER TABLE runs ADD COLUMN notes TEXT",),
    "m005_response_fields": (
        "ALTER TABLE runs ADD COLUMN refusal TEXT",
        "ALTER TABLE runs ADD COLUMN logprobs TEXT",
        "ALTER TABLE runs ADD COLUMN service_tier TEXT",
        "ALTER TABLE runs ADD COLUMN requests BIGINT",
    ),
    "m006_datasets": (
        "ALTER TABLE runs ADD COLUMN dataset TEXT",
        "ALTER TABLE runs ADD COLUMN dataset_version TEXT",
        "ALTER TABLE runs ADD COLUMN item_id TEXT",
        "ALTER TABLE runs ADD COLUMN expected TEXT",
        "CREATE INDEX idx_runs_item ON runs (item_id)",
        """
        CREATE TABLE datasets (
            name        TEXT NOT NULL,
            version     TEXT NOT NULL,
            expected    TEXT,
            items       TEXT NOT NULL,
            stored_at   TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (name, version)
        )
        """,
    ),
    "m007_scores": (
        """
        CREATE TABLE scores (
            run_id       TEXT COLLATE "C" NOT NULL,
            scorer       TEXT NOT NULL,
            scorer_id    TEXT NOT NULL,
            value        DOUBLE PRECISION,
            passed       BIGINT CHECK (passed IN (0, 1)),
            reason       TEXT NOT NULL,
            judge_run_id TEXT,
            created_at   TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (scorer_id, run_id)
        )
        """,
    ),
    "m008_runs_mode_and_batches": (
        "ALTER TABLE runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'live'",
        """
        CREATE TABLE batches (
            batch_id       TEXT    NOT NULL PRIMARY KEY,
            provider       TEXT    NOT NULL,
            sweep_id       TEXT    NOT NULL,
            experiment     TEXT    NOT NULL,
            input_file_id  TEXT    NOT NULL,
            status         TEXT    NOT NULL,
            created_at     TEXT    COLLATE "C" NOT NULL,
            custom_ids     TEXT    NOT NULL,
            output_file_id TEXT,
            error_file_id  TEXT,
            total          BIGINT,
            completed      BIGINT,
            failed         BIGINT,
            ended_at       TEXT,
            collected_at   TEXT,
            message        TEXT
        )
        """,
        "CREATE INDEX idx_batches_sweep ON batches (sweep_id, created_at)",
    ),
    "m009_add_runs_user": ('ALTER TABLE runs ADD COLUMN "user" TEXT',),
    "m010_create_claims": (
        """
        CREATE TABLE claims (
            request_hash TEXT   COLLATE "C" NOT NULL,
            sample_index BIGINT NOT NULL,
            run_id       TEXT   NOT NULL,
            claimed_by   TEXT,
            claimed_at   TEXT   COLLATE "C" NOT NULL,
            PRIMARY KEY (request_hash, sample_index)
        )
        """,
    ),
    "m011_reviews": (
        """
        CREATE TABLE score_history (
            run_id       TEXT COLLATE "C" NOT NULL,
            scorer       TEXT NOT NULL,
            scorer_id    TEXT NOT NULL,
            value        DOUBLE PRECISION,
            passed       BIGINT CHECK (passed IN (0, 1)),
            reason       TEXT NOT NULL,
            judge_run_id TEXT,
            created_at   TEXT COLLATE "C" NOT NULL,
            replaced_at  TEXT COLLATE "C" NOT NULL
        )
        """,
        "CREATE INDEX idx_score_history_run ON score_history (run_id)",
        """
        CREATE TABLE preferences (
            baseline_run_id  TEXT NOT NULL,
            candidate_run_id TEXT NOT NULL,
            winner           TEXT NOT NULL CHECK (winner IN ('baseline', 'candidate', 'tie')),
            rater            TEXT NOT NULL,
            reason           TEXT NOT NULL,
            created_at       TEXT COLLATE "C" NOT NULL
        )
        """,
    ),
}


def applied_migrations(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, applied_at) of each migration recorded in the database, oldest first."""
    if not _has_table(conn, MIGRATIONS_TABLE):
        return []
    rows = conn.execute(f"SELECT name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY rowid")
    return [(str(name), str(at)) for name, at in rows]


def pending_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this database still needs, in order."""
    done = {name for name, _ in applied_migrations(conn)}
    return [name for name, _ in MIGRATIONS if name not in done]


def unknown_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names recorded in the database that this workbench does not know: a newer
    workbench has migrated the file, and its schema may need values we do not write."""
    known = {name for name, _ in MIGRATIONS}
    return [name for name, _ in applied_migrations(conn) if name not in known]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the pending migrations in one transaction; return the names applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``). BEGIN IMMEDIATE takes
    the write lock before looking at what is applied, so two processes creating the same
    new file one after the other see each other's work and nothing runs twice. Raises
    :class:`NotAWorkbenchStore` for a SQLite file that holds other tables but was never
    a workbench store.
    """
    if not pending_migrations(conn):
        # The common case, reopening a current store, needs no write lock at all.
        return []
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_table(conn, MIGRATIONS_TABLE) and _user_tables(conn):
            raise NotAWorkbenchStore("it holds other tables and no schema_migrations")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
            "(name TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        applied = []
        for name in pending_migrations(conn):
            dict(MIGRATIONS)[name](conn)
            conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(timezone.utc).isoformat(timespec="microseconds")),
            )
            applied.append(name)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return applied


class NotAWorkbenchStore(Exception):
    """A valid SQLite file that belongs to something else; the store refuses to touch it."""


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _user_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return [str(name) for (name,) in rows]


# ---------------------------------------------------------------------- opening the file


@dataclass(frozen=True)
class OpenedDatabase:
    """A connection to the store's file; ``read_only`` is set when it could only be read."""

    conn: sqlite3.Connection
    read_only: bool = False


def open_database(path: Path) -> OpenedDatabase:
    """A connection to the store at ``path``, created and migrated as needed.

    The connection is in autocommit mode (callers issue BEGIN/COMMIT) and may be used from
    any thread; the caller serialises its use. A store that exists but cannot be written
    here (read-only media, a file or folder without write permission) is opened read-only,
    so its runs can still be read and replayed; writing to it is the caller's to refuse.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_S,  # sets SQLite's busy_timeout
            isolation_level=None,
            check_same_thread=False,
        )
    except (OSError, sqlite3.Error) as exc:
        raise store_error(path, exc) from exc
    try:
        with_retries(path, lambda: _prepare(conn))
    except StoreError as exc:
        conn.close()
        if path.is_file() and _is_read_only(exc.__cause__):
            return _open_read_only(path, exc)
        raise
    except BaseException:
        conn.close()
        raise
    return OpenedDatabase(conn)


def _prepare(conn: sqlite3.Connection) -> None:
    # The first statement to read the file: junk fails here, before anything is written,
    # and so does a file we may not write (switching to WAL needs write access).
    conn.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL still survives a crashed kernel; only a power cut can lose the
    # last commits, and it saves an fsync per appended run.
    conn.execute("PRAGMA synchronous = NORMAL")
    if not unknown_migrations(conn):
        # A file migrated by a newer workbench is left as it is: the caller refuses to
        # write to it, and our older migrations have no business running on it.
        migrate(conn)


def _open_read_only(path: Path, cannot_write: StoreError) -> OpenedDatabase:
    """``path`` opened for reading only, or ``cannot_write`` raised if even that fails."""
    # mode=ro still shares the file with writers (it reads their -wal through the -shm);
    # it needs the -shm to exist or be creatable, which read-only media do not allow.
    # There immutable=1 reads the file as it is on disk, without locks: nothing can be
    # changing it, although commits left in a -wal that was never checkpointed are unseen.
    for query in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?{query}",
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            is_store = with_retries(path, functools.partial(_has_table, conn, MIGRATIONS_TABLE))
        except StoreError as exc:
            conn.close()
            if _is_read_only(exc.__cause__):
                continue
            raise
        if not is_store:
            conn.close()
            raise cannot_write  # an empty or foreign file: nothing to read either
        return OpenedDatabase(conn, read_only=True)
    raise cannot_write


def with_retries(path: Path, work: Callable[[], T]) -> T:
    """``work()``, retried while the file is busy; sqlite3 errors become StoreError."""
    for attempt in itertools.count():
        try:
            return work()
        except NotAWorkbenchStore as exc:
            raise StoreError(
                f"{path} is not a workbench store ({exc}): move it aside or {_FIX}"
            ) from exc
        except sqlite3.Error as exc:
            if is_busy(exc) and attempt < BUSY_RETRIES:
                time.sleep(0.05 * 2**attempt)
                continue
            raise store_error(path, exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count is endless


def is_busy(exc: BaseException) -> bool:
    message = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and (
        "database is locked" in message or "database table is locked" in message
    )


def store_error(path: Path, exc: BaseException) -> StoreError:
    """One line naming the file, what went wrong and the fix (never a sqlite3 traceback)."""
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return StoreError(f"cannot create the workbench store {path} ({reason}): {_FIX}")
    reason = one_line(exc)
    lowered = reason.lower()
    if is_damaged(exc):
        return damaged_store_error(path, reason)
    if "not a database" in lowered or "encrypted" in lowered:
        return StoreError(f"{path} is not a workbench store ({reason}): move it aside or {_FIX}")
    if _is_read_only(exc):
        return StoreError(
            f"cannot write the workbench store {path} ({reason}): make the file and its"
            f" folder writable, or {_FIX}"
        )
    if is_busy(exc):
        return StoreError(
            f"the workbench store {path} stayed locked by another process ({reason}):"
            " try again when its sweep has finished"
        )
    if "disk is full" in lowered or "disk i/o" in lowered:
        return StoreError(f"cannot write the workbench store {path} ({reason}): free disk space")
    if "unique constraint failed: runs.run_id" in lowered:
        return StoreError(f"the workbench store {path} already holds this run_id ({reason})")
    return StoreError(f"the workbench store {path} failed: {reason}")


def is_damaged(exc: BaseException | None) -> bool:
    """SQLITE_CORRUPT: a valid store with a damaged page (junk is SQLITE_NOTADB instead)."""
    return isinstance(exc, sqlite3.DatabaseError) and "malformed" in str(exc).lower()


def damaged_store_error(path: Path, reason: str) -> StoreError:
    recovered = path.with_name(f"{path.stem}-recovered{path.suffix}")
    return StoreError(
        f"the workbench store {path} is damaged ({reason}): copy out what can still be read"
        f" with  sqlite3 {shlex.quote(str(path))} .recover | sqlite3"
        f" {shlex.quote(str(recovered))}  and point WORKBENCH_STORE at {recovered}"
    )


def newer_store_error(path: Path | str, unknown: list[str]) -> StoreError:
    from .. import __version__  # here, not at the top: the package imports this module

    return StoreError(
        f"the workbench store {path} was written by a newer workbench (its schema goes up to"
        f" {unknown[-1]}; workbench {__version__} knows up to {MIGRATIONS[-1][0]}): upgrade"
        " prompt-workbench to add runs to it (reading it still works), or " + _FIX
    )


def read_only_store_error(path: Path) -> StoreError:
    return StoreError(
        f"cannot write the workbench store {path}: it is read-only here, so it was opened for"
        f" reading and replays only: make the file and its folder writable, or {_FIX}"
    )


def low_disk_store_error(path: Path, free_bytes: int, needed_bytes: int) -> StoreError:
    return StoreError(
        f"cannot write the workbench store {path}: its disk has {free_bytes // 1024} KiB free,"
        f" under the {needed_bytes // 1024} KiB kept for a run: free disk space, or {_FIX}"
    )


def _is_read_only(exc: BaseException | None) -> bool:
    # SQLITE_READONLY (and its _DIRECTORY, _DBMOVED... variants) and SQLITE_CANTOPEN,
    # which is what a WAL file's missing -shm on read-only media gives.
    message = str(exc).lower()
    return isinstance(exc, sqlite3.Error) and (
        "readonly" in message or "read-only" in message or "unable to open" in message
    )


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
