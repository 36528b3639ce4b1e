"""The filled-columns hint (store/filled.py, migration m014): which runs columns hold a
value in some row, kept by the workbench's writers; the column-wise reader leaving out the
columns it says are NULL in every row, checking that as it reads, and the store mending a
hint that another program's rows proved wrong. Real SQLite files throughout; the frames
are checked against the row-wise sqlite3 reader, which reads every column."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_columnar import mixed_store, row_wise, sparse_record
from test_store import T0, full_record

from workbench.core.record import COLUMNS
from workbench.store import SQLiteStore, columnar, sqlite_arrow
from workbench.store.rows import record_to_row
from workbench.store.schema import FILLED_COLUMNS, FILLED_TABLE, SCHEMA, TrackFilledColumns


def filled(path: Path) -> set[str]:
    """The columns the store's mask says hold a value somewhere."""
    with sqlite3.connect(path) as conn:
        (mask,) = conn.execute(f"SELECT mask FROM {FILLED_TABLE}").fetchone()
    return {name for i, name in enumerate(FILLED_COLUMNS) if mask >> i & 1}


def truly_filled(path: Path) -> set[str]:
    """The same, counted from the rows themselves."""
    with sqlite3.connect(path) as conn:
        counts = conn.execute(
            "SELECT " + ", ".join(f'COUNT("{name}")' for name in FILLED_COLUMNS) + " FROM runs"
        ).fetchone()
    return {name for name, n in zip(FILLED_COLUMNS, counts, strict=True) if n}


def another_program_writes(path: Path, write: str) -> None:
    """A value in "expected" (empty in every row of mixed_store), written as the sqlite3
    shell would, knowing nothing of the hint: an ``update`` of row 45 or an ``insert`` of a
    copy of it."""
    with sqlite3.connect(path) as conn:
        if write == "update":
            conn.execute("UPDATE runs SET expected = 'Paris' WHERE rowid = 45")
        else:
            names = ", ".join(f'"{name}"' for name in COLUMNS)
            copied = names.replace('"run_id"', "'ff'").replace('"expected"', "'Paris'")
            conn.execute(f"INSERT INTO runs ({names}) SELECT {copied} FROM runs WHERE rowid = 45")


def drop_the_mask(conn: sqlite3.Connection) -> None:
    conn.execute(f"DROP TABLE {FILLED_TABLE}")


def test_the_mask_tracks_every_column_of_the_runs_table_at_its_migration() -> None:
    # Bit i must keep its meaning forever: the tracked columns are those of m001-m013.
    assert tuple(COLUMNS[: len(FILLED_COLUMNS)]) == FILLED_COLUMNS
    assert len(FILLED_COLUMNS) == 54 and FILLED_COLUMNS[-1] == "reflection"
    (step,) = dict(SCHEMA)["m014_runs_filled"]
    assert isinstance(step, TrackFilledColumns) and step.columns == FILLED_COLUMNS
    assert sqlite_arrow.FILLED_TABLE == FILLED_TABLE  # the child's copy of the name


def test_the_workbenchs_writers_set_the_bits_of_what_they_insert(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path)
    assert filled(path) == set()
    store.append(sparse_record(0))
    assert filled(path) == truly_filled(path)
    assert "error" in filled(path) and "output" not in filled(path)
    store.append(full_record(output="an answer"))
    assert filled(path) == truly_filled(path) and "output" in filled(path)
    other = SQLiteStore(path)  # another kernel's store object knows nothing of the first's
    added = other.add_rows([record_to_row(full_record(notes="n", created_at=T0))])
    assert added == 1 and "notes" in filled(path) and filled(path) == truly_filled(path)
    with sqlite3.connect(path) as conn:  # bits are never cleared: a clear bit is a promise
        conn.execute("DELETE FROM runs WHERE notes IS NOT NULL")
    assert "notes" in filled(path)


def test_a_store_without_its_hint_table_still_takes_every_run(tmp_path: Path) -> None:
    store = mixed_store(tmp_path / "runs.db", rows=2)
    with sqlite3.connect(store.path) as conn:
        drop_the_mask(conn)
    store.append(full_record(notes="still written"))
    assert len(store.runs()) == 5


