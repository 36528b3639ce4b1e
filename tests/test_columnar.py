"""The column-wise reader (workbench/store/columnar.py) against the row-wise sqlite3 reader:
the same frame, value for value and dtype for dtype, from real SQLite files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from test_store import EXPECTED_DTYPES, T0, full_record

from workbench.core.record import COLUMNS, RunRecord
from workbench.store import SQLiteStore, columnar, sqlite_arrow
from workbench.store.copying import import_runs
from workbench.store.frames import PANDAS_3


def sparse_record(i: int) -> RunRecord:
    """A run with most optional columns empty: as an error row or an embed call leaves it."""
    return RunRecord(
        kind="embed" if i % 2 else "chat",
        provider="local",
        model="m",
        created_at=T0 + timedelta(seconds=i),
        experiment=f"e{i % 3}",
        request_hash=f"{i:064x}",
        status="error",
        error=f"failed {i}",
    )


def mixed_store(path: Path, rows: int = 40) -> SQLiteStore:
    """Sparse rows first (every optional column NULL, as the driver's type inference sees
    them), then full rows; '' and None both present; run_ids not in table order."""
    store = SQLiteStore(path)
    for i in range(rows):
        store.append(sparse_record(i))
    for i in range(rows):
        record = full_record(
            run_id=f"{rows - i:08x}{'0' * 24}",  # descending: the reader must sort
            created_at=T0 + timedelta(minutes=i),
            output="" if i % 5 == 0 else f"answer {i} — ünïcode",
            system=None if i % 4 == 0 else "be brief",
            seed=None if i % 3 == 0 else 2**63 - 1,
            temperature=None if i % 2 else 0.7,
            cache_hit=bool(i % 2),
            experiment=f"e{i % 3}",
        )
        store.append(record)
    return store


@pytest.fixture(autouse=True)
def columnar_for_small_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tables are small: read them column-wise anyway, as a million rows would be."""
    monkeypatch.setattr(columnar, "COLUMNAR_ROWS", 0)


def row_wise(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, **filters: Any) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr("workbench.store.columnar.read_runs_frame", lambda *a, **k: None)
        return store.runs(**filters)


@pytest.mark.parametrize(
    "filters",
    [{}, {"experiment": "e1"}, {"status": "ok", "kind": "chat"}, {"limit": 7}, {"limit": 0}],
)
def test_same_frame_as_the_row_wise_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: dict[str, Any]
) -> None:
    store = mixed_store(tmp_path / "runs.db")
    calls: list[Any] = []
    real = columnar.read_runs_frame

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(result := real(*args, **kwargs))
        return result

    monkeypatch.setattr("workbench.store.columnar.read_runs_frame", spy)
    fast = store.runs(**filters)
    assert calls and calls[0] is not None, "the column-wise reader did not read this store"
    monkeypatch.undo()
    slow = row_wise(store, monkeypatch, **filters)
    assert {c: str(t) for c, t in fast.dtypes.items()} == EXPECTED_DTYPES
    pd.testing.assert_frame_equal(fast, slow)
    assert list(fast.columns) == list(COLUMNS)
    # '' and missing stay apart; text cells hold str or the missing value of pandas' text.
    if not filters:
        assert (fast["output"] == "").sum() == 8
        assert fast["output"].isna().sum() == 40
        assert all(isinstance(v, str) or pd.isna(v) for v in fast["system"])
        assert fast["run_id"].is_monotonic_increasing


def test_a_large_table_is_read_in_parts_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = mixed_store(tmp_path / "runs.db", rows=60)
    monkeypatch.setattr(columnar, "SPLIT_ROWS", 10)  # split a small table as a big one
    rows, parts, _ = sqlite_arrow._parts(store._read_uri(), 10)
    assert len(parts) == 2 and rows == 120
    fast = store.runs()
    pd.testing.assert_frame_equal(fast, row_wise(store, monkeypatch))


