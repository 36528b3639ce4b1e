"""Where the column-wise reader's time goes: the child's read of the runs table
(workbench/store/sqlite_arrow.py) timed phase by phase, and variants of it, each against
a bare sqlite3 ``fetchall`` of the same file measured in the same run.

Per variant: wall time, CPU time (this process's, all threads), and per reading thread
its first and last batch and its own CPU time, which shows whether the threads overlap.
The reader runs in this process here (the bench never opens the file with sqlite3 and
ADBC at once: fetchall's connection is closed first); the child's start-up (Python and
its imports) is timed apart, in a fresh interpreter.

    .venv/bin/python bench/store_read_phases.py [--rows 1000000] [--db FILE]

Without ``--db`` a store of ``--rows`` rows (store_scale's rows) is made in a temporary
folder (~40 s and ~0.9 GB for a million).
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import record
from store_scale import run_record

from workbench.core.record import COLUMNS, new_run_id
from workbench.store import SQLiteStore, sqlite_arrow
from workbench.store.frames import COLUMN_KINDS, record_to_row
from workbench.store.schema import FILLED_COLUMNS

KINDS = {name: str(COLUMN_KINDS[name]) for name in COLUMNS}


def make_store(path: Path, rows: int) -> None:
    store = SQLiteStore(path)
    batch = []
    for i in range(rows):
        run = run_record(i)
        run.run_id = new_run_id()
        batch.append(record_to_row(run))
        if len(batch) == 50_000 or i == rows - 1:
            store.add_rows(batch)  # as wb.import_runs fills a store (and its hint)
            batch = []
    store.close()


def fetchall(path: Path) -> tuple[float, float]:
    conn = sqlite3.connect(path)
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM runs").fetchall()
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    del rows
    conn.close()
    return wall, used


def rows_to_arrow(path: Path) -> tuple[float, float]:
    """The other way to fill Arrow columns: sqlite3 rows, then one pa.array a column."""
    import pyarrow as pa

    conn = sqlite3.connect(path)
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM runs").fetchall()
    columns = [pa.array(column) for column in zip(*rows, strict=True)]
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    del rows, columns
    conn.close()
    return wall, used


def child_start_up() -> tuple[float, float]:
    """A fresh interpreter importing what the child imports."""
    code = (
        "import time; t = time.perf_counter(); import json, concurrent.futures;"
        " import pyarrow, pyarrow.compute, pyarrow.ipc, adbc_driver_manager, adbc_driver_sqlite;"
        " print(time.perf_counter() - t)"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, float(done.stdout)


class TimedSink:
    """Counts a part's batches and notes when its first and last arrived, and the CPU
    time of the thread that read it."""

    def __init__(self, index: int, t0: float, log: list[str], out: Path | None) -> None:
        self.index, self.t0, self.log = index, t0, log
        self.first: float | None = None
        self.batches = 0
        self.cpu = time.thread_time()  # made in the thread that reads the part
        self.file = None if out is None else sqlite_arrow._ArrowFile(f"{out}.{index}")

    def write(self, batch: Any) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.t0
        self.batches += 1
        if self.file is not None:
            self.file.write(batch)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            Path(self.file.path).unlink()
        self.log.append(
            f"part {self.index}: first batch {self.first or 0:.2f} s, done"
            f" {time.perf_counter() - self.t0:.2f} s, {self.batches} batches, thread CPU"
            f" {time.thread_time() - self.cpu:.2f} s"
        )


def variant(
    path: Path, readers: int, batch_rows: int, write: bool, masked: bool = False
) -> tuple[float, float, str]:
    """One read; ``masked``: as the child reads, leaving out the columns the store's
    filled-columns mask says are NULL in every row."""
    sqlite_arrow._READERS, sqlite_arrow.BATCH_ROWS = readers, batch_rows
    log: list[str] = []
    out = Path("/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()) / "phases"
    gc.collect()
    t0, cpu = time.perf_counter(), time.process_time()
    parts = sqlite_arrow.read_parts(
        path.absolute().as_uri() + "?mode=ro", KINDS, "", [], None, 50_000,
        lambda i: TimedSink(i, t0, log, out if write else None), None,
        FILLED_COLUMNS if masked else (),
    )
    wall, used = time.perf_counter() - t0, time.process_time() - cpu
    assert parts is not None
    return wall, used, "; ".join(sorted(log))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="an existing store to read instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.db or Path(scratch) / "phases.db"
        if args.db is None:
            make_store(path, args.rows)
        SQLiteStore(path).close()  # a store made before the filled-columns mask gains it
        rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        base_wall, base_cpu = fetchall(path)
        print(f"{rows:,} rows; bare fetchall {base_wall:.2f} s, CPU {base_cpu:.2f} s")
        start_wall, imports = child_start_up()
        print(f"child start-up {start_wall:.2f} s (imports {imports:.2f} s)")
        lines = [f"fetchall {base_wall:.2f} s (CPU {base_cpu:.2f} s)",
                 f"child start-up {start_wall:.2f} s"]
        with sqlite3.connect(path) as conn:
            (mask,) = conn.execute("SELECT mask FROM runs_filled").fetchone()
        empty = sum(not mask >> i & 1 for i in range(len(FILLED_COLUMNS)))
        for readers, batch_rows, write, masked in [
            (2, 65_536, True, True), (2, 65_536, False, True), (2, 65_536, True, False),
            (2, 65_536, False, False), (1, 65_536, False, False), (4, 65_536, False, False),
            (2, 8_192, False, False), (2, 1_024, False, False),
        ]:
            wall, used, detail = variant(path, readers, batch_rows, write, masked)
            line = (f"{readers} thread(s), {batch_rows:,} rows a batch,"
                    f" {'typed and written' if write else 'typed, not written'},"
                    f" {f'the {empty} empty columns left out' if masked else 'every column'}:"
                    f" {wall:.2f} s = {wall / base_wall:.2f} x fetchall, CPU {used:.2f} s ="
                    f" {used / base_cpu:.2f} x ({detail})")
            print(line)
            lines.append(line)
        wall, used = rows_to_arrow(path)
        lines.append(f"sqlite3 rows -> Arrow columns: {wall:.2f} s = {wall / base_wall:.2f} x"
                     f" fetchall, CPU {used:.2f} s = {used / base_cpu:.2f} x")
        print(lines[-1])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    record("store_read_phases", f"{rows:,} rows: " + " | ".join(lines)
           + f"; load average {load} (1, 5, 15 min; {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
