"""The filled-columns mask (schema.TrackFilledColumns, migration m014): which runs columns
hold a value in some row, kept by SQLite triggers whoever writes, and the column-wise
reader leaving out the columns that are NULL in every row. Real SQLite files throughout;
the frames are checked against the row-wise sqlite3 reader, which reads every column."""

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


def drop_the_mask(conn: sqlite3.Connection) -> None:
    for trigger in ("insert", "update"):
        conn.execute(f"DROP TRIGGER {FILLED_TABLE}_{trigger}")
    conn.execute(f"DROP TABLE {FILLED_TABLE}")


def test_the_mask_tracks_every_column_of_the_runs_table_at_its_migration() -> None:
    # Bit i must keep its meaning forever: the tracked columns are those of m001-m013.
    assert tuple(COLUMNS[: len(FILLED_COLUMNS)]) == FILLED_COLUMNS
    assert len(FILLED_COLUMNS) == 54 and FILLED_COLUMNS[-1] == "reflection"
    (step,) = dict(SCHEMA)["m014_runs_filled"]
    assert isinstance(step, TrackFilledColumns) and step.columns == FILLED_COLUMNS
    assert sqlite_arrow.FILLED_TABLE == FILLED_TABLE  # the child's copy of the name


def test_inserts_and_updates_from_any_writer_set_the_bits(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path)
    assert filled(path) == set()
    store.append(sparse_record(0))
    assert filled(path) == truly_filled(path)
    assert "error" in filled(path) and "output" not in filled(path)
    store.append(full_record(output="an answer"))
    assert filled(path) == truly_filled(path) and "output" in filled(path)
    store.close()
    # Another writer (the sqlite3 shell, an older workbench): the triggers are the file's.
    with sqlite3.connect(path) as conn:
        assert "notes" not in filled(path)
        conn.execute("UPDATE runs SET notes = 'checked by hand' WHERE rowid = 1")
    assert "notes" in filled(path)
    with sqlite3.connect(path) as conn:  # bits are never cleared: a clear bit is a promise
        conn.execute("UPDATE runs SET notes = NULL")
        conn.execute("DELETE FROM runs WHERE error IS NOT NULL")
    assert {"notes", "error"} <= filled(path)


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


def test_a_column_filled_after_the_mask_was_read_sends_the_read_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mask is read with the table's bounds, before the readers' own snapshots. A value
    # landing in a left-out column in between must not be shown as NULL: the readers'
    # statements check the mask again and return nothing, and the count refuses the read.
    monkeypatch.setattr(columnar, "COLUMNAR_ROWS", 0)
    store = mixed_store(tmp_path / "runs.db", rows=30)
    real_parts = sqlite_arrow._parts

    def parts_then_a_write(*args: Any, **kwargs: Any) -> Any:
        found = real_parts(*args, **kwargs)
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE runs SET expected = 'Paris' WHERE rowid = 2")
        return found

    monkeypatch.setattr(sqlite_arrow, "_parts", parts_then_a_write)
    assert read(store.path, counted=60) is None
    monkeypatch.undo()
    monkeypatch.setattr(columnar, "COLUMNAR_ROWS", 0)
    frame = store.runs()  # the store itself reads it whole, value included
    assert frame["expected"].notna().sum() == 1


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
    from workbench.store.frames import record_to_row

    rows = [record_to_row(sparse_record(i)) for i in range(3)]
    rows += [record_to_row(full_record(created_at=T0 + timedelta(seconds=1)))]
    assert store.add_rows(rows) == 4  # the mask's update is not a row added
    assert store.add_rows(rows) == 0  # all already there