def test_a_store_from_before_the_mask_gets_it_counted_from_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    mixed_store(path, rows=5).close()
    with sqlite3.connect(path) as conn:  # back to the store as m013 left it
        drop_the_mask(conn)
        conn.execute("DELETE FROM schema_migrations WHERE name = 'm014_runs_filled'")
        conn.execute("UPDATE runs SET expected = 'an old reference' WHERE rowid = 3")
    assert "expected" in truly_filled(path)
    SQLiteStore(path).close()  # opening migrates it
    assert filled(path) == truly_filled(path)


def test_only_one_mask_row_can_exist(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(f"INSERT INTO {FILLED_TABLE} (id, mask) VALUES (1, 0)")


def read(path: Path, counted: int | None = None) -> list[Any] | None:
    kinds = {name: columnar.COLUMN_KINDS[name] for name in COLUMNS}
    return sqlite_arrow.read_parts(
        path.absolute().as_uri() + "?mode=ro", kinds, "", [], None, 10,
        lambda _: sqlite_arrow._Collected(), counted, FILLED_COLUMNS,
    )


def test_the_reader_leaves_out_the_empty_columns_and_the_frame_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(columnar, "COLUMNAR_ROWS", 0)
    monkeypatch.setattr(columnar, "SPLIT_ROWS", 10)
    store = mixed_store(tmp_path / "runs.db", rows=30)
    empty = set(FILLED_COLUMNS) - truly_filled(store.path)
    assert {"dataset", "expected", "reasoning_summary"} <= empty  # what this test is about
    parts = read(store.path)
    assert parts is not None and len(parts) == 2
    for part in parts:
        names = set(part.sink.batches[0].schema.names)
        assert names == set(COLUMNS) - empty
    fast = store.runs()
    assert list(fast.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(fast, row_wise(store, monkeypatch))
    assert fast["expected"].isna().all() and fast["expected"].dtype == fast["output"].dtype


@pytest.mark.parametrize("write", ["update", "insert"])
def test_rows_another_program_wrote_are_read_whole_and_the_hint_mended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    # The sqlite3 shell writes without the hint: a value lands in a column it calls empty.
    monkeypatch.setattr(columnar, "COLUMNAR_ROWS", 0)
    monkeypatch.setattr(columnar, "SPLIT_ROWS", 10)
    store = mixed_store(tmp_path / "runs.db", rows=30)
    another_program_writes(store.path, write)
    assert "expected" not in filled(store.path)
    parts = read(store.path)
    assert parts is not None and all(part.hint_missed for part in parts)
    assert "expected" in parts[1].sink.batches[0].schema.names  # read again, whole
    fast = store.runs()
    assert fast["expected"].notna().sum() == 1
    pd.testing.assert_frame_equal(fast, row_wise(store, monkeypatch))
    assert filled(store.path) == truly_filled(store.path)  # mended by that read
    parts = read(store.path)
    assert parts is not None and not any(part.hint_missed for part in parts)


def test_a_store_that_refuses_writes_reads_right_with_a_stale_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(columnar, "COLUMNAR_ROWS", 0)
    path = tmp_path / "runs.db"
    mixed_store(path, rows=30).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET expected = 'Paris' WHERE rowid = 7")
        # Migrated by a newer workbench: this one reads it and writes nothing.
        conn.execute("INSERT INTO schema_migrations VALUES ('m999_from_the_future', '')")
    store = SQLiteStore(path)
    assert store.runs()["expected"].notna().sum() == 1  # no hint mended, no error
    assert "expected" not in filled(path)


def test_a_store_without_the_mask_is_read_whole(tmp_path: Path) -> None:
    # A read-only file of an older workbench cannot be migrated: no mask, every column read.
    store = mixed_store(tmp_path / "runs.db", rows=30)
    store.close()
    with sqlite3.connect(store.path) as conn:
        drop_the_mask(conn)
    parts = read(store.path)
    assert parts is not None
    assert parts[0].sink.batches[0].schema.names == list(COLUMNS)


def test_rows_added_count_only_the_rows_not_the_triggers_work(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    rows = [record_to_row(sparse_record(i)) for i in range(3)]
    rows += [record_to_row(full_record(created_at=T0 + timedelta(seconds=1)))]
    assert store.add_rows(rows) == 4  # the mask's update is not a row added
    assert store.add_rows(rows) == 0  # all already there
