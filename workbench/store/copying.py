"""Everything a store holds for its user, copied between stores: an export file, a SQLite
store or a PostgreSQL one, into any store, skipping rows already there
(``wb.import_runs``, ``workbench store copy``).

A table-level copy: both backends have the same tables and columns (the named migrations),
so each table is read with one SELECT and written in chunks with ``INSERT ... ON CONFLICT
DO NOTHING`` on its key. Copied: runs, datasets, scores, score history, preferences,
batches, the embeddings cache and custom prices. Not copied: ``claims`` (a sweep's lock on
a point in flight in *that* store; in another store it would block nobody's call but could
stop one for a minute) and ``schema_migrations`` (each store's own history).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import StoreError
from workbench.core.record import COLUMNS
from workbench.store.batches import BATCH_COLUMNS
from workbench.store.dialect import Dialect
from workbench.store.frames import EXPORT_SUFFIXES, frame_to_rows
from workbench.store.messages import one_line
from workbench.store.nul import split_nul_rows
from workbench.store.opening import open_store, store_label
from workbench.store.runfiles import datasets_file, read_datasets, read_runs
from workbench.store.schema import FILLED_TABLE
from workbench.store.sqlite import SQLiteStore
from workbench.store.target import configured_target, is_postgres_url

__all__ = [
    "Table",
    "TABLES",
    "NOT_COPIED",
    "Copied",
    "source_rows",
    "copy_runs",
    "copy_store",
    "import_runs",
    "copy_command",
    "read_export",
    "CHUNK_ROWS",
]

# Rows per transaction: a copy interrupted halfway keeps what it wrote, and a rerun skips it.
CHUNK_ROWS = 5_000

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Table:
    """One table copied beside the runs. ``key``: what makes a row the same row (None: the
    table has no key, and a row is skipped when an identical row is already there)."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...] | None

    def select(self, dialect: Dialect) -> str:
        # Keyless tables are histories: copied in the order they were written (the latest
        # preference of a rater counts): the dialect's insertion order (rowid, ctid).
        order = ", ".join(self.key) if self.key else dialect.row_order
        return f"SELECT {', '.join(self.columns)} FROM {self.name} ORDER BY {order}"

    def insert(self, dialect: Dialect) -> str:
        sql = (
            f"INSERT INTO {self.name} ({', '.join(self.columns)})"
            f" VALUES ({dialect.marks(len(self.columns))})"
        )
        return f"{sql} ON CONFLICT ({', '.join(self.key)}) DO NOTHING" if self.key else sql


_SCORE = ("run_id", "scorer", "scorer_id", "value", "passed", "reason", "judge_run_id")
TABLES: tuple[Table, ...] = (
    Table("datasets", ("name", "version", "expected", "items", "stored_at"), ("name", "version")),
    Table("scores", (*_SCORE, "created_at"), ("scorer_id", "run_id")),
    Table("score_history", (*_SCORE, "created_at", "replaced_at"), None),
    Table(
        "preferences",
        ("baseline_run_id", "candidate_run_id", "winner", "rater", "reason", "created_at"),
        None,
    ),
    Table(
        "batches",
        BATCH_COLUMNS,  # the ledger's columns, listed once in store/batches.py
        ("batch_id",),
    ),
    Table(
        "embeddings",
        ("model", "dimensions", "text_sha256", "vector", "created_at"),
        ("model", "dimensions", "text_sha256"),
    ),
    # A model already priced in the target keeps the target's price.
    Table(
        "prices",
        ("model", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "updated_at"),
        ("model",),
    ),
)
# The filled-columns hint is a SQLite store's own: the target's writers keep its hint
# (and guard index) as the copied rows land.
NOT_COPIED = ("claims", "schema_migrations", FILLED_TABLE)


