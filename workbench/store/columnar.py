"""The runs table read column-wise: SQLite -> Arrow -> the documented pandas dtypes.

sqlite3's ``fetchall()`` makes one Python object per value (38 columns x a million rows:
~11 s here); the ADBC SQLite driver fills Arrow columns in C++ without the GIL, so two
threads read two halves of the table at once, and only text columns become Python objects
(each distinct string once). :func:`read_runs_frame` returns ``None`` when the file cannot
be read this way (a value of the wrong type in a column, the driver missing), and the
store then falls back to sqlite3.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..frames import COLUMN_KINDS, ColumnKind, runs_frame_from_columns
from ..record import COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "read_runs_frame",
    "read_runs_table",
    "read_postgres_runs_table",
    "runs_frame_from_table",
    "gc_paused",
]

# Below this many rows one query on one thread is quicker than splitting the table.
_SPLIT_ROWS = 50_000
_READERS = 2  # the machines this runs on have 2 cores; a 4-way split measured no faster

# The driver infers each column's Arrow type from the first rows it sees, and fails when a
# later row disagrees (a column NULL in its first rows, text further down). A first row of
# typed literals, dropped after reading, fixes every column's type up front.
_LITERALS: dict[ColumnKind, str] = {
    "text": "''",
    "datetime": "''",
    "int": "0",
    "bool": "0",
    "float": "0.5",
}
_TYPED_FIRST_ROW = "SELECT " + ", ".join(
    f"{_LITERALS[COLUMN_KINDS[name]]} AS {name}" for name in COLUMNS
)
_COLUMN_LIST = ", ".join(COLUMNS)


def _arrow_types() -> dict[ColumnKind, Any]:
    import pyarrow as pa

    return {"text": pa.string, "int": pa.int64, "float": pa.float64}


def read_runs_table(
    uri: str, where: str, params: Sequence[Any], *, limit: int | None = None
) -> pa.Table | None:
    """The rows of ``runs`` matching ``where`` (an SQL ``WHERE`` clause with ``?``
    placeholders, or ``""``) as an Arrow table ordered by run_id, typed as the columns
    are (text string, counts int64, floats float64, flags bool, created_at timestamp in
    UTC), or ``None`` when this reader cannot read them. ``uri`` is a SQLite ``file:``
    URI; ``limit`` keeps the most recent rows.
    """
    try:
        import adbc_driver_sqlite.dbapi  # noqa: F401
    except ImportError:
        return None
    try:
        with gc_paused():
            if limit is not None:
                queries = [(f"{where} ORDER BY run_id DESC LIMIT ?", [*params, limit])]
            elif where:
                queries = [(where, list(params))]
            else:
                # rowid ranges split the table into parts read at once, each in table order.
                queries = [(" WHERE rowid > ? AND rowid <= ?", list(b)) for b in _parts(uri)]
            return _typed_table(_read_tables(uri, queries))
    except Exception:  # noqa: BLE001 - any failure of the fast path falls back to sqlite3
        return None


def read_runs_frame(
    uri: str, where: str, params: Sequence[Any], *, limit: int | None = None
) -> pd.DataFrame | None:
    """:func:`read_runs_table` as a DataFrame with the dtypes ``wb.runs()`` documents."""
    table = read_runs_table(uri, where, params, limit=limit)
    if table is None:
        return None
    with gc_paused():
        return runs_frame_from_columns(
            {name: _numpy_column(COLUMN_KINDS[name], table.column(name)) for name in COLUMNS}
        )


def _parts(uri: str) -> list[tuple[int, int]]:
    import adbc_driver_sqlite.dbapi as dbapi

    with dbapi.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT COALESCE(MIN(rowid), 0), COALESCE(MAX(rowid), 0) FROM runs")
        row = cur.fetchone()
    low, high = (int(row[0]) - 1, int(row[1])) if row else (0, 0)
    parts = _READERS if high - low >= _SPLIT_ROWS else 1
    step = (high - low) // parts
    edges = [low + i * step for i in range(parts)] + [high]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _read_tables(uri: str, queries: Sequence[tuple[str, list[Any]]]) -> list[pa.Table]:
    import adbc_driver_sqlite.dbapi as dbapi

    def read(query: tuple[str, list[Any]]) -> pa.Table:
        tail, params = query
        select = f"SELECT {_COLUMN_LIST} FROM runs{tail}"
        if " LIMIT " in tail:
            # ORDER BY/LIMIT bind to the whole UNION unless inside a subquery; a subquery
            # costs ~40 % more per row, so only the queries that need one get it.
            select = f"SELECT * FROM ({select})"
        sql = f"{_TYPED_FIRST_ROW} UNION ALL {select}"
        with dbapi.connect(uri) as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetch_arrow_table().slice(1)

    if len(queries) == 1:
        return [read(queries[0])]
    with ThreadPoolExecutor(len(queries)) as pool:
        return list(pool.map(read, queries))


def _typed_table(tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    columns = []
    for name in COLUMNS:
        column = table.column(name).combine_chunks()
        kind = COLUMN_KINDS[name]
        if kind == "bool":
            column = pc.not_equal(column, 0)  # SQLite's 0/1
        elif kind == "datetime":
            column = pc.cast(column, pa.timestamp("us", tz="UTC"))
        else:
            # Within its first batch the driver widens a column of mixed values to text;
            # a safe cast refuses 'three' in a count instead of passing it on.
            column = column.cast(_arrow_types()[kind]())
        columns.append(column)
    typed = pa.Table.from_arrays(columns, names=list(COLUMNS))
    run_ids = typed.column("run_id")
    # Table order is append order, nearly always run_id order; sort only if not.
    if len(run_ids) > 1 and not pc.all(pc.less_equal(run_ids[:-1], run_ids[1:])).as_py():
        typed = typed.take(pc.sort_indices(run_ids))
    return typed


def _numpy_column(kind: ColumnKind, column: pa.ChunkedArray) -> Any:
    """One typed Arrow column as the numpy/pandas array of its documented dtype."""
    chunk = column.combine_chunks()
    if kind == "int":
        values = chunk.fill_null(0).to_numpy(zero_copy_only=False).astype("int64", copy=False)
        mask = chunk.is_null().to_numpy(zero_copy_only=False)
        return pd.arrays.IntegerArray(values, mask)
    if kind in ("float", "bool"):
        return chunk.to_numpy(zero_copy_only=False)  # a null float is NaN; flags never null
    if kind == "datetime":
        return chunk.to_pandas().array
    return _text_objects(chunk)


def _text_objects(chunk: pa.Array) -> np.ndarray[Any, Any]:
    """str-or-None objects; a column of few distinct values makes each string once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    size = len(chunk)
    sample = chunk.slice(0, 2_000)
    # Most text columns (kind, model, experiment, status, params...) repeat a handful of
    # values: one Python string per distinct value and a numpy take instead of a million
    # new objects (~0.04 s a column instead of ~0.13 s). Unique columns (run_id, outputs)
    # would pay for the dictionary and gain nothing, so a sample decides.
    if size >= 10_000 and pc.count_distinct(sample, mode="all").as_py() * 4 < len(sample):
        encoded = pc.dictionary_encode(chunk)
        assert isinstance(encoded, pa.DictionaryArray)
        distinct = np.empty(len(encoded.dictionary) + 1, dtype=object)  # last: None
        distinct[:-1] = encoded.dictionary.to_numpy(zero_copy_only=False)
        indices = encoded.indices.fill_null(len(distinct) - 1).to_numpy(zero_copy_only=False)
        return distinct[indices]  # type: ignore[no-any-return]
    return chunk.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a table's worth of objects is made."""
    # A million new tuples or strings set off the collector again and again (each pass
    # walks every object made so far); none of them can form a cycle.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2...`` (what the ADBC driver binds)."""
    parts = sql.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


