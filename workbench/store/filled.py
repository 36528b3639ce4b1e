"""A SQLite store's filled-columns hint: which runs columns hold a value in some row.

Reading a column of NULLs costs the ADBC driver about as much as reading one of values
(~100 ns a value), and most stores leave a third of the columns empty in every row
(datasets, lineage, reasoning...): a million runs with 21 of 54 columns empty read in
~60 % of the CPU when those are left out. The hint lives in the one-row table
``runs_filled`` (migration m014, counted from the rows already there), bit i for
``schema.FILLED_COLUMNS[i]``, and the workbench's writers set the bits of what they insert
in the same transaction. It is a hint, not a promise: another program (the sqlite3 shell, a
DB browser) can write rows without it. So the store keeps beside it a guard: a partial
index of the rows holding a value in a column the hint calls empty. SQLite keeps an index
for every writer, so the guard is empty exactly while the hint is right, and the reader
(:mod:`.sqlite_arrow`) asks it in its read's snapshot. If a row is there, the table is read
again whole and the store mends the hint (:meth:`FilledHint.mend`), which rebuilds the
guard for the new hint. A store without a usable guard (dropped by hand, read-only) is
checked row by row as it is read. A stale hint costs a second read, never a wrong value.

The guard costs a write nearly nothing while the hint is right (SQLite tests the row
against its condition; nothing is added to the index). Building it reads the whole table
(~0.7 s a million rows): when a store is first opened by this version, and when the
workbench fills a column no row held before, which in a long-lived store happens while it
is still small.

Why not triggers, which would see every writer: an AFTER INSERT trigger on ``runs``, even
one that does nothing, doubled the CPU of a batched insert here (20 -> 40 us a row).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from workbench.store.schema import FILLED_COLUMNS, FILLED_TABLE
from workbench.store.sqlite_arrow import GUARD_INDEX, any_filled

__all__ = ["FilledHint", "guard_is_kept", "guard_sql", "insert_runs", "keep_guard", "rows_changed"]


class FilledHint:
    """The bits one store object has already made sure of, so an append checks only the
    columns still empty (a few ``is not None`` a row) and writes nothing once all are set."""

    def __init__(self) -> None:
        self._known = 0
        self._usable = True

    def note(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Set the bits of the columns ``rows`` (in ``record.COLUMNS`` order) fill, in the
        transaction that inserts them."""
        new = 0
        for i in range(len(FILLED_COLUMNS)):
            if not self._known >> i & 1 and any(row[i] is not None for row in rows):
                new |= 1 << i
        if new:
            self.mend(conn, new)

    def mend(self, conn: sqlite3.Connection, bits: int) -> None:
        """Set ``bits`` in the table (within the caller's write transaction)."""
        if not self._usable:
            return
        try:
            # The WHERE leaves the page alone when the bits are set already.
            conn.execute(
                f"UPDATE {FILLED_TABLE} SET mask = mask | ? WHERE mask | ? != mask", (bits, bits)
            )
        except sqlite3.OperationalError:
            # The table dropped by hand: the rows still land (a failed statement leaves
            # the transaction as it was), and the reader, finding no hint, reads every
            # column.
            self._usable = False
            return
        keep_guard(conn)  # a question to sqlite_master, and a build when the hint grew
        self._known |= bits


def guard_sql(mask: int) -> str | None:
    """The guard index for the hint ``mask``; None when it calls no column empty."""
    empty = [name for i, name in enumerate(FILLED_COLUMNS) if not mask >> i & 1]
    # Written as SQLite keeps it in sqlite_master (single spaces), so the two compare.
    if not empty:
        return None
    return f"CREATE INDEX {GUARD_INDEX} ON runs (run_id) WHERE {any_filled(empty)}"


def guard_is_kept(conn: sqlite3.Connection) -> bool:
    """Whether the guard index is the one the hint calls for (or the store has no hint)."""
    try:
        mask, built = conn.execute(
            f"SELECT (SELECT mask FROM {FILLED_TABLE}),"
            " (SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?)",
            (GUARD_INDEX,),
        ).fetchone()
    except sqlite3.OperationalError:  # the hint's table dropped by hand: nothing to guard
        return True
    return bool(built == guard_sql(mask))


def keep_guard(conn: sqlite3.Connection) -> None:
    """Build the guard index the hint calls for, in the caller's write transaction."""
    if guard_is_kept(conn):
        return
    conn.execute(f"DROP INDEX IF EXISTS {GUARD_INDEX}")
    ((mask,),) = conn.execute(f"SELECT mask FROM {FILLED_TABLE}").fetchall()
    if (sql := guard_sql(mask)) is not None:
        conn.execute(sql)


def insert_runs(
    conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]], hint: FilledHint
) -> int:
    """Insert ``rows`` with ``sql`` and note them in ``hint``, in the caller's
    transaction; the number of rows inserted."""
    changed = rows_changed(conn.executemany(sql, rows))
    hint.note(conn, rows)
    return changed


def rows_changed(cursor: sqlite3.Cursor) -> int:
    """Rows the statement itself changed: its rowcount (summed over executemany), not the
    connection's ``total_changes``, which also counts what the statement set off (the
    hint's update made an import of 80 runs report 83)."""
    return max(cursor.rowcount, 0)  # -1: a statement that changes no rows (DDL)
