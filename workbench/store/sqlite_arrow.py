"""The runs table of a SQLite store read into Arrow by the ADBC driver, in a process of
its own: ``python -m workbench.store.sqlite_arrow REQUEST_JSON``.

Why a process of its own: the ADBC driver links a second copy of SQLite. Two copies in one
process share POSIX locks without knowing it, so when one closes the file it drops the
other's locks; another process then thinks the store is idle, checkpoints and truncates
the ``-shm`` file, and the first copy's memory map of it faults (SIGBUS, seen in the crash
test). In a child that opens the file with this copy only, nothing is shared.

The child imports neither pandas nor the rest of the workbench (the column kinds come in
the request), writes an Arrow IPC file (or Parquet) where the request says, and exits 0;
any other exit means "read it another way".
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

_READERS = 2  # the machines this runs on have 2 cores; a 4-way split measured no faster

# The driver infers each column's Arrow type from the first rows it sees, and fails when a
# later row disagrees (a column NULL in its first rows, text further down). A first row of
# typed literals, dropped after reading, fixes every column's type up front.
_LITERALS = {"text": "''", "datetime": "''", "int": "0", "bool": "0", "float": "0.5"}


def read_table(
    uri: str,
    kinds: dict[str, str],
    where: str,
    params: Sequence[Any],
    limit: int | None = None,
    split_rows: int = 50_000,
) -> pa.Table | None:
    """The rows of ``runs`` matching ``where`` (a ``WHERE`` clause with ``?``
    placeholders, or ``""``), columns ``kinds`` (name -> text/int/float/bool/datetime)
    typed (string, int64, float64, bool, timestamp[us, UTC]) and ordered by run_id; None
    when a rowid-split read (from ``split_rows`` rows on) finds fewer rows than the table
    counts."""
    if limit is not None:
        latest = [(f"{where} ORDER BY run_id DESC LIMIT ?", [*params, limit])]
        return _typed(_read(uri, kinds, latest), kinds)
    if where:
        return _typed(_read(uri, kinds, [(where, list(params))]), kinds)
    rows, parts = _parts(uri, split_rows)
    tables = _read(uri, kinds, [(" WHERE rowid > ? AND rowid <= ?", list(b)) for b in parts])
    # A damaged page can make a rowid seek find nothing where a full scan fails loudly: a
    # count that disagrees sends the caller to the full scan.
    if sum(table.num_rows for table in tables) != rows:
        return None
    return _typed(tables, kinds)


def _parts(uri: str, split_rows: int) -> tuple[int, list[tuple[int, int]]]:
    """How many rows the table has and the rowid ranges that split it for the readers
    (runs are only ever appended, with growing rowids)."""
    import adbc_driver_sqlite.dbapi as dbapi

    with dbapi.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), IFNULL(MIN(rowid), 0), IFNULL(MAX(rowid), 0) FROM runs")
        row = cur.fetchone()
    rows, low, high = (int(row[0]), int(row[1]) - 1, int(row[2])) if row else (0, 0, 0)
    parts = _READERS if high - low >= split_rows else 1
    step = (high - low) // parts
    edges = [low + i * step for i in range(parts)] + [high]
    return rows, list(zip(edges[:-1], edges[1:], strict=True))


def _read(
    uri: str, kinds: dict[str, str], queries: Sequence[tuple[str, list[Any]]]
) -> list[pa.Table]:
    import adbc_driver_sqlite.dbapi as dbapi

    first_row = "SELECT " + ", ".join(f"{_LITERALS[k]} AS {name}" for name, k in kinds.items())
    columns = ", ".join(kinds)

    def read(query: tuple[str, list[Any]]) -> pa.Table:
        tail, params = query
        select = f"SELECT {columns} FROM runs{tail}"
        if " LIMIT " in tail:
            # ORDER BY/LIMIT bind to the whole UNION unless inside a subquery; a subquery
            # costs ~40 % more per row, so only the queries that need one get it.
            select = f"SELECT * FROM ({select})"
        with dbapi.connect(uri) as conn, conn.cursor() as cur:
            cur.execute(f"{first_row} UNION ALL {select}", params or None)
            return cur.fetch_arrow_table().slice(1)

    if len(queries) == 1:
        return [read(queries[0])]
    with ThreadPoolExecutor(len(queries)) as pool:  # the driver reads without the GIL
        return list(pool.map(read, queries))


def _typed(tables: list[pa.Table], kinds: dict[str, str]) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    plain = {"text": pa.string(), "int": pa.int64(), "float": pa.float64()}
    columns = []
    for name, kind in kinds.items():
        column = table.column(name).combine_chunks()
        if kind == "bool":
            column = pc.not_equal(column, 0)  # SQLite's 0/1
        elif kind == "datetime":
            column = pc.cast(column, pa.timestamp("us", tz="UTC"))
        else:
            # Within its first batch the driver widens a column of mixed values to text;
            # a safe cast refuses 'three' in a count instead of passing it on.
            column = column.cast(plain[kind])
        columns.append(column)
    typed = pa.Table.from_arrays(columns, names=list(kinds))
    run_ids = typed.column("run_id")
    # Table order is append order, nearly always run_id order; sort only if not.
    if len(run_ids) > 1 and not pc.all(pc.less_equal(run_ids[:-1], run_ids[1:])).as_py():
        typed = typed.take(pc.sort_indices(run_ids))
    return typed


def main(argv: Sequence[str]) -> int:
    request = json.loads(argv[0])
    table = read_table(
        request["uri"],
        request["kinds"],
        request["where"],
        request["params"],
        request["limit"],
        request["split_rows"],
    )
    if table is None:
        return 3
    if request["format"] == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, request["out"])
    else:
        import pyarrow as pa

        with pa.OSFile(request["out"], "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
