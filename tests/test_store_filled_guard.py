"""The filled-columns hint's guard (store/filled.py): a partial index of the rows holding a
value in a column the hint calls empty. SQLite keeps it for every writer, so the
column-wise reader asks it instead of counting and testing every row; a guard that is
missing, or built for other columns, is never taken for an answer. Real SQLite files, and
writes from a plain sqlite3 connection standing for another program."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_columnar import mixed_store, row_wise
from test_store import full_record
from test_store_filled import another_program_writes, filled, read, truly_filled

from workbench.store import SQLiteStore, columnar, sqlite_arrow
from workbench.store import filled as filled_module
from workbench.store.filled import guard_sql
from workbench.store.schema import FILLED_COLUMNS, FILLED_TABLE

GUARD = sqlite_arrow.GUARD_INDEX


def guard_of(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (GUARD,)
        ).fetchone()
    return None if found is None else str(found[0])


def mask_of(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT mask FROM {FILLED_TABLE}").fetchone()[0])


def rows_in_guard(path: Path) -> int:
    """The rows the guard index holds (asked through it, with its own condition)."""
    condition = str(guard_of(path)).split(" WHERE ", 1)[1]
    with sqlite3.connect(path) as conn:
        sql = f"SELECT COUNT(*) FROM runs INDEXED BY {GUARD} WHERE {condition}"
        return int(conn.execute(sql).fetchone()[0])


def schema_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA schema_version").fetchone()[0])


def store_without_guard(folder: Path) -> Path:
    """A closed store of mixed_store's rows whose guard was dropped (as a store of the last
    version has none)."""
    path = folder / "runs.db"
    mixed_store(path, rows=30).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"DROP INDEX {GUARD}")
    return path


def questions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every single-value question the reader asks SQLite, as it asks it."""
    asked: list[str] = []
    real = sqlite_arrow._scalar

    def spy(statement: Any, sql: str, params: Any) -> Any:
        asked.append(sql)
        return real(statement, sql, params)

    monkeypatch.setattr(sqlite_arrow, "_scalar", spy)
    return asked


@pytest.fixture(autouse=True)
def split_small_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small tables read as a million rows would be: column-wise, in two parts."""
    monkeypatch.setattr(columnar, "COLUMNAR_ROWS", 0)
    monkeypatch.setattr(columnar, "SPLIT_ROWS", 10)


def test_the_guard_follows_the_hint_and_stays_empty_while_it_is_right(tmp_path: Path) -> None:
    store = mixed_store(tmp_path / "runs.db", rows=30)
    assert filled(store.path) == truly_filled(store.path)
    built = guard_of(store.path)
    assert built == guard_sql(mask_of(store.path)) and '"expected" IS NOT NULL' in built
    assert rows_in_guard(store.path) == 0
    # The workbench fills a column no row held: hint and guard move together.
    store.append(full_record(expected="Paris"))
    assert "expected" in filled(store.path)
    assert guard_of(store.path) == guard_sql(mask_of(store.path))
    assert '"expected"' not in str(guard_of(store.path))


def test_the_reader_asks_the_guard_and_counts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = mixed_store(tmp_path / "runs.db", rows=30)
    asked = questions(monkeypatch)
    parts = read(store.path)
    assert parts is not None and len(parts) == 2 and not any(p.hint_missed for p in parts)
    assert len(asked) == 2 and all(f"INDEXED BY {GUARD}" in sql for sql in asked), asked
    assert "expected" not in parts[0].sink.batches[0].schema.names  # left out
    pd.testing.assert_frame_equal(store.runs(), row_wise(store, monkeypatch))


@pytest.mark.parametrize("write", ["update", "insert"])
def test_sqlite_keeps_the_guard_for_another_programs_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    store = mixed_store(tmp_path / "runs.db", rows=30)
    another_program_writes(store.path, write)  # no hint, no guard code: SQLite alone
    assert rows_in_guard(store.path) == 1
    asked = questions(monkeypatch)
    parts = read(store.path)
    assert parts is not None and all(part.hint_missed for part in parts)
    assert "COUNT(*)" not in " ".join(asked)  # the guard answered
    fast = store.runs()
    assert fast["expected"].notna().sum() == 1
    pd.testing.assert_frame_equal(fast, row_wise(store, monkeypatch))
    # The read mended the hint, and the guard with it: empty again, for fewer columns.
    assert filled(store.path) == truly_filled(store.path)
    assert guard_of(store.path) == guard_sql(mask_of(store.path))
    parts = read(store.path)
    assert parts is not None and not any(part.hint_missed for part in parts)


def test_a_guard_for_other_columns_is_not_taken_for_an_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A guard built for a hint with "expected" set (another version, a hand edit) has no
    # eye on "expected": a value there must still be found, by counting.
    store = mixed_store(tmp_path / "runs.db", rows=30)
    bit = 1 << FILLED_COLUMNS.index("expected")
    with sqlite3.connect(store.path) as conn:
        conn.execute(f"DROP INDEX {GUARD}")
        conn.execute(str(guard_sql(mask_of(store.path) | bit)))
        conn.execute("UPDATE runs SET expected = 'Paris' WHERE rowid = 7")
    assert rows_in_guard(store.path) == 0  # it has no eye on "expected"
    asked = questions(monkeypatch)
    parts = read(store.path)
    assert parts is not None and all(part.hint_missed for part in parts)
    assert any(sql.startswith("SELECT COUNT(*)") for sql in asked), asked
    assert store.runs()["expected"].notna().sum() == 1


def test_without_a_guard_the_reader_counts_and_reads_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = mixed_store(tmp_path / "runs.db", rows=30)
    with sqlite3.connect(store.path) as conn:
        conn.execute(f"DROP INDEX {GUARD}")
        conn.execute("UPDATE runs SET expected = 'Paris' WHERE rowid = 7")
    asked = questions(monkeypatch)
    parts = read(store.path)
    assert parts is not None and all(part.hint_missed for part in parts)
    assert sum(sql.startswith("SELECT COUNT(*)") for sql in asked) == 2
    assert store.runs()["expected"].notna().sum() == 1


def test_opening_builds_a_missing_guard_once(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    mixed_store(path, rows=5).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"DROP INDEX {GUARD}")  # a store of the last version has none
    SQLiteStore(path).close()
    assert guard_of(path) == guard_sql(mask_of(path))
    before = schema_version(path)
    SQLiteStore(path).close()  # in step already: nothing written
    assert schema_version(path) == before


def test_a_store_that_cannot_build_its_guard_opens_and_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = store_without_guard(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET expected = 'Paris' WHERE rowid = 7")
        # Migrated by a newer workbench: this one reads it and writes nothing.
        conn.execute("INSERT INTO schema_migrations VALUES ('m999_from_the_future', '')")
    store = SQLiteStore(path)
    assert guard_of(path) is None
    pd.testing.assert_frame_equal(store.runs(), row_wise(store, monkeypatch))
    assert store.runs()["expected"].notna().sum() == 1


def test_a_guard_that_cannot_be_built_does_not_stop_the_store_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = store_without_guard(tmp_path)

    def disk_full(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(filled_module, "keep_guard", disk_full)
    store = SQLiteStore(path)  # opens: the guard waits for a later open
    assert guard_of(path) is None
    pd.testing.assert_frame_equal(store.runs(), row_wise(store, monkeypatch))
    monkeypatch.undo()
    store.close()
    SQLiteStore(path).close()
    assert guard_of(path) == guard_sql(mask_of(path))
