"""The few SQL words that differ between the two stores' databases (SQLite, PostgreSQL).

Code outside the stores writes its SQL once, with ``?`` placeholders and the portable
``INSERT ... ON CONFLICT (...) DO UPDATE``, and runs it through the store's
``select_rows`` / ``execute`` / ``execute_many``; where a word differs it takes it from
``store.dialect``. Every fragment here is fixed text: no value is ever formatted into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Dialect", "SQLITE", "POSTGRES"]


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
)
