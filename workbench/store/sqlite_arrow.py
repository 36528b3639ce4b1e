"""The runs table of a SQLite store read into Arrow by the ADBC driver, in a process of
its own: ``python sqlite_arrow.py REQUEST_JSON`` (run as a file, see ``columnar``).

Why a process of its own: the ADBC driver links a second copy of SQLite. Two copies in one
process share POSIX locks without knowing it, so when one closes the file it drops the
other's locks; another process then thinks the store is idle, checkpoints and truncates
the ``-shm`` file, and the first copy's memory map of it faults (SIGBUS, seen in the crash
test). In a child that opens the file with this copy only, nothing is shared.

The child imports neither pandas nor the rest of the workbench (the column kinds come in
the request). For an Arrow hand-over each reading thread writes its typed batches, as the
driver yields them, to an Arrow IPC file of its own and the child prints the files' paths
as a JSON list; for Parquet it writes the one file the request names. It exits 0; any
other exit means "read it another way".
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

_BATCH_OPTION = "adbc.sqlite.query.batch_rows"  # the driver's statement option
BATCH_ROWS = 65_536  # see _read for why not the driver's 1,024
_BUSY_MS = 10_000  # how long a reader waits for a lock another connection holds
# The store's filled-columns table (workbench.store.schema.FILLED_TABLE: this file imports
# nothing of the workbench; a test holds the two names equal).
FILLED_TABLE = "runs_filled"
# A partial index of the rows holding a value in a column the hint calls empty: SQLite keeps
# it for every writer, so it is empty exactly while the hint is right (workbench.store.filled
# keeps it in step with the hint).
GUARD_INDEX = "runs_filled_guard"
_READERS = 2  # the machines this runs on have 2 cores; a 4-way split measured no faster

# The driver infers each column's Arrow type from the first rows it sees, and fails when a
# later row disagrees (a column NULL in its first rows, text further down). A first row of
# typed literals, dropped after reading, fixes every column's type up front.
_LITERALS = {"text": "''", "datetime": "''", "int": "0", "bool": "0", "float": "0.5"}


class BatchSink(Protocol):
    """Where one part's typed batches go as they are read."""

    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


@dataclass
class Part:
    """What one reading thread saw: rows, whether its run_ids rose, its first and last."""

    sink: Any
    rows: int = 0
    in_order: bool = True
    first: str | None = None
    last: str | None = None
    filled_elsewhere: bool = False  # a row holds a value in a left-out column
    hint_missed: bool = False  # so this part was read again with every column


