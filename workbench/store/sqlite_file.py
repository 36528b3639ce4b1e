"""The SQLite store's file: opened safely (created and migrated as needed, read-only when
it cannot be written), retried while another process holds it, and its errors in one line.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shlex
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from workbench.core.errors import StoreError
from workbench.core.record import COLUMNS, RunRecord
from workbench.store.messages import FIX as _FIX
from workbench.store.messages import one_line
from workbench.store.migrations import (
    MIGRATIONS_TABLE,
    NotAWorkbenchStore,
    has_table,
    migrate,
    unknown_migrations,
)
from workbench.store.rows import record_to_row

__all__ = [
    "BUSY_TIMEOUT_S",
    "OpenedDatabase",
    "open_database",
    "with_retries",
    "is_busy",
    "store_error",
    "is_damaged",
    "damaged_store_error",
    "read_only_store_error",
    "changed_table_error",
    "low_disk_store_error",
    "check_free_space",
    "probe_write",
]

T = TypeVar("T")

# How long SQLite itself waits for another process's write lock before giving up...
BUSY_TIMEOUT_S = 30.0
# ...and how many more times we try after that, as a safety net for the rare SQLITE_BUSY
# that the busy handler does not cover (e.g. while another connection recovers the WAL).
BUSY_RETRIES = 5


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
            is_store = with_retries(path, functools.partial(has_table, conn, MIGRATIONS_TABLE))
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


# Free space a paid call needs on the store's disk before it is sent: a large answer's
# row, its index pages and their WAL frames, with room to spare (SQLite reports a full
# disk only at COMMIT, after the answer has been paid for).
MIN_FREE_BYTES = 1 << 20


def check_free_space(path: Path) -> None:
    """Raise StoreError if the store's disk has less than :data:`MIN_FREE_BYTES` free."""
    if not hasattr(os, "statvfs"):
        return  # Windows: the probe and the append still report a full disk
    try:
        disk = os.statvfs(path.parent)
    except OSError:
        return
    if disk.f_blocks == 0:
        return  # a file system that reports no sizes (some FUSE mounts): nothing to go by
    # root may use the blocks the file system keeps back from other users.
    blocks = disk.f_bfree if os.geteuid() == 0 else disk.f_bavail
    if blocks * disk.f_frsize < MIN_FREE_BYTES:
        raise low_disk_store_error(path, blocks * disk.f_frsize, MIN_FREE_BYTES)


def probe_write(conn: sqlite3.Connection, page_size: int) -> list[str]:
    """Insert a probe run and roll it back; return the migrations a newer workbench
    applied (then nothing is inserted). Raises sqlite3.Error where a real run would fail.

    The probe needs the write lock and write access, takes a new page (its output is a
    page long, so a full database or a lowered max_page_count refuses it), lands on the
    table's last page as a real run does (its rowid, run_id and created_at sort last; a
    damaged last page fails here), and must fill every NOT NULL column, including one a
    newer workbench added."""
    probe = RunRecord(
        kind="chat",
        provider="workbench",
        model="write-probe",
        experiment="write-probe",
        request_hash="write-probe",
        output="x" * page_size,
    )
    insert = f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read under the write lock: another kernel may have migrated the file.
        unknown = unknown_migrations(conn)
        if not unknown:
            conn.execute(insert, record_to_row(probe))
        return unknown
    finally:
        with contextlib.suppress(sqlite3.Error):  # report the first error
            conn.execute("ROLLBACK")


def changed_table_error(path: Path, exc: StoreError) -> StoreError | None:
    """The refusal of a write that the runs table no longer takes (a newer workbench
    changed it), or None when ``exc`` is another failure."""
    reason = str(exc.__cause__).lower()
    if "not null constraint" not in reason and "no column named" not in reason:
        return None
    return StoreError(
        f"cannot write the workbench store {path}: its runs table no longer takes this"
        f" workbench's rows ({one_line(exc.__cause__ or exc)}); a newer workbench probably"
        " changed it: upgrade prompt-workbench, or point WORKBENCH_STORE (or"
        " wb.configure(store=...)) at another file"
    )