def read_postgres_runs_table(
    uri: str, where: str, params: Sequence[Any], limit: int | None = None
) -> pa.Table | None:
    """:func:`read_runs_table` for a PostgreSQL ``uri``: the ADBC driver reads the
    server's binary COPY stream into Arrow; ``None`` when the driver is missing or fails."""
    try:
        import adbc_driver_postgresql.dbapi as dbapi
    except ImportError:
        return None
    columns = ", ".join(f'"{name}"' for name in COLUMNS)  # "user" is a reserved word
    sql = f"SELECT {columns} FROM runs{where}"
    bound = list(params)
    if limit is not None:
        sql = f"SELECT * FROM ({sql} ORDER BY run_id DESC LIMIT ?) AS newest"
        bound.append(limit)
    try:
        with gc_paused(), dbapi.connect(uri) as conn, conn.cursor() as cur:
            cur.execute(_numbered(sql), bound or None)
            table = cur.fetch_arrow_table()
        if table.num_rows == 0:
            return _typed_table([_empty_table()])
        return _typed_table([table])
    except Exception:  # noqa: BLE001 - any failure of the fast path falls back to psycopg
        return None


def _empty_table() -> pa.Table:
    import pyarrow as pa

    types = {**_arrow_types(), "bool": pa.int64, "datetime": pa.string}
    return pa.table({name: pa.array([], types[COLUMN_KINDS[name]]()) for name in COLUMNS})


def runs_frame_from_table(table: pa.Table) -> pd.DataFrame:
    """A typed Arrow table of runs as the DataFrame ``wb.runs()`` documents."""
    with gc_paused():
        return runs_frame_from_columns(
            {name: _numpy_column(COLUMN_KINDS[name], table.column(name)) for name in COLUMNS}
        )