@dataclass
class _Collected:
    """A sink that keeps the batches (the Parquet export, the tests)."""

    batches: list[pa.RecordBatch] = field(default_factory=list)

    def write(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def close(self) -> None:
        pass


class _ArrowFile:
    """A sink that writes an Arrow IPC file in the schema of its first batch (the columns
    read: those never filled are left out, see :func:`read_parts`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sink: Any = None
        self._writer: Any = None

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)

            self._sink = pa.OSFile(self.path, "wb")
            self._writer = pa.ipc.new_file(self._sink, batch.schema)
        self._writer.write_batch(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()


def arrow_schema(kinds: dict[str, str]) -> pa.Schema:
    """The Arrow type of each column kind."""
    import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)

    types = {
        # large_string (64-bit offsets): what pandas' str dtype holds. Given string, pandas
        # casts every text column in the notebook's process after the read: a million
        # rows, ~0.9 s of the parent's CPU (most of it the kernel zeroing new pages),
        # where the reading threads' cast of each batch costs next to nothing.
        "text": pa.large_string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "datetime": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, types[kind]) for name, kind in kinds.items()])


def read_table(
    uri: str,
    kinds: dict[str, str],
    where: str,
    params: Sequence[Any],
    limit: int | None = None,
    split_rows: int = 50_000,
    tracked: Sequence[str] = (),
) -> pa.Table | None:
    """The rows of ``runs`` matching ``where`` (a ``WHERE`` clause with ``?``
    placeholders, or ``""``), columns ``kinds`` (name -> text/int/float/bool/datetime)
    typed (large_string, int64, float64, bool, timestamp[us, UTC]) and ordered by run_id; None
    when a rowid-split read (from ``split_rows`` rows on) finds fewer rows than the table
    counts."""
    import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)

    parts = read_parts(
        uri, kinds, where, params, limit, split_rows, lambda _: _Collected(), tracked=tracked
    )
    if parts is None:
        return None
    batches = [batch for part in parts for batch in part.sink.batches]
    table = pa.Table.from_batches(batches, schema=batches[0].schema)
    table = table if in_order(parts) else sort_by_run_id(table)
    return with_every_column(table, kinds)


def with_every_column(table: pa.Table, kinds: dict[str, str]) -> pa.Table:
    """``table`` with the columns :func:`read_parts` left out (NULL in every row) put
    back as columns of nulls, in the order of ``kinds``."""
    import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)

    schema = arrow_schema(kinds)
    # One array of nulls per type, shared (Arrow arrays never change): 17 text columns of a
    # million nulls each made 0.39 s of the notebook's CPU, most of it zeroing new pages.
    nulls: dict[pa.DataType, pa.Array] = {}
    columns = []
    for name, kind in zip(schema.names, schema.types, strict=True):
        if name in table.column_names:
            columns.append(table.column(name))
        else:
            if kind not in nulls:
                nulls[kind] = pa.nulls(table.num_rows, kind)
            columns.append(nulls[kind])
    return pa.Table.from_arrays(columns, schema=schema)


def read_parts(
    uri: str,
    kinds: dict[str, str],
    where: str,
    params: Sequence[Any],
    limit: int | None,
    split_rows: int,
    sink: Callable[[int], BatchSink],
    counted: int | None = None,
    tracked: Sequence[str] = (),
) -> list[Part] | None:
    """Read the matching rows in one part, or (a whole large table) in rowid ranges read
    by threads of their own; each typed batch goes to its part's ``sink(index)`` as it
    arrives. None when the parts hold fewer rows than the table counts, or than
    ``counted``: the caller's count of the whole table just before (then not counted
    again; rows appended since may make the parts hold more).

    A whole-table read leaves out the columns of ``tracked`` that the store's
    filled-columns hint (bit i for ``tracked[i]``) says are NULL in every row; its
    batches then lack them (:func:`with_every_column` puts them back). The hint is kept by
    the workbench's own writers, so another program's rows can prove it wrong: each part
    asks the store's guard index, in its read's snapshot, whether any row holds a value in
    a left-out column (or, with no guard to ask, counts its range and reads only rows with
    those columns all NULL; :func:`_read`); if one does, the table is read again whole and
    the parts say so (``Part.hint_missed``)."""
    if limit is not None:
        latest = [(f"{where} ORDER BY run_id DESC LIMIT ?", [*params, limit])]
        return _read(uri, kinds, latest, sink)
    if where:
        return _read(uri, kinds, [(where, list(params))], sink)
    rows, bounds, mask = _parts(uri, split_rows, count=counted is None, masked=bool(tracked))
    ranges = [(" WHERE rowid > ? AND rowid <= ?", list(b)) for b in bounds]
    left_out = _left_out(tracked, mask, kinds)
    parts = _read(uri, {n: k for n, k in kinds.items() if n not in left_out}, ranges, sink,
                  left_out)
    if any(part.filled_elsewhere for part in parts):
        parts = _read(uri, kinds, ranges, sink)
        for part in parts:
            part.hint_missed = True
    # A damaged page can make a rowid seek find nothing where a full scan fails loudly: a
    # count that disagrees sends the caller to the full scan.
    read = sum(part.rows for part in parts)
    if read != rows if counted is None else read < counted:
        return None
    return parts


def _left_out(tracked: Sequence[str], mask: int | None, kinds: dict[str, str]) -> list[str]:
    """The tracked columns of ``kinds`` whose bit in ``mask`` (None: no hint) is clear;
    none if that would leave out run_id, which the read needs (a table with no rows)."""
    if mask is None:
        return []
    empty = [name for i, name in enumerate(tracked) if name in kinds and not mask >> i & 1]
    return [] if "run_id" in empty else empty


def in_order(parts: Sequence[Part]) -> bool:
    """Whether the parts, one after another, hold their rows in run_id order."""
    if not all(part.in_order for part in parts):
        return False
    ends = [(part.first, part.last) for part in parts if part.rows]
    return all(a[1] <= b[0] for a, b in zip(ends, ends[1:], strict=False))  # type: ignore[operator]


def sort_by_run_id(table: pa.Table) -> pa.Table:
    import pyarrow.compute as pc  # deferred: keeps import workbench light (pyarrow.compute ~0.2 s)

    return table.take(pc.sort_indices(table.column("run_id")))


def _parts(
    uri: str, split_rows: int, count: bool = True, masked: bool = False
) -> tuple[int | None, list[tuple[int, int]], int | None]:
    """How many rows the table has (None unless ``count``), the rowid ranges that split
    it for the readers (runs are only ever appended, with growing rowids) and, if
    ``masked``, the store's filled-columns hint (None for a store without one)."""
    # Without the count, each bound is one seek at an end of the table; COUNT(*) scans an
    # index (a million rows: ~0.06 s of CPU, ~0.1 s before the readers can start).
    bounds = "IFNULL((SELECT MIN(rowid) FROM runs), 0), IFNULL((SELECT MAX(rowid) FROM runs), 0)"
    sql = f"SELECT {'(SELECT COUNT(*) FROM runs)' if count else 'NULL'}, {bounds}"
    found = None
    if masked:
        try:
            found = _one_row(uri, f"{sql}, (SELECT mask FROM {FILLED_TABLE})")
        except Exception:  # noqa: BLE001 - a store from before the mask (read-only, say)
            found = None
    if found is None:
        found = [*_one_row(uri, sql), None]
    rows = None if found[0] is None else int(found[0])
    mask = None if found[3] is None else int(found[3])
    low, high = int(found[1]) - 1, int(found[2])
    parts = _READERS if high - low >= split_rows else 1
    step = (high - low) // parts
    edges = [low + i * step for i in range(parts)] + [high]
    return rows, list(zip(edges[:-1], edges[1:], strict=True)), mask


