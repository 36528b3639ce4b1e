"""Store scale: append rows to the experiment table, then load a million with ``wb.runs()``.

Figures: appends per second one row at a time (as calls finish; measured on the first
``--appended`` rows) and in one transaction (how the rest of the million is filled, as
an import would); ``wb.runs()`` of every row against the baseline of a bare sqlite3
``fetchall`` of the same query (the floor any loader pays for Python objects; taken
just before and just after, and averaged); and
``wb.runs(experiment=...)`` of one experiment in a hundred; and the export of every row
to Parquet. Targets: load <= 0.35 x the bare fetchall, filtered query < 0.2 s, the
Parquet export in the same order of time as the load.

    .venv/bin/python bench/store_scale.py [--rows 1000000] [--appended 20000] [--profile]
        [--db FILE]
    .venv/bin/python bench/store_scale.py --store postgresql://user@host:5432/empty_db

With ``--store`` the same figures are taken on that PostgreSQL database (it should be an
empty, throw-away one: the runs table is emptied first and at the end): appends one by
one, batched (COPY, as ``wb.import_runs`` does), ``wb.runs()`` of every row (ADBC, column-
wise) and of one experiment.

Needs ~0.9 GB of disk for a million rows, in a temporary folder removed at the end. With
``--db FILE`` the store is kept there and, when it already holds ``--rows`` rows, read
again without being made anew (the append figures are then not taken).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import resource
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from common import print_profile, record

from workbench.core.record import COLUMNS, RunRecord, new_run_id
from workbench.store import SQLiteStore, store_label
from workbench.store.frames import record_to_row
from workbench.store.protocol import Store

EXPERIMENTS = 100


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the column-wise reader's)."""
    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_record(i: int) -> RunRecord:
    """A chat run as a sweep logs one: short prompt and answer, usage, cost, latency."""
    prompt = f"Translate word number {i} into French."
    return RunRecord(
        kind="chat",
        provider="openai",
        model="gpt-4o-mini" if i % 2 else "gpt-4o",
        experiment=f"experiment-{i % EXPERIMENTS}",
        sweep_id=f"{i // 1000:016x}",
        response_model="gpt-4o-mini-2024-07-18",
        temperature=(i % 3) * 0.5,
        seed=i % 7,
        max_tokens=64,
        params='{"model": "gpt-4o-mini", "max_tokens": 64, "temperature": 0.5, "seed": 3}',
        prompt=prompt,
        messages=f'[{{"role": "user", "content": "{prompt}"}}]',
        output=f"Le mot numéro {i} en français.",
        finish_reason="stop",
        prompt_tokens=14,
        completion_tokens=9,
        cached_tokens=0,
        total_tokens=23,
        cost_usd=0.0000075,
        price_source="genai-prices 0.2.3",
        latency_s=0.42,
        system_fingerprint="fp_0123456789",
        request_hash=f"{i:064x}",
    )


def postgres(args: argparse.Namespace) -> None:
    from workbench.store import open_store

    store = open_store(args.store)
    label = store_label(args.store)
    store._write(lambda conn: conn.execute("DELETE FROM runs"))  # type: ignore[union-attr]
    one_by_one, bulk = fill(store, args)

    gc.collect()
    start = time.perf_counter()
    frame = store.runs()
    load = time.perf_counter() - start
    assert len(frame) == args.rows
    del frame
    gc.collect()
    start = time.perf_counter()
    one = store.runs(experiment="experiment-7")
    filtered = time.perf_counter() - start
    store._write(lambda conn: conn.execute("DELETE FROM runs"))  # type: ignore[union-attr]
    store.close()
    print(f"PostgreSQL {label}: {args.rows:,} rows")
    print(f"append one by one: {one_by_one:,.0f} rows/s; batched (COPY): {bulk:,.0f} rows/s")
    print(f"wb.runs() all: {load:.2f} s; one experiment ({len(one):,} rows): {filtered:.3f} s")
    record(
        "store_scale",
        f"PostgreSQL 15 on loopback, {args.rows:,} rows: append {one_by_one:,.0f} rows/s one"
        f" by one, {bulk:,.0f} rows/s batched (COPY); wb.runs() {load:.2f} s (ADBC, column-"
        f"wise); one experiment ({len(one):,} rows) {filtered:.3f} s",
    )


def bare_fetchall(path: Path, rows: int) -> tuple[float, float]:
    """Wall and CPU seconds of the baseline: every column of every run through bare
    sqlite3, one Python object per value."""
    conn = sqlite3.connect(path)
    gc.collect()
    start, cpu = time.perf_counter(), cpu_seconds()
    fetched = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM runs").fetchall()
    wall, used = time.perf_counter() - start, cpu_seconds() - cpu
    assert len(fetched) == rows
    del fetched
    conn.close()
    return wall, used


def full_store(path: Path, rows: int) -> bool:
    """Whether ``path`` is a store of exactly ``rows`` runs already (``--db``, run again)."""
    if not path.exists():
        return False
    with sqlite3.connect(path) as conn:
        return bool(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == rows)


def make_store(path: Path, args: argparse.Namespace) -> tuple[float, float]:
    """The store of ``args.rows`` runs: the first ``args.appended`` appended one by one,
    the rest in transactions of 50,000; returns both rates (rows/s)."""
    path.unlink(missing_ok=True)
    store = SQLiteStore(path)
    rates = fill(store, args)
    store.close()
    return rates