def test_a_split_read_checks_its_rows_against_the_callers_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store counts the table before the child reads it; the child does not count it
    # again. Fewer rows than counted (a damaged page a rowid seek skips) means "read it
    # another way"; more (appended since the count) is fine.
    store = mixed_store(tmp_path / "runs.db", rows=30)
    monkeypatch.setattr(sqlite_arrow, "_READERS", 2)
    kinds = {name: columnar.COLUMN_KINDS[name] for name in COLUMNS}

    def parts(counted: int) -> Any:
        return sqlite_arrow.read_parts(
            store._read_uri(), kinds, "", [], None, 10, lambda _: sqlite_arrow._Collected(),
            counted,
        )

    read = parts(60)
    assert read is not None and len(read) == 2 and sum(p.rows for p in read) == 60
    assert parts(59) is not None
    assert parts(61) is None
    bounds_only = sqlite_arrow._parts(store._read_uri(), 10, count=False)
    assert bounds_only == (None, sqlite_arrow._parts(store._read_uri(), 10)[1], None)


@pytest.mark.skipif(not PANDAS_3, reason="pandas 2 makes Python strings of the text")
def test_text_reaches_pandas_as_read_without_a_cast(tmp_path: Path) -> None:
    # The reader types text as large_string, what pandas' str dtype holds: pandas keeps
    # the very buffers (given string, it cast every column: ~0.9 s a million rows).
    store = mixed_store(tmp_path / "runs.db", rows=5)
    kinds = {name: columnar.COLUMN_KINDS[name] for name in COLUMNS}
    table = sqlite_arrow.read_table(store._read_uri(), kinds, "", [])
    assert table is not None
    frame = columnar.runs_frame_from_table(table)
    for name in ("output", "run_id", "system"):
        read = table.column(name).chunk(0)
        held = frame[name].array.__arrow_array__().chunk(0)
        assert read.type == held.type == pa.large_string()
        assert held.buffers()[1].address == read.buffers()[1].address  # the same offsets


def test_a_reader_waits_for_a_lock_instead_of_failing(tmp_path: Path) -> None:
    # Two readers opening a WAL file that no connection holds race to set up its index;
    # the loser was told "database is locked" at once. Shown here with a lock another
    # process holds for a moment (a rollback-journal file, so readers must wait).
    store = mixed_store(tmp_path / "runs.db", rows=5)
    store.close()
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    with subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time; conn = sqlite3.connect(sys.argv[1], isolation_level=None);"
         " conn.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(0.5);"
         " conn.execute('COMMIT')", str(store.path)],
        stdout=subprocess.PIPE, text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        rows, _, _ = sqlite_arrow._parts(store.path.absolute().as_uri() + "?mode=ro", 10)
        assert rows == 10


@pytest.mark.parametrize("split", [False, True])
def test_a_frame_read_column_wise_can_be_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    # Its numbers are read from memory-mapped files: they must come out writable, or
    # frame.loc[...] = ... fails with "assignment destination is read-only".
    store = mixed_store(tmp_path / "runs.db", rows=30)
    monkeypatch.setattr(columnar, "SPLIT_ROWS", 10 if split else 10_000)
    frame = store.runs()
    first = frame.index[0]
    edits = {"temperature": 1.5, "seed": 7, "cache_hit": True, "cost_usd": 0.25,
             "created_at": pd.Timestamp("2030-01-01", tz="UTC"), "output": "edited"}
    for name, value in edits.items():
        frame.loc[first, name] = value
        assert frame.loc[first, name] == value
    frame["max_tokens"] += 1


