"""The few SQL words that differ between the stores' databases and drivers: SQLite
(sqlite3), PostgreSQL through psycopg, and PostgreSQL through the ADBC driver.

Every statement is built for one dialect and carries that driver's own placeholder from
the start (``?``, ``%s`` or ``$1, $2, ...``, through :meth:`Dialect.param` / ``mark`` /
``marks``): no SQL text is ever scanned or rewritten afterwards, and values are always
bound parameters, never formatted into SQL. psycopg reads every ``%`` of a statement with
parameters as the start of one, so no builder writes a literal ``%`` (a ``LIKE`` pattern
is a bound value).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["Dialect", "SQLITE", "POSTGRES", "POSTGRES_ADBC"]


@dataclass(frozen=True)
class Dialect:
    """SQL fragments of one database, as one driver takes them."""

    name: str
    # Insertion order of an append-only table, to break ties between equal timestamps.
    row_order: str
    # The larger of two values in one row (SQLite's two-argument max()).
    greatest: str
    # The length of a JSON array kept as TEXT; {} is the column.
    json_length: str
    # A parameter in the driver's own style: "?" (sqlite3), "%s" (psycopg), or "$" for
    # PostgreSQL's numbered $1, $2, ... (the ADBC driver).
    placeholder: str = "?"

    @property
    def numbered(self) -> bool:
        return self.placeholder == "$"

    def param(self, position: int) -> str:
        """The parameter at ``position`` (1 for the statement's first) of a statement."""
        if position < 1:
            raise ValueError(f"parameters are numbered from 1, not {position}")
        return f"${position}" if self.numbered else self.placeholder

    @property
    def mark(self) -> str:
        """The parameter where every one is written alike (``?``, ``%s``); a numbered
        dialect has none, its statements are built with :meth:`param`."""
        if self.numbered:
            raise ValueError(f"{self.name} numbers its parameters: build with param(position)")
        return self.placeholder

    def marks(self, count: int, first: int = 1) -> str:
        """``count`` parameters, comma-separated, the first at position ``first``."""
        return ", ".join(self.param(first + i) for i in range(count))

    def json_array_length(self, column: str) -> str:
        return self.json_length.format(column)


SQLITE = Dialect(
    name="sqlite", row_order="rowid", greatest="max", json_length="json_array_length({})"
)
# ctid is where a row sits in the table: for rows only ever appended (preferences) that is
# insertion order; an updated row (a dataset stored again) moves to the end, as its newer
# stored_at says it should.
POSTGRES = Dialect(
    name="postgresql",
    row_order="ctid",
    greatest="GREATEST",
    json_length="json_array_length(({})::json)",
    placeholder="%s",
)
# The same database through the ADBC driver (the column-wise read of runs), which binds
# PostgreSQL's own numbered parameters.
POSTGRES_ADBC = replace(POSTGRES, name="postgresql-adbc", placeholder="$")
