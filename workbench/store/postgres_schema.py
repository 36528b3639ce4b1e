"""The named migrations on a PostgreSQL database: which are applied, and applying the rest
under an advisory lock, so kernels starting at once migrate once. The statements come from
the one schema both databases share (:mod:`.schema`, as :data:`.migrations.POSTGRES_MIGRATIONS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.core.errors import StoreError
from workbench.store.common import now_iso
from workbench.store.migrations import MIGRATIONS, MIGRATIONS_TABLE, POSTGRES_MIGRATIONS

if TYPE_CHECKING:
    import psycopg

__all__ = ["applied", "pending", "unknown", "has_table", "apply_pending"]

# One 64-bit key for pg_advisory_xact_lock: "workbench" in ASCII, so other apps' locks
# on the same database do not collide with ours by accident.
MIGRATION_LOCK = 0x776F726B62656E63


def applied(conn: psycopg.Connection[Any]) -> list[str]:
    if not has_table(conn, MIGRATIONS_TABLE):
        return []
    rows = conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY applied_at, name")
    return [str(name) for (name,) in rows.fetchall()]


def pending(conn: psycopg.Connection[Any]) -> list[str]:
    done = set(applied(conn))
    return [name for name, _ in MIGRATIONS if name not in done]


def unknown(conn: psycopg.Connection[Any]) -> list[str]:
    """Migrations a newer workbench applied, which this one does not know."""
    known = {name for name, _ in MIGRATIONS}
    return [name for name in applied(conn) if name not in known]


def has_table(conn: psycopg.Connection[Any], name: str) -> bool:
    # A scan of the catalog under this statement's snapshot: to_regclass() may answer
    # from a cache that has not yet seen the tables another kernel's migration made.
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables"
        " WHERE schemaname = current_schema() AND tablename = %s)",
        (name,),
    ).fetchone()
    return bool(row and row[0])


def apply_pending(conn: psycopg.Connection[Any], label: str) -> None:
    """Apply the pending migrations in one transaction (psycopg's errors pass through)."""
    if not pending(conn):
        return  # the common case: no lock, no writes
    with conn.transaction():
        # Held to COMMIT: a second kernel waits here, then finds nothing pending.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        if not has_table(conn, MIGRATIONS_TABLE) and has_table(conn, "runs"):
            raise StoreError(
                f"{label} holds a runs table that is not a workbench store's:"
                " use another database (or schema) for the workbench"
            )
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}"
            " (name TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        for name in pending(conn):
            for statement in POSTGRES_MIGRATIONS[name]:
                conn.execute(statement)  # DDL: fixed text, no values in it
            conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (%s, %s)",
                (name, now_iso()),
            )