@dataclass
class Copied:
    """Rows read from the source and rows new in the target, per table ("runs" first)."""

    read: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    # Rows the target cannot hold (a NUL in a PostgreSQL text value), one line each.
    refused: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return self.added.get("runs", 0)

    def note(self, table: str, read: int, added: int) -> None:
        self.read[table] = self.read.get(table, 0) + read
        self.added[table] = self.added.get(table, 0) + added

    def refused_in(self, table: str) -> list[str]:
        return [line for line in self.refused if line.startswith(f"{table} ")]

    def others(self) -> str:
        """The tables beside runs that had rows, e.g. "2 of 2 datasets, 5 of 6 scores"."""
        parts = [
            f"{self.added[name]} of {count} {name.replace('_', ' ')}"
            for name, count in self.read.items()
            if name != "runs" and count
        ]
        return ", ".join(parts)


def source_rows(source: str | os.PathLike[str], *, into: object | None = None) -> Iterator[Rows]:
    """The runs of ``source`` in chunks of rows in ``record.COLUMNS`` order."""
    rows = _read_source(source, into, tables=False)[0]
    for start in range(0, len(rows), CHUNK_ROWS):
        yield rows[start : start + CHUNK_ROWS]


def copy_runs(
    source: str | os.PathLike[str],
    target: Any,
    on_chunk: Callable[[int, int], None] | None = None,
) -> int:
    """Copy every run of ``source`` into the store ``target``; return how many were new.
    ``on_chunk(rows_read, rows_new)`` follows the progress."""
    added = 0
    for chunk in source_rows(source, into=target):
        new = int(target.add_rows(chunk))
        added += new
        if on_chunk is not None:
            on_chunk(len(chunk), new)
    return added


def copy_store(
    source: str | os.PathLike[str],
    target: Any,
    on_rows: Callable[[int], None] | None = None,
    *,
    on_total: Callable[[int], None] | None = None,
) -> Copied:
    """Copy the runs and every table of :data:`TABLES` from ``source`` (a store, or an export
    with its datasets file) into the store ``target``, skipping rows already there.
    ``on_total(rows)`` is told how many rows there are to copy, ``on_rows(n)`` each chunk."""
    runs, tables = _read_source(source, target, tables=True)
    if on_total is not None:
        on_total(len(runs) + sum(len(rows) for rows in tables.values()))
    copied = Copied()
    copied.note("runs", 0, 0)
    runs = _holdable(target, "runs", COLUMNS, runs, copied)
    for start in range(0, len(runs), CHUNK_ROWS):
        chunk = runs[start : start + CHUNK_ROWS]
        copied.note("runs", len(chunk), int(target.add_rows(chunk)))
        if on_rows is not None:
            on_rows(len(chunk))
    for table in TABLES:
        rows = _holdable(target, table.name, table.columns, tables.get(table.name, []), copied)
        if table.key is None and rows:
            there = set(_select(target, table))
            rows = [row for row in rows if row not in there]
            skipped = len(tables[table.name]) - len(rows) - len(copied.refused_in(table.name))
            copied.note(table.name, skipped, 0)
            if on_rows is not None and skipped:
                on_rows(skipped)
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            copied.note(table.name, len(chunk), _insert(target, table, chunk))
            if on_rows is not None:
                on_rows(len(chunk))
    return copied


def import_runs(store: Any, source: str | os.PathLike[str]) -> int:
    """``wb.import_runs``: merge into ``store`` the runs of an export (with its datasets),
    a SQLite store or a ``postgresql://`` one (with every table it holds for its user) by
    run_id; rows already there are skipped. Returns how many runs were new. Rows the store
    cannot hold (a NUL in text on PostgreSQL) are left out with a warning naming them."""
    copied = copy_store(source, store)
    if copied.refused:
        warnings.warn(
            "not imported: " + "; ".join(copied.refused), RowsNotCopiedWarning, stacklevel=2
        )
    return copied.runs


class RowsNotCopiedWarning(UserWarning):
    """Rows of a source the target store cannot hold; the others were copied."""


