"""The few SQL words that differ between the two stores' databases (SQLite, PostgreSQL).

Code outside the stores writes its SQL once, with ``?`` placeholders and the portable
``INSERT ... ON CONFLICT (...) DO UPDATE``, and runs it through the store's
``select_rows`` / ``execute`` / ``execute_many``; where a word differs it takes it from
``store.dialect``. Every fragment here is fixed text: no value is ever formatted into SQL.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = ["Dialect", "SQLITE", "POSTGRES", "psycopg_sql", "numbered_sql"]

# One SQL token: a string literal ('it''s'), a quoted name ("user"), a comment, a "?"
# placeholder, or a run of anything else. A "?" inside a literal, a name or a comment is
# text, not a placeholder, so it is never turned into one.
_TOKEN = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\?|[^'"?\-/]+|.""", re.S
)


def _placeholders(sql: str, mark: object) -> str:
    counter = 0
    parts: list[str] = []
    for token in _TOKEN.findall(sql):
        if token == "?":
            counter += 1
            parts.append("%s" if mark == "%s" else f"${counter}")
        elif mark == "%s":
            parts.append(token.replace("%", "%%"))  # psycopg reads % everywhere
        else:
            parts.append(token)
    return "".join(parts)


@functools.lru_cache(maxsize=512)
def psycopg_sql(sql: str) -> str:
    """SQL written with ``?`` placeholders in psycopg's style: each placeholder ``%s``,
    each literal ``%`` doubled; a ``?`` inside a string literal, a quoted name or a
    comment stays as it is."""
    return _placeholders(sql, "%s")


@functools.lru_cache(maxsize=64)
def numbered_sql(sql: str) -> str:
    """SQL written with ``?`` placeholders with PostgreSQL's own ``$1, $2, ...`` (what the
    ADBC driver binds), placeholders found as in :func:`psycopg_sql`."""
    return _placeholders(sql, "$")


@dataclass(frozen=True)
class Dialect:
    """SQL fragments of one database."""

    name: str
    # Insertion order of an append-only table, to break ties between equal timestamps.
    row_order: str
    # The larger of two values in one row (SQLite's two-argument max()).
    greatest: str
    # The length of a JSON array kept as TEXT; {} is the column.
    json_length: str
    # A parameter in the driver's own style (sqlite3: ?, psycopg: %s): statements built
    # inside the stores put it in as they are written, with nothing to rewrite after.
    mark: str = "?"

    def marks(self, count: int) -> str:
        """``count`` parameters, comma-separated."""
        return ", ".join([self.mark] * count)

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
    mark="%s",
)