def _one_row(uri: str, sql: str) -> list[Any]:
    with _query(uri, sql, []) as reader:
        return [column[0].as_py() for column in reader.read_all().columns]


def _read(
    uri: str,
    kinds: dict[str, str],
    queries: Sequence[tuple[str, list[Any]]],
    sink: Callable[[int], BatchSink],
    left_out: Sequence[str] = (),
) -> list[Part]:
    """Each query's rows, typed, to its part's sink. With ``left_out`` (queries that are
    whole WHERE clauses), the part is ``filled_elsewhere`` when a row holds a value in one
    of those columns, as the store's guard index answers in the read's own snapshot.
    Without a guard that covers them, the part counts the rows its WHERE matches and reads
    only those with the columns all NULL: ~6 % more wall and CPU for a million rows
    (median of 14 alternated pairs), the count scanning every page of the range."""
    import pyarrow.compute as pc  # deferred: keeps import workbench light (pyarrow.compute ~0.2 s)

    first_row = "SELECT " + ", ".join(f"{_LITERALS[k]} AS {name}" for name, k in kinds.items())
    columns = ", ".join(kinds)
    schema = arrow_schema(kinds)
    all_null = " AND ".join(f"{_quoted(name)} IS NULL" for name in left_out)

    def read(index: int) -> Part:
        tail, params = queries[index]
        select = f"SELECT {columns} FROM runs{tail}"
        part = Part(sink(index))
        skip = 1  # the typed first row
        try:
            with _connection(uri) as statement:
                matched = None
                if left_out:
                    _execute(statement, "BEGIN")  # one snapshot for the check and the rows
                    found = _filled_by_guard(statement, left_out)
                    if found:  # the table is read again whole
                        part.filled_elsewhere = True
                        return part
                    if found is None:
                        matched = _scalar(statement, f"SELECT COUNT(*) FROM runs{tail}", params)
                        select += f" AND {all_null}"
                if " LIMIT " in tail:
                    # ORDER BY/LIMIT bind to the whole UNION unless inside a subquery; a
                    # subquery costs ~40 % more per row, so only the queries that need one
                    # get it.
                    select = f"SELECT * FROM ({select})"
                # BATCH_ROWS rows a batch rather than the driver's 1,024: each batch is
                # typed in Python, 38 casts a batch (a million rows in two threads: 4.55 s
                # of CPU at 65,536, 4.74 s at 8,192, 5.94 s at 1,024;
                # bench/store_read_phases.py), and the frame's text columns keep the
                # batches as chunks that every pandas operation loops over.
                statement.set_options(**{_BATCH_OPTION: str(BATCH_ROWS)})
                with _stream(statement, f"{first_row} UNION ALL {select}", params) as reader:
                    # Batch by batch, typed and handed on as the driver yields them: the
                    # million-row table was read, then concatenated, cast column by column
                    # and written in a second and third pass (2.1 s + 1.0 s of the child's
                    # 7.7 s).
                    for raw in reader:
                        batch = _typed_batch(raw.slice(skip), kinds, schema)
                        if batch.num_rows:
                            _note_order(part, batch.column(schema.get_field_index("run_id")), pc)
                        if batch.num_rows or skip:  # the first even empty: it gives the schema
                            part.sink.write(batch)
                        skip = 0
                if left_out:
                    _execute(statement, "COMMIT")
            part.filled_elsewhere = matched is not None and part.rows != matched
        finally:
            part.sink.close()
        return part

    if len(queries) == 1:
        return [read(0)]
    with ThreadPoolExecutor(len(queries)) as pool:  # the driver reads without the GIL
        return list(pool.map(read, range(len(queries))))