def fill(store: Store, args: argparse.Namespace) -> tuple[float, float]:
    """``args.rows`` runs into ``store`` (either backend): the first ``args.appended``
    appended one by one, as calls finish, the rest with ``add_rows`` in chunks of 50,000,
    as ``wb.import_runs`` fills a store; both rates (rows/s)."""
    start = time.perf_counter()
    for i in range(args.appended):
        store.append(run_record(i))
    one_by_one = args.appended / (time.perf_counter() - start)

    start = time.perf_counter()
    batch: list[tuple[object, ...]] = []
    for i in range(args.appended, args.rows):
        row = run_record(i)
        row.run_id = new_run_id()
        batch.append(record_to_row(row))
        if len(batch) == 50_000 or i == args.rows - 1:
            store.add_rows(batch)
            batch = []
    return one_by_one, (args.rows - args.appended) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--appended", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true", help="cProfile wb.runs()")
    parser.add_argument("--store", help="a postgresql:// URL: take the figures there")
    parser.add_argument("--db", type=Path, help="keep the SQLite store here; reuse it if full")
    args = parser.parse_args()
    if args.store:
        postgres(args)
        return

    with tempfile.TemporaryDirectory() as scratch:
        path = args.db or Path(scratch) / "scale.db"
        appends = None if full_store(path, args.rows) else make_store(path, args)
        # A store just made leaves ~0.9 GB of dirty pages: the kernel writing them back
        # competed with the first timed read (fetchall 12.7 s against 6.3 s on the same
        # file reused; wb.runs() 5.7 s of wall for 5.4 s of CPU). Both reads start clean.
        os.sync()
        size_mb = path.stat().st_size / 1e6

        # The floor: the same SELECT through bare sqlite3, rows as tuples; taken before and
        # after wb.runs() and averaged, since this machine's speed drifts within a minute
        # (fetchall alone: 6.5-10.7 s in one hour, quiet).
        raw_before, raw_cpu_before = bare_fetchall(path, args.rows)
        store = SQLiteStore(path)
        gc.collect()
        profiler = cProfile.Profile() if args.profile else None
        start, cpu = time.perf_counter(), cpu_seconds()
        if profiler is not None:
            profiler.enable()
        frame = store.runs()
        if profiler is not None:
            profiler.disable()
        load = time.perf_counter() - start
        # The reader's child may still be exiting, reaped by a thread of its own: its
        # CPU time counts here once it is.
        for thread in threading.enumerate():
            if thread.name.endswith("(wait)"):
                thread.join(timeout=60)
        load_cpu = cpu_seconds() - cpu
        assert len(frame) == args.rows
        del frame
        raw_after, raw_cpu_after = bare_fetchall(path, args.rows)
        raw_load, raw_cpu = (raw_before + raw_after) / 2, (raw_cpu_before + raw_cpu_after) / 2
        gc.collect()
        start, cpu = time.perf_counter(), cpu_seconds()
        one = store.runs(experiment="experiment-7")
        filtered = time.perf_counter() - start
        filtered_cpu = cpu_seconds() - cpu
        assert len(one) == args.rows // EXPERIMENTS
        # Two more experiments: one call is a single sample on a shared machine.
        again = []
        for experiment in ("experiment-8", "experiment-9"):
            gc.collect()
            start = time.perf_counter()
            store.runs(experiment=experiment)
            again.append(time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        store.export(Path(scratch) / "all.parquet")
        export = time.perf_counter() - start
        store.close()

    print(f"{args.rows:,} rows, {size_mb:.0f} MB")
    if appends is None:
        appended = "store reused (appends not measured)"
    else:
        appended = (f"append {appends[0]:,.0f} rows/s one by one, {appends[1]:,.0f} rows/s"
                    " batched")
    print(appended)
    print(
        f"wb.runs() all: {load:.2f} s (bare sqlite3 fetchall {raw_load:.2f} s, mean of"
        f" {raw_before:.2f} s before and {raw_after:.2f} s after; ratio {load / raw_load:.2f});"
        f" CPU {load_cpu:.2f} s against {raw_cpu:.2f} s"
    )
    print(f"wb.runs(experiment=...) of {len(one):,} rows: {filtered:.3f} s (CPU"
          f" {filtered_cpu:.3f} s; two more experiments {again[0]:.3f} s, {again[1]:.3f} s)")
    print(f"export to Parquet: {export:.2f} s ({export / load:.2f} x the load)")
    ratio = load / raw_load
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    record(
        "store_scale",
        f"{args.rows:,} rows ({size_mb:.0f} MB): {appended}; wb.runs() {load:.2f} s ="
        f" {ratio:.2f} x bare "
        f"sqlite3 fetchall ({raw_load:.2f} s, mean of {raw_before:.2f} s before and"
        f" {raw_after:.2f} s after) (target <= 0.35 x: "
        f"{'met' if ratio <= 0.35 else 'MISSED'}), CPU time {load_cpu:.2f} s = "
        f"{load_cpu / raw_cpu:.2f} x fetchall's {raw_cpu:.2f} s; one experiment"
        f" ({len(one):,} rows) {filtered:.3f} s (target < 0.2 s:"
        f" {'met' if filtered < 0.2 else 'MISSED'}; CPU {filtered_cpu:.3f} s; two more"
        f" experiments {again[0]:.3f} s, {again[1]:.3f} s); "
        f"Parquet export {export:.2f} s = {export / load:.2f} x the load; machine load"
        f" average {load_avg} (1, 5, 15 min; {os.cpu_count()} cores)",
    )
    if profiler is not None:
        print_profile(profiler)


if __name__ == "__main__":
    main()
