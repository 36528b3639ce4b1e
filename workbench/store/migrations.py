"""The store's named migrations: the schema (:mod:`.schema`, one definition for both
databases) as SQLite runs it, which ones a database has applied, and applying the rest.

Migrations are applied in order and recorded by name with the time applied, so a store
created by any version of the workbench is brought up to date on open. PostgreSQL runs the
same steps rendered for it (:data:`POSTGRES_MIGRATIONS`, :mod:`.postgres_schema`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from workbench.core.errors import StoreError
from workbench.store.messages import newer_store_error as _newer_store_error
from workbench.store.messages import one_line
from workbench.store.schema import SCHEMA, Step, postgres_statements, sqlite_statements

__all__ = [
    "MIGRATIONS",
    "MIGRATIONS_TABLE",
    "POSTGRES_MIGRATIONS",
    "NotAWorkbenchStore",
    "SQLiteMigration",
    "applied_migrations",
    "pending_migrations",
    "unknown_migrations",
    "migrate",
    "has_table",
    "newer_store_error",
    "one_line",
]

MIGRATIONS_TABLE = "schema_migrations"


@dataclass(frozen=True)
class SQLiteMigration:
    """One named migration's steps, run on a SQLite connection by calling it."""

    steps: tuple[Step, ...]

    def __call__(self, conn: sqlite3.Connection) -> None:
        for statement in sqlite_statements(self.steps):
            conn.execute(statement)  # DDL: fixed text, no values in it


MIGRATIONS: tuple[tuple[str, SQLiteMigration], ...] = tuple(
    (name, SQLiteMigration(steps)) for name, steps in SCHEMA
)
"""Every migration in the order it must run, by the name recorded in the database."""

# The same migrations for PostgreSQL, rendered from the same steps.
POSTGRES_MIGRATIONS: dict[str, tuple[str, ...]] = {
    name: postgres_statements(steps) for name, steps in SCHEMA
}


def newer_store_error(path: Path | str, unknown: list[str]) -> StoreError:
    return _newer_store_error(path, unknown, MIGRATIONS[-1][0])


def applied_migrations(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, applied_at) of each migration recorded in the database, oldest first."""
    if not has_table(conn, MIGRATIONS_TABLE):
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
        if not has_table(conn, MIGRATIONS_TABLE) and _user_tables(conn):
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


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _user_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return [str(name) for (name,) in rows]