def any_filled(columns: Sequence[str]) -> str:
    """SQL true for a row holding a value in any of ``columns``: the guard index's
    condition, and the reader's question to it (one text, so SQLite can match the two)."""
    return " OR ".join(f"{_quoted(name)} IS NOT NULL" for name in columns)


def _filled_by_guard(statement: Any, left_out: Sequence[str]) -> bool | None:
    """Whether a row holds a value in a ``left_out`` column, from the guard index; None
    when there is no guard, or one for other columns. ``INDEXED BY`` makes SQLite refuse
    ("no query solution") unless the question implies the index's condition, so a guard
    for fewer columns is never taken for an answer about more."""
    import adbc_driver_manager as adbc  # deferred: keeps import workbench light

    guarded = f"runs INDEXED BY {GUARD_INDEX} WHERE {any_filled(left_out)}"
    sql = f"SELECT EXISTS (SELECT 1 FROM {guarded})"
    try:
        return bool(_scalar(statement, sql, []))
    except adbc.Error:
        return None


@contextmanager
def _query(uri: str, sql: str, params: Sequence[Any]) -> Iterator[pa.RecordBatchReader]:
    """The batches of one statement on a connection of its own."""
    with _connection(uri) as statement, _stream(statement, sql, params) as reader:
        yield reader


@contextmanager
def _connection(uri: str) -> Iterator[Any]:
    """A statement on a connection of its own, through the driver manager's low-level API:
    its DB-API module imports pyarrow.dataset and with it pandas, for nothing this reader
    uses (the child's imports: 0.24-0.36 s of CPU instead of 0.55-1.0 s, 8 starts each,
    alternated, load average ~9)."""
    import adbc_driver_manager as adbc  # deferred: keeps import workbench light
    import adbc_driver_sqlite  # deferred: keeps import workbench light

    with (
        adbc_driver_sqlite.connect(uri) as database,
        adbc.AdbcConnection(database) as conn,
        adbc.AdbcStatement(conn) as statement,
    ):
        # Two readers opening a file no other connection holds (no -shm yet) race to set
        # up its WAL index; the loser got "database is locked" at once (4 times in 30
        # tries here) and the whole read fell back to sqlite3. A busy timeout waits.
        _execute(statement, f"PRAGMA busy_timeout = {_BUSY_MS}")
        yield statement