def copy_command(source: str, target: str, *, progress: bool = True) -> int:
    """``workbench store copy SOURCE TARGET``: the runs and every other table of SOURCE (a
    SQLite store, an export, a ``postgresql://`` URL) into TARGET, with a progress bar;
    exit status."""
    from tqdm import tqdm  # deferred: keeps import workbench light (tqdm ~51 ms)


    try:
        password_env = configured_target(None)[1]
        with (
            open_store(target, password_env=password_env) as store,
            tqdm(unit="row", desc="copying", disable=not progress, file=sys.stderr) as bar,
        ):

            def total(rows: int) -> None:
                bar.reset(total=rows)

            copied = copy_store(source, store, bar.update, on_total=total)
    except StoreError as exc:
        print(f"workbench store copy: {exc}", file=sys.stderr)
        return 1
    read = copied.read.get("runs", 0)
    print(
        f"copied {copied.runs} new runs of {read} from {store_label(source)} to"
        f" {store_label(target)} ({read - copied.runs} were there already)",
        file=sys.stderr,
    )
    if others := copied.others():
        print(f"and, new of those in the source: {others}", file=sys.stderr)
    for line in copied.refused:
        print(f"not copied: {line}", file=sys.stderr)
    # Not 0: a script that deletes the source after a successful copy must not lose them.
    return 1 if copied.refused else 0


# ---------------------------------------------------------------------- reading and writing


def _holdable(
    target: Any, table: str, columns: Sequence[str], rows: Rows, copied: Copied
) -> Rows:
    """``rows`` the target can hold: PostgreSQL refuses a NUL in text, so a row holding
    one is left out and named (the rest still copies)."""
    if getattr(getattr(target, "dialect", None), "name", "") != "postgresql":
        return rows
    kept, refused = split_nul_rows(columns, rows)
    for row, where in refused:
        key = dict(zip(columns, row, strict=False))
        named = ", ".join(
            f"{name} {key[name]}" for name in ("run_id", "scorer_id", "name", "batch_id")
            if name in key
        )
        copied.note(table, 1, 0)
        copied.refused.append(
            f"{table} row {named or '(no key)'}: a NUL character (\\x00) in"
            f" {', '.join(where)}, which PostgreSQL text cannot hold"
        )
    return kept



def _select(store: Any, table: Table) -> Rows:
    return [tuple(row) for row in store.select_rows(table.select(store.dialect))]


def _insert(store: Any, table: Table, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert ``rows`` in one transaction of the target store; how many were new."""
    return int(store.execute_many(table.insert(store.dialect), rows))


def _read_source(
    source: str | os.PathLike[str], into: object | None, *, tables: bool
) -> tuple[Rows, dict[str, Rows]]:
    """(runs rows in ``record.COLUMNS`` order, rows of each other table) of ``source``."""

    text = os.fspath(source)
    if is_postgres_url(text):
        own = getattr(into, "url", None)
        if own is not None and getattr(own, "masked", None) == store_label(text):
            raise StoreError(f"cannot import {own.masked} into itself")

        # The password of a source URL may come from the variable workbench.toml names.
        with open_store(text, password_env=configured_target(None)[1]) as store:
            return _read_store(store, tables)
    path = Path(text)
    if path.suffix.lower() in EXPORT_SUFFIXES:
        return read_export(path, tables)
    if not path.is_file():
        raise StoreError(
            f"cannot import {path}: no such file (give an export ending in"
            f" {', '.join(EXPORT_SUFFIXES)}, a workbench SQLite store, or a postgresql:// URL)"
        )
    own_path = getattr(into, "path", None)
    if own_path is not None and Path(own_path).resolve() == path.resolve():
        raise StoreError(f"cannot import {path} into itself")
    with SQLiteStore(path) as store:
        return _read_store(store, tables)


def _read_store(store: Any, tables: bool) -> tuple[Rows, dict[str, Rows]]:
    runs = frame_to_rows(store.runs())
    if not tables:
        return runs, {}
    return runs, {table.name: _select(store, table) for table in TABLES}


def read_export(path: Path, tables: bool) -> tuple[Rows, dict[str, Rows]]:
    """(runs rows, {"datasets": rows} when wanted and its datasets file is there) of an
    export, each failure one StoreError naming the file."""
    sidecar = datasets_file(path)
    try:
        runs = frame_to_rows(read_runs(path))
        datasets = read_datasets(sidecar) if tables and sidecar.exists() else []
    except ImportError as exc:
        raise StoreError(f"importing {path} needs pyarrow: pip install pyarrow") from exc
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise StoreError(f"cannot import {path}: {one_line(exc)}") from exc
    return runs, ({"datasets": datasets} if datasets else {})
