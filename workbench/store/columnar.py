"""The runs table read column-wise: SQLite -> Arrow -> the documented pandas dtypes.

sqlite3's ``fetchall()`` makes one Python object per value (38 columns x a million rows:
~11 s here). A child process (:mod:`workbench.store.sqlite_arrow`) fills Arrow columns with the
ADBC SQLite driver, two threads on two halves of the table, each writing its batches to
an Arrow file of its own as they come; here the files are memory-mapped, text stays in
Arrow buffers (pandas 3's ``str``; with pandas 2, one Python object per distinct string)
and numbers become numpy arrays. :func:`read_runs_frame` returns ``None`` when the table
is small or cannot be read this way (a value of the wrong type in a column, the driver
missing), and the store then reads it with sqlite3.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.core.gcpause import gc_paused
from workbench.core.record import COLUMNS
from workbench.store.dialect import POSTGRES_ADBC
from workbench.store.frames import (
    COLUMN_KINDS,
    PANDAS_3,
    TEXT_DTYPE,
    ColumnKind,
    runs_frame_from_columns,
)
from workbench.store.schema import FILLED_COLUMNS
from workbench.store.sqlite_arrow import (
    arrow_schema,
    sort_by_run_id,
    typed_column,
    with_every_column,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "COLUMNAR_ROWS",
    "read_runs_frame",
    "export_parquet",
    "read_postgres_runs_table",
    "runs_frame_from_table",
    "gc_paused",
]

# Fewer rows than this are read by the store's own sqlite3 connection: the child process
# (~0.3-0.8 s to start with pyarrow) only pays off on big tables.
COLUMNAR_ROWS = 50_000
SPLIT_ROWS = 50_000  # and from this many on, two threads read two halves of the table


def read_runs_frame(
    uri: str,
    where: str,
    params: Sequence[Any],
    *,
    limit: int | None = None,
    rows: int,
    note_filled: Callable[[int], None] | None = None,
) -> pd.DataFrame | None:
    """The rows of ``runs`` matching ``where`` (a ``WHERE`` clause with ``?``
    placeholders, or ``""``) as a frame with the dtypes ``wb.runs()`` documents, read by
    a child process; ``None`` when it is not worth it (``rows``, the number the query
    returns, is small) or the child cannot read them (the caller then uses sqlite3).
    ``note_filled(bits)`` mends the store's filled-columns hint when the read found it
    wrong (rows another program wrote), with the bits of the columns that hold a value."""
    if rows < COLUMNAR_ROWS:
        return None
    # The whole table: the child need not count it again (the caller just did).
    counted = rows if not where and limit is None else None
    read = _in_child(uri, where, params, limit, "arrow", counted=counted)
    if read is None or isinstance(read, Path):
        return None
    table, hint_missed = read
    if hint_missed and note_filled is not None:
        note_filled(sum(1 << i for i, name in enumerate(FILLED_COLUMNS)
                        if table.column(name).null_count < table.num_rows))
    return runs_frame_from_table(table)


def export_parquet(
    uri: str, where: str, params: Sequence[Any], target: Path, *, rows: int
) -> bool:
    """Write the matching rows to ``target`` as Parquet straight from Arrow (a million
    rows: the time of the read alone, no frame made and taken apart); False if not worth
    it (few ``rows``) or the child could not, and nothing was written."""
    if rows < COLUMNAR_ROWS:
        return False
    return _in_child(uri, where, params, None, "parquet", target) is not None


def _in_child(
    uri: str,
    where: str,
    params: Sequence[Any],
    limit: int | None,
    fmt: str,
    target: Path | None = None,
    counted: int | None = None,
) -> tuple[pa.Table, bool] | Path | None:
    """Run :mod:`workbench.store.sqlite_arrow` in a child process (see there why): the
    table read and whether the store's filled-columns hint was found wrong; or the
    Parquet file written."""
    try:
        import pyarrow as pa  # optional: the except branch handles its absence
    except ImportError:
        return None
    scratch = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    # The child writes one Arrow file per reading thread, each named from this prefix.
    prefix = scratch / f"workbench-runs-{os.getpid()}-{uuid.uuid4().hex}.arrow"
    request = {
        "uri": uri,
        "kinds": {name: COLUMN_KINDS[name] for name in COLUMNS},
        "where": where,
        "params": list(params),
        "limit": limit,
        "format": fmt,
        "out": str(target or prefix),
        "split_rows": SPLIT_ROWS,
        "counted": counted,
        # Whole-table reads leave out the columns this mask says are NULL in every row.
        "tracked": list(FILLED_COLUMNS),
    }
    child: subprocess.Popen[bytes] | None = None
    try:
        child = subprocess.Popen(
            _child_command(request),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_child_env(),
        )
        timer = threading.Timer(600, child.kill)
        timer.start()
        try:
            assert child.stdout is not None
            with child.stdout:
                out = child.stdout.read()  # until the child closes it: its last act
        finally:
            timer.cancel()
        if target is not None:
            return target if child.wait() == 0 else None
        # The files' paths come last and only from a read that succeeded; the child may
        # still be freeing its batches (0.1-0.7 s a million rows here) while this process
        # maps the files and builds the frame.
        # Memory-mapped: the frame's numbers are built from the files' pages, no copy.
        tables = []
        done = json.loads(out)
        for path in done["paths"]:
            with pa.memory_map(path) as source:
                tables.append(pa.ipc.open_file(source).read_all())
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        return table, bool(done["hint_missed"])
    except (OSError, ValueError, subprocess.SubprocessError, pa.ArrowException):
        return None
    finally:
        if child is not None and child.returncode is None:
            threading.Thread(target=child.wait, daemon=True).start()  # reaped aside
        for path in scratch.glob(f"{prefix.name}.*"):
            with contextlib.suppress(OSError):
                path.unlink()  # a mapping stays valid until its table is freed


# The reader run as a file, not as "-m workbench.store.sqlite_arrow": that would import the
# workbench package first (~0.14 s of a quiet machine's CPU, several times that under
# load) for a module that needs none of it. The child makes no reference cycles worth
# collecting: without the collector it saves its ~150 collections (~0.05 s of CPU). It
# uses no numpy either, which pyarrow imports when it can: kept out, the child starts
# ~0.045 s sooner, and numpy's OpenBLAS threads no longer spin beside the readers (2.4 %
# of the child's CPU in a profile of a million rows).
_READER = Path(__file__).resolve().parent / "sqlite_arrow.py"
_RUN_READER = (
    "import gc, sys; gc.disable(); sys.modules['numpy'] = None; import runpy;"
    " path = sys.argv[1]; sys.argv = sys.argv[1:]; runpy.run_path(path, run_name='__main__')"
)


def _child_command(request: dict[str, Any]) -> list[str]:
    # -S: no site module and its .pth files (~15 ms); the path comes from this process.
    return [sys.executable, "-S", "-c", _RUN_READER, str(_READER), json.dumps(request, default=str)]


def _child_env() -> dict[str, str]:
    # The child imports the same pyarrow and driver as this process: its path, as it is
    # ("" would be the child's working folder, not necessarily this one's).
    path = os.pathsep.join(str(Path(p).resolve()) if p else os.getcwd() for p in sys.path)
    return {**os.environ, "PYTHONPATH": path}


def _numpy_column(kind: ColumnKind, column: pa.ChunkedArray) -> Any:
    """One typed Arrow column as the numpy/pandas array of its documented dtype."""
    if kind == "text":
        return _text_array(column)
    if kind == "int":
        values = _writable(column.fill_null(0) if column.null_count else column)
        mask = (
            _writable(column.is_null()) if column.null_count else np.zeros(len(column), bool)
        )
        return pd.arrays.IntegerArray(values.astype("int64", copy=False), mask)
    if kind in ("float", "bool"):
        return _writable(column)  # a null float is NaN; flags never null
    return pd.array(_writable(column), dtype="datetime64[us, UTC]")


def _writable(column: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """A column's values as one numpy array the frame may change: numpy's view of an Arrow
    buffer is read-only, and these buffers are the mapped files' pages (a frame whose
    ``loc[...] = ...`` failed with "assignment destination is read-only"). One copy, as
    combine_chunks made before."""
    arrays: list[np.ndarray[Any, Any]] = [
        chunk.to_numpy(zero_copy_only=False) for chunk in column.chunks
    ]
    if not arrays:
        return column.to_numpy()  # type: ignore[no-any-return]
    if len(arrays) == 1:
        return arrays[0] if arrays[0].flags.writeable else arrays[0].copy()
    return np.concatenate(arrays)


def _text_array(column: pa.ChunkedArray) -> Any:
    if PANDAS_3:
        # pandas' own str dtype holds the Arrow buffers as they are, chunks and all (a
        # column of a million values: ~3 ms, against ~0.13 s as Python strings, and
        # against copying its ~25 MB of text into one chunk first).
        return pd.array(column, dtype=TEXT_DTYPE)
    return _text_objects(column.combine_chunks())


def _text_objects(chunk: pa.Array) -> np.ndarray[Any, Any]:
    """str-or-None objects; a column of few distinct values makes each string once."""
    import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)
    import pyarrow.compute as pc  # deferred: keeps import workbench light (pyarrow.compute ~0.2 s)

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


def read_postgres_runs_table(
    uri: str, where: str, params: Sequence[Any], limit: int | None = None
) -> pa.Table | None:
    """:func:`read_runs_table` for a PostgreSQL ``uri`` on a connection of its own."""
    reader = PostgresArrowReader(uri)
    try:
        return reader.read(where, params, limit)
    finally:
        reader.close()


class PostgresArrowReader:
    """Runs read column-wise from PostgreSQL: the ADBC driver reads the server's binary
    COPY stream into Arrow. Its connection stays open between reads: opening one costs
    a server process (~65 ms a ``wb.runs()`` of 20 rows here, against ~5 ms on an open
    connection). One read at a time, under its own lock: not the store's, so a long read
    does not hold up another thread's appends."""

    def __init__(self, uri: str) -> None:
        self._uri = uri  # holds the password: never shown (no __repr__ of it)
        self._conn: Any = None
        self._lock = threading.Lock()

    def read(self, where: str, params: Sequence[Any], limit: int | None = None) -> pa.Table | None:
        """The rows of ``runs`` matching ``where`` (built in ``POSTGRES_ADBC``: $1, $2,
        ...), typed; ``None`` when the driver is missing or fails (the store then reads
        with psycopg)."""
        try:
            # optional: the except branch handles its absence
            import adbc_driver_postgresql.dbapi as dbapi
        except ImportError:
            return None
        columns = ", ".join(f'"{name}"' for name in COLUMNS)  # "user" is a reserved word
        sql = f"SELECT {columns} FROM runs{where}"
        bound = list(params)
        if limit is not None:
            bound.append(limit)
            limit_at = POSTGRES_ADBC.param(len(bound))
            sql = f"SELECT * FROM ({sql} ORDER BY run_id DESC LIMIT {limit_at}) AS newest"
        with self._lock:
            return self._read(dbapi, sql, bound)

    def _read(self, dbapi: Any, sql: str, bound: list[Any]) -> pa.Table | None:
        for _ in range(2):  # a connection the server dropped (a restart) is reopened once
            try:
                if self._conn is None:
                    # autocommit: an open transaction would hold a lock on runs between
                    # reads, and another kernel's migration would wait for it.
                    self._conn = dbapi.connect(self._uri, autocommit=True)
                with gc_paused(), self._conn.cursor() as cur:
                    cur.execute(sql, bound or None)
                    table = cur.fetch_arrow_table()

                kinds: dict[str, str] = {name: COLUMN_KINDS[name] for name in COLUMNS}
                return _typed_table(_empty_table() if table.num_rows == 0 else table, kinds)
            except Exception:  # noqa: BLE001 - any failure of the fast path falls back
                self._drop()
        return None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def _typed_table(table: pa.Table, kinds: dict[str, str]) -> pa.Table:
    """A table read by a driver (PostgreSQL's) in the documented Arrow types, ordered by
    run_id."""
    import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)
    import pyarrow.compute as pc  # deferred: keeps import workbench light (pyarrow.compute ~0.2 s)

    columns = [typed_column(table.column(name), kind) for name, kind in kinds.items()]
    typed = pa.Table.from_arrays(columns, schema=arrow_schema(kinds))
    run_ids = typed.column("run_id")
    # Table order is append order, nearly always run_id order; sort only if not.
    if len(run_ids) > 1 and not pc.all(pc.less_equal(run_ids[:-1], run_ids[1:])).as_py():
        typed = sort_by_run_id(typed)
    return typed


def _empty_table() -> pa.Table:
    import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)

    types = {"text": pa.string, "int": pa.int64, "float": pa.float64, "bool": pa.int64,
             "datetime": pa.string}
    return pa.table({name: pa.array([], types[COLUMN_KINDS[name]]()) for name in COLUMNS})


def runs_frame_from_table(table: pa.Table) -> pd.DataFrame:
    """A typed Arrow table of runs as the DataFrame ``wb.runs()`` documents (columns it
    lacks, left out of the read as NULL in every row, come back as missing values)."""
    if table.num_columns < len(COLUMNS):
        table = with_every_column(table, {name: COLUMN_KINDS[name] for name in COLUMNS})
    with gc_paused():
        return runs_frame_from_columns(
            {name: _numpy_column(COLUMN_KINDS[name], table.column(name)) for name in COLUMNS}
        )