def _execute(statement: Any, sql: str) -> None:
    statement.set_sql_query(sql)
    statement.execute_update()


def _scalar(statement: Any, sql: str, params: Sequence[Any]) -> Any:
    with _stream(statement, sql, params) as reader:
        return reader.read_all().column(0)[0].as_py()


@contextmanager
def _stream(statement: Any, sql: str, params: Sequence[Any]) -> Iterator[pa.RecordBatchReader]:
    import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)

    statement.set_sql_query(sql)
    statement.prepare()
    if params:
        names = [str(i) for i in range(len(params))]
        statement.bind(pa.record_batch([[value] for value in params], names=names))
    stream, _ = statement.execute_query()
    reader = pa.RecordBatchReader.from_stream(stream)
    try:
        yield reader
    finally:
        reader.close()  # before its statement is released


def _quoted(name: str) -> str:
    return f'"{name}"'  # "user" is a reserved word


def _note_order(part: Part, run_ids: pa.Array, pc: Any) -> None:
    first, last = run_ids[0].as_py(), run_ids[-1].as_py()
    if part.in_order:
        rising = len(run_ids) < 2 or pc.all(pc.less_equal(run_ids[:-1], run_ids[1:])).as_py()
        part.in_order = bool(rising) and (part.last is None or part.last <= first)
    part.first = first if part.first is None else part.first
    part.rows += len(run_ids)
    part.last = last


def _typed_batch(batch: pa.RecordBatch, kinds: dict[str, str], schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)

    columns = [typed_column(batch.column(i), kind) for i, kind in enumerate(kinds.values())]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def typed_column(column: Any, kind: str) -> Any:
    """A column as read by a driver, in the Arrow type of its kind (:func:`arrow_schema`)."""
    import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)
    import pyarrow.compute as pc  # deferred: keeps import workbench light (pyarrow.compute ~0.2 s)

    if kind == "bool":
        return pc.not_equal(column, 0)  # SQLite's 0/1
    if kind == "datetime":
        return pc.cast(column, pa.timestamp("us", tz="UTC"))
    # Within its first batch the driver widens a column of mixed values to text; a safe
    # cast refuses 'three' in a count instead of passing it on.
    plain = {"text": pa.large_string(), "int": pa.int64(), "float": pa.float64()}
    return column.cast(plain[kind])


def main(argv: Sequence[str]) -> int:
    request = json.loads(argv[0])
    kinds, out = request["kinds"], request["out"]
    if request["format"] == "parquet":
        table = read_table(
            request["uri"], kinds, request["where"], request["params"], request["limit"],
            request["split_rows"], request.get("tracked", ()),
        )
        if table is None:
            return 3
        import pyarrow.parquet as pq  # deferred: keeps import workbench light (~0.2 s)

        pq.write_table(table, out)
        return 0
    parts = read_parts(
        request["uri"], kinds, request["where"], request["params"], request["limit"],
        request["split_rows"], lambda index: _ArrowFile(f"{out}.{index}"),
        request.get("counted"), request.get("tracked", ()),
    )
    if parts is None:
        return 3
    paths = [part.sink.path for part in parts]
    if not in_order(parts):
        # Rare (run_ids written out of order by hand or an import): sort in one file.
        import pyarrow as pa

        tables = [pa.ipc.open_file(pa.memory_map(path)).read_all() for path in paths]
        table = sort_by_run_id(pa.concat_tables(tables))
        paths = [f"{out}.sorted"]
        with pa.OSFile(paths[0], "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    print(json.dumps({"paths": paths, "hint_missed": parts[0].hint_missed if parts else False}))
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Done: stdout closed (the notebook's process stops waiting and maps the files while
    # the kernel frees this process's ~1 GB of batches) and no interpreter teardown.
    sys.stdout.flush()
    os.close(sys.stdout.fileno())
    os._exit(code)