def test_the_store_and_the_reader_share_no_sqlite_in_one_process(tmp_path: Path) -> None:
    # ADBC links its own SQLite; closing its file in this process would drop the locks of
    # the store's connection (the -shm then truncated under it: SIGBUS in the crash test).
    # It reads in a child process, so the store's process never loads the driver.
    mixed_store(tmp_path / "runs.db").close()
    script = (
        "import sys; from workbench.store import columnar; columnar.COLUMNAR_ROWS = 0\n"
        "from workbench.store import SQLiteStore\n"
        f"frame = SQLiteStore({str(tmp_path / 'runs.db')!r}).runs()\n"
        "print(len(frame), 'adbc_driver_sqlite' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["80", "False"]


def test_repeated_text_is_made_once_per_distinct_value(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    base = full_record()
    rows = [replace(base, run_id=f"{i:032x}", request_hash=f"{i:064x}") for i in range(12_000)]
    store._write(
        lambda conn: conn.executemany(
            f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            [__import__("workbench.store.frames", fromlist=["x"]).record_to_row(r) for r in rows],
        )
    )
    frame = store.runs()
    if PANDAS_3:
        # pandas 3's str dtype: the Arrow buffers as read, no Python string per value.
        assert str(frame["model"].dtype) == "str"
        assert isinstance(frame["model"].array, pd.arrays.ArrowStringArray)
    else:
        models = frame["model"].to_numpy()
        assert models[0] is models[-1]  # one shared string, not 12,000 copies
    assert frame["run_id"].iloc[0] is not frame["run_id"].iloc[1]
    assert frame["model"].tolist() == [base.model] * 12_000


def test_falls_back_to_sqlite3_when_a_column_holds_a_value_of_another_type(
    tmp_path: Path,
) -> None:
    store = mixed_store(tmp_path / "runs.db", rows=5)
    # Written by hand or by another tool: text in an INTEGER column from row 3 on. The
    # column-wise reader cannot type it; it says so rather than guessing.
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET retries = 'three' WHERE rowid = 3")
    assert columnar.read_runs_frame(store._read_uri(), "", [], rows=10) is None


def test_falls_back_when_the_child_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = mixed_store(tmp_path / "runs.db", rows=5)
    monkeypatch.setattr(columnar.sys, "executable", "/nonexistent/python")
    assert columnar.read_runs_frame(store._read_uri(), "", [], rows=10) is None
    assert len(store.runs()) == 10


def test_the_row_wise_reader_makes_text_columns_as_pandas_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its text columns are made by Arrow (str or None only) and fall back to pandas'
    # own conversion for anything else SQLite let into the column: same cells either way.
    store = mixed_store(tmp_path / "runs.db", rows=5)
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET notes = 42 WHERE rowid = 2")
    frame = row_wise(store, monkeypatch)
    rows = sqlite3.connect(store.path).execute(
        "SELECT output, notes FROM runs ORDER BY run_id"
    ).fetchall()
    outputs, notes = zip(*rows, strict=True)
    expected = pd.Series(pd.array(list(outputs), dtype=frame["output"].dtype), name="output")
    pd.testing.assert_series_equal(frame["output"], expected)
    assert frame["output"].isna().sum() == outputs.count(None) > 0
    assert (frame["output"] == "").sum() == outputs.count("") > 0
    assert "42" in frame["notes"].tolist()
    assert frame["notes"].isna().sum() == notes.count(None)


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = mixed_store(tmp_path / "runs.db", rows=2)
    store.close()
    with pytest.raises(Exception, match="closed"):
        store.runs()


def test_an_empty_store(tmp_path: Path) -> None:
    frame = SQLiteStore(tmp_path / "runs.db").runs()
    assert len(frame) == 0
    assert {c: str(t) for c, t in frame.dtypes.items()} == EXPECTED_DTYPES


def test_parquet_export_is_written_from_arrow_and_reads_back_the_same(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    store = mixed_store(tmp_path / "runs.db")
    path = store.export(tmp_path / "all.parquet")
    # Written by Arrow in the child: no pandas metadata, as a frame's to_parquet leaves.
    assert b"pandas" not in (pq.read_schema(path).metadata or {})
    copy = SQLiteStore(tmp_path / "copy.db")
    assert import_runs(copy, path) == 80
    pd.testing.assert_frame_equal(copy.runs(), store.runs())
    assert copy.runs()["seed"].max() == 2**63 - 1  # not rounded through float64
