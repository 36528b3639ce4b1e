"""The experiment store, each test on both backends: a real SQLite file in tmp_path and a
fresh database on the throw-away PostgreSQL server (tests/store_backends.py). Tests about
SQLite files themselves (PRAGMAs, WAL, junk files, file permissions, several processes on
one file) are in the sections marked "SQLite only"."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from store_backends import new_store, raw_rows, store, store_backend, store_maker

from workbench.core.errors import StoreError
from workbench.core.record import COLUMNS, RunRecord, new_run_id
from workbench.store import SQLiteStore, expand_json
from workbench.store.copying import import_runs
from workbench.store.frames import PANDAS_3
from workbench.store.migrations import MIGRATIONS
from workbench.store.postgres import PostgresStore

# Fixtures: every test below takes either store
__all__ = ["store_backend", "new_store", "store", "store_maker"]

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)

# Text in the dtype the installed pandas gives text (pandas 3: "str", Arrow-backed, NaN
# for missing; pandas 2: object holding None).
TEXT = "str" if PANDAS_3 else "object"
EXPECTED_DTYPES = {
    **{name: TEXT for name in COLUMNS},
    "created_at": "datetime64[us, UTC]",
    **{
        name: "Int64"
        for name in (
            "seed",
            "max_tokens",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "reasoning_tokens",
            "total_tokens",
            "sample_index",
            "retries",
            "requests",
        )
    },
    **{name: "float64" for name in ("temperature", "top_p", "cost_usd", "latency_s", "ttft_s")},
    "cache_hit": "bool",
    "tokens_counted": "bool",
}


def full_record(**overrides: Any) -> RunRecord:
    """A chat run with every column filled, with values that trip careless round trips."""
    values: dict[str, Any] = dict(
        kind="chat",
        provider="openai",
        model="gpt-4o-mini",
        created_at=T0,
        experiment="haiku",
        sweep_id="sweep-1",
        response_model="gpt-4o-mini-2024-07-18",
        temperature=0.1 + 0.2,  # 0.30000000000000004: floats must survive bit for bit
        top_p=0.9,
        seed=2**63 - 1,  # above 2**53: a float on the way would change it
        max_tokens=256,
        params=json.dumps({"temperature": 0.3, "seed": 1, "max_tokens": 256}),
        system="You are terse.",
        prompt='Say "hi", then NA, then null',
        messages=json.dumps([{"role": "user", "content": "Say hi"}]),
        template="Say {{word}}",
        variables=json.dumps({"word": "hi"}),
        output='NA\nline two, with a comma; and ünïcödé ✓ "quoted"',
        finish_reason="stop",
        tool_calls=json.dumps([{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]),
        prompt_tokens=12,
        completion_tokens=7,
        cached_tokens=0,
        reasoning_tokens=0,
        total_tokens=19,
        tokens_counted=True,
        cost_usd=1.2345678901234567e-05,
        price_source="genai-prices 0.0.30",
        latency_s=0.5,
        ttft_s=0.125,
        system_fingerprint="fp_44709d6fcb",
        request_hash="a" * 64,
        sample_index=3,
        cache_hit=True,
        status="ok",
        error=None,
        retries=2,
        refusal="I can't help with that.",
        logprobs=json.dumps([["NA", -0.25, [["NA", -0.25], ["No", -1.5]]]]),
        service_tier="default",
        requests=1,
        candidate="c0ffee123456",  # wb.optimize's lineage (m013_runs_lineage)
        parent="feedface7890",
        reflection="0000000000000001" + "ab" * 8,
    )
    values.update(overrides)
    return RunRecord(**values)


def bare_record(**overrides: Any) -> RunRecord:
    """A run with only what is required: every nullable column stays null."""
    values: dict[str, Any] = dict(kind="embed", provider="local", model="minilm")
    values.update(overrides)
    return RunRecord(**values)


def reopen(store: Any) -> Any:
    """Another store object on the same file or database."""
    if isinstance(store, PostgresStore):
        return PostgresStore(store.url)
    return SQLiteStore(store.path)


def sql(path: Path, query: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------- migrations


def test_migrating_an_empty_database_gives_exactly_the_record_columns(tmp_path: Path) -> None:
    # SQLite only: PRAGMA table_info and the journal mode (PostgreSQL's tables and columns
    # are checked against SQLite's in tests/test_store_copy.py).
    path = tmp_path / "new" / "runs.db"  # the folder is created too
    SQLiteStore(path).close()

    info = sql(path, "PRAGMA table_info(runs)")
    assert tuple(row[1] for row in info) == COLUMNS
    types = {row[1]: row[2] for row in info}
    assert {c for c, t in types.items() if t == "REAL"} == {
        "temperature",
        "top_p",
        "cost_usd",
        "latency_s",
        "ttft_s",
    }
    assert {c for c, t in types.items() if t == "INTEGER"} == {
        name for name, dtype in EXPECTED_DTYPES.items() if dtype in ("Int64", "bool")
    }
    assert {row[1] for row in sql(path, "PRAGMA table_info(embeddings)")} == {
        "model",
        "dimensions",
        "text_sha256",
        "vector",
        "created_at",
    }
    assert [row[1] for row in sql(path, "PRAGMA table_info(prices)")] == [
        "model",
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "updated_at",
    ]
    indexes = {row[0]: row[1] for row in sql(path, "SELECT name, sql FROM sqlite_master")}
    assert "(request_hash, sample_index)" in indexes["idx_runs_identity"]
    assert "(experiment, run_id)" in indexes["idx_runs_experiment"]
    assert "(sweep_id, run_id)" in indexes["idx_runs_sweep"]
    assert "(created_at)" in indexes["idx_runs_created_at"]
    assert sql(path, "PRAGMA journal_mode") == [("wal",)]


def test_migrations_are_recorded_by_name_and_not_rerun(store: Any) -> None:
    listed = "SELECT name, applied_at FROM schema_migrations ORDER BY applied_at, name"
    first = raw_rows(store, listed)
    assert [name for name, _ in first] == [
        "m001_create_runs",
        "m002_create_embeddings",
        "m003_create_prices",
        "m004_add_runs_notes",
        "m005_response_fields",
        "m006_datasets",
        "m007_scores",
        "m008_runs_mode_and_batches",
        "m009_add_runs_user",
        "m010_create_claims",
        "m011_reviews",
        "m012_runs_api",
        "m013_runs_lineage",
        "m014_runs_filled",
    ]
    assert [name for name, _ in first] == [name for name, _ in MIGRATIONS]
    assert all(datetime.fromisoformat(at).tzinfo is not None for _, at in first)

    with reopen(store) as again:
        again.append(bare_record())
    with reopen(store) as third:
        assert third.count() == 1  # reopening kept the data: nothing was recreated
    assert raw_rows(store, listed) == first


def test_a_store_from_before_the_response_fields_gains_them(tmp_path: Path) -> None:
    # SQLite only: the file is built by hand from the first migrations' SQLite forms.
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, migration in MIGRATIONS[:3]:  # a file written before issue 14
        migration(conn)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, T0.isoformat()))
    old = list(COLUMNS[: COLUMNS.index("notes")])  # the first release's columns
    row = bare_record().as_row()
    row["created_at"] = T0.isoformat()
    conn.execute(
        f"INSERT INTO runs ({', '.join(old)}) VALUES ({', '.join('?' * len(old))})",
        [row[c] for c in old],
    )
    conn.close()

    with SQLiteStore(path) as store:
        frame = store.runs()
        store.append(full_record())
        assert tuple(frame.columns) == COLUMNS
        assert frame.iloc[0][["refusal", "logprobs", "service_tier"]].isna().all()
        assert store.runs().iloc[-1].refusal == full_record().refusal
    assert tuple(row[1] for row in sql(path, "PRAGMA table_info(runs)")) == COLUMNS


# ---------------------------------------------------------------- append and runs()


def test_every_column_round_trips_with_its_dtype(store: Any) -> None:
    full = full_record()
    bare = bare_record(created_at=T0 + timedelta(seconds=1))
    store.append(full)
    store.append(bare)

    frame = store.runs()

    assert tuple(frame.columns) == COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == EXPECTED_DTYPES
    assert list(frame["run_id"]) == [full.run_id, bare.run_id]
    first = frame.iloc[0]
    for name in COLUMNS:
        expected = getattr(full, name)
        if expected is None:
            assert pd.isna(first[name]), name
        else:
            assert first[name] == expected, name
    assert first["created_at"] == pd.Timestamp(T0)
    assert first["seed"] == 2**63 - 1
    assert first["temperature"] == 0.1 + 0.2
    assert json.loads(first["params"])["seed"] == 1  # JSON columns stay JSON text
    second = frame.iloc[1]
    for name in COLUMNS:
        expected = getattr(bare, name)
        if expected is None:
            assert pd.isna(second[name]), name
        else:
            assert second[name] == expected, name
    # Missing text is what the installed pandas uses: NaN with pandas 3's str dtype.
    for name in ("sweep_id", "output"):
        assert pd.isna(second[name]) and not isinstance(second[name], str)
        assert (second[name] is None) == (not PANDAS_3)


def test_an_empty_table_still_has_every_column_and_dtype(store: Any) -> None:
    frame = store.runs()
    assert len(frame) == 0
    assert tuple(frame.columns) == COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == EXPECTED_DTYPES
    filtered = store.runs(experiment="nothing", limit=5)
    assert {c: str(t) for c, t in filtered.dtypes.items()} == EXPECTED_DTYPES


def test_created_at_is_stored_as_sortable_utc_text(store: Any) -> None:
    local = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    store.append(bare_record(created_at=local))
    store.append(bare_record(created_at=datetime(2025, 3, 1, 12, 0, 0, 5)))  # naive = UTC
    stored = raw_rows(store, "SELECT created_at FROM runs ORDER BY created_at")
    assert stored == [("2025-03-01T12:00:00.000000+00:00",), ("2025-03-01T12:00:00.000005+00:00",)]
    if isinstance(store, SQLiteStore):  # SQLite only: storage classes
        assert sql(
            store.path, "SELECT typeof(cache_hit), typeof(temperature) FROM runs LIMIT 1"
        ) == [("integer", "null")]


def test_append_takes_numpy_numbers_and_refuses_values_of_the_wrong_kind(
    store: Any,
) -> None:
    store.append(bare_record(seed=np.int64(7), temperature=np.float64(0.5)))
    assert store.runs()["seed"].tolist() == [7]
    with pytest.raises(TypeError, match="max_tokens"):
        store.append(bare_record(max_tokens=0.7))
    with pytest.raises(TypeError, match="params"):
        store.append(bare_record(params={"temperature": 1}))  # must be JSON text already
    assert store.count() == 1


def test_appending_the_same_run_twice_is_a_store_error(store: Any) -> None:
    record = bare_record()
    store.append(record)
    with pytest.raises(StoreError, match="already holds this run_id"):
        store.append(record)


def test_filters_and_limit(store: Any) -> None:
    records = [
        full_record(experiment="a", sweep_id="s1", created_at=T0 + timedelta(minutes=i))
        for i in range(3)
    ]
    records.append(bare_record(experiment="a", status="error", error="boom", created_at=T0))
    records.append(bare_record(experiment="b", created_at=T0 + timedelta(hours=1)))
    for record in records:
        store.append(record)
    ids = [record.run_id for record in records]

    assert list(store.runs(experiment="a")["run_id"]) == ids[:4]
    assert list(store.runs(sweep_id="s1")["run_id"]) == ids[:3]
    assert list(store.runs(status="error")["run_id"]) == [ids[3]]
    assert list(store.runs(kind="embed")["run_id"]) == ids[3:]
    assert list(store.runs(kind="chat", experiment="b")["run_id"]) == []
    since = T0 + timedelta(minutes=1)
    assert list(store.runs(since=since)["run_id"]) == [ids[1], ids[2], ids[4]]
    assert list(store.runs(since="2025-03-01 12:01:00.123456")["run_id"]) == [
        ids[1],
        ids[2],
        ids[4],
    ]
    # An offset in the string is honoured: 14:01 at +02:00 is 12:01 UTC.
    assert len(store.runs(since="2025-03-01T14:01:00.123456+02:00")) == 3
    # limit keeps the most recent runs, still oldest first.
    assert list(store.runs(limit=2)["run_id"]) == ids[3:]
    assert list(store.runs(experiment="a", limit=2)["run_id"]) == ids[2:4]
    assert len(store.runs(limit=0)) == 0
    with pytest.raises(ValueError):
        store.runs(limit=-1)

    assert store.count() == 5
    assert store.count(experiment="a") == 4
    assert store.count(experiment="a", status="ok") == 3
    assert store.count(since=since, kind="chat") == 2
    assert store.count(limit=2) == 2


def test_runs_are_ordered_by_run_id_whatever_the_insert_order(store: Any) -> None:
    ids = sorted(new_run_id() for _ in range(20))
    for run_id in reversed(ids):
        store.append(bare_record(run_id=run_id))
    assert list(store.runs()["run_id"]) == ids
    assert list(store.runs(limit=3)["run_id"]) == ids[-3:]


# ---------------------------------------------------------------- cache and replay


def test_find_ok_returns_the_newest_ok_run_and_ignores_errors(store: Any) -> None:
    older = full_record(output="old", created_at=T0)
    newer = full_record(output="new", created_at=T0 + timedelta(seconds=1))
    failed = full_record(
        status="error", error="429", output=None, created_at=T0 + timedelta(seconds=2)
    )
    other_sample = full_record(sample_index=4, output="other", created_at=T0)
    for record in (older, newer, failed, other_sample):
        store.append(record)

    found = store.find_ok("a" * 64, 3)
    assert found == newer  # every field, datetime tz-aware, bools and ints as they were
    assert found is not None and found.created_at.tzinfo is not None
    assert isinstance(found.cache_hit, bool) and isinstance(found.seed, int)
    assert store.find_ok("a" * 64, 4) == other_sample
    assert store.find_ok("a" * 64, 5) is None
    assert store.find_ok("b" * 64, 3) is None

    only_errors = full_record(request_hash="c" * 64, status="error", error="boom")
    store.append(only_errors)
    assert store.find_ok("c" * 64, 3) is None


def test_find_ok_many_matches_find_ok_for_thousands_of_identities(
    store: Any,
) -> None:
    stored = {}
    for i in range(1200):  # more than one chunk of request hashes
        record = bare_record(request_hash=f"{i:064x}", sample_index=i % 3, output=str(i))
        store.append(record)
        stored[(record.request_hash, record.sample_index)] = record
    newer = bare_record(request_hash=f"{5:064x}", sample_index=2, output="newer")
    newer.created_at = stored[(newer.request_hash, 2)].created_at + timedelta(seconds=1)
    store.append(newer)
    store.append(bare_record(request_hash=f"{6:064x}", sample_index=0, status="error"))

    wanted = list(stored) + [(f"{6:064x}", 0), (f"{9999:064x}", 0), (f"{1:064x}", 2)]
    found = store.find_ok_many(wanted)

    assert set(found) == set(stored)
    assert found[(f"{5:064x}", 2)] == newer
    assert found[(f"{7:064x}", 1)] == stored[(f"{7:064x}", 1)]
    assert store.find_ok_many([]) == {}


def test_mean_completion_tokens_uses_earlier_ok_chat_runs(store: Any) -> None:
    assert store.mean_completion_tokens("gpt-4o-mini", None) is None
    store.append(full_record(completion_tokens=10, cache_hit=False))
    store.append(full_record(completion_tokens=20, cache_hit=False, experiment="other"))
    store.append(full_record(completion_tokens=1000, cache_hit=True))  # a replayed copy
    store.append(full_record(completion_tokens=1000, cache_hit=False, status="error"))
    store.append(full_record(completion_tokens=1000, cache_hit=False, model="gpt-4o"))
    assert store.mean_completion_tokens("gpt-4o-mini", None) == 15.0
    assert store.mean_completion_tokens("gpt-4o-mini", "haiku") == 10.0
    assert store.mean_completion_tokens("gpt-4o-mini", "nothing") is None


# ---------------------------------------------------------------- concurrency
# Several processes on one PostgreSQL database: tests/test_store_postgres.py.

_WORKER = """
import sys, os, time
from workbench.core.record import RunRecord
from workbench.store import SQLiteStore
path, worker, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print("ready", flush=True)
while not os.path.exists(go):  # start together so the appends really interleave
    time.sleep(0.01)
store = SQLiteStore(path)  # several processes create and migrate the same new file
for i in range(250):
    store.append(RunRecord(kind="chat", provider="p", model="m", experiment=f"w{worker}",
                           request_hash=f"{worker}-{i}", output=f"{worker}:{i}"))
store.close()
"""


def test_four_processes_appending_to_one_file_lose_nothing(tmp_path: Path) -> None:
    # SQLite only: processes sharing one file through SQLite's locks.
    path = tmp_path / "shared.db"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), str(n), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(4)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    go.touch()
    for worker in workers:
        _, stderr = worker.communicate(timeout=240)
        assert worker.returncode == 0, stderr

    with SQLiteStore(path) as store:
        frame = store.runs()
        assert len(frame) == 1000
        assert frame["run_id"].is_unique
        assert frame.groupby("experiment").size().to_dict() == {f"w{n}": 250 for n in range(4)}
        assert set(frame["output"]) == {f"{n}:{i}" for n in range(4) for i in range(250)}
    assert sql(path, "PRAGMA integrity_check") == [("ok",)]
    assert len(sql(path, "SELECT name FROM schema_migrations")) == len(MIGRATIONS)


def test_threads_share_one_store_object(store: Any) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                store.append(bare_record(request_hash=f"{n}-{i}"))
                store.find_ok(f"{n}-{i}", 0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 400


# ---------------------------------------------------------------- export and import


def _sample_runs(store: Any) -> list[RunRecord]:
    records = [
        full_record(created_at=T0),
        full_record(experiment="other", sample_index=0, created_at=T0 + timedelta(seconds=1)),
        bare_record(created_at=T0 + timedelta(seconds=2)),
        bare_record(status="error", error="HTTP 429 from https://api.example/v1", retries=3),
    ]
    for record in records:
        store.append(record)
    return records


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_export_then_import_round_trips(new_store: Any, tmp_path: Path, suffix: str) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    with new_store("mine") as mine:
        records = _sample_runs(mine)
        exported = mine.export(tmp_path / "out" / f"runs{suffix}")
        original = mine.runs()
    assert exported == tmp_path / "out" / f"runs{suffix}" and exported.exists()

    with new_store("colleague") as theirs:
        assert import_runs(theirs, exported) == 4
        assert import_runs(theirs, exported) == 0  # merged by run_id: nothing twice
        pd.testing.assert_frame_equal(theirs.runs(), original)
        # Replay from the exported file: the colleague's store answers the same identity.
        assert theirs.find_ok("a" * 64, 3) == records[0]


def test_export_of_one_experiment_and_merging_into_a_store_with_runs(
    new_store: Any, tmp_path: Path
) -> None:
    with new_store("mine") as mine:
        _sample_runs(mine)
        exported = mine.export(tmp_path / "other.jsonl", experiment="other")
        everything = mine.export(tmp_path / "all.jsonl")
    assert len(exported.read_text().splitlines()) == 1
    with new_store("theirs") as theirs:
        theirs.append(bare_record(experiment="theirs"))
        assert import_runs(theirs, exported) == 1
        assert import_runs(theirs, everything) == 3
        assert theirs.count() == 5


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_exports_keep_empty_text_apart_from_null(
    new_store: Any, tmp_path: Path, suffix: str
) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    with new_store("a") as store:
        store.append(bare_record(output="", system=None, request_hash=""))
        store.append(bare_record(output=None, system="", prompt='""', error=","))
        path = store.export(tmp_path / f"runs{suffix}")
        original = store.runs()
    with new_store("b") as other:
        import_runs(other, path)
        rows = other.runs()
    # '' and missing stay apart through every format.
    assert list(rows["output"].isna()) == [False, True] and rows["output"][0] == ""
    assert list(rows["system"].isna()) == [True, False] and rows["system"][1] == ""
    assert list(rows["prompt"].isna()) == [True, False] and rows["prompt"][1] == '""'
    assert list(rows["request_hash"]) == ["", ""]
    pd.testing.assert_frame_equal(rows, original)


def test_a_hand_made_csv_reads_empty_fields_as_null_or_empty_text(
    store: Any, tmp_path: Path
) -> None:
    # A spreadsheet writes nothing at all for an empty cell: null where the column may
    # be null, "" in a required text column.
    lines = [
        "\ufeffrun_id,created_at,kind,provider,model,request_hash,output,seed,cache_hit",
        "r1,2026-01-31T12:00:00Z,chat,openai,gpt-4o,,,,False",
        'r2,2026-01-31T12:00:01Z,chat,openai,gpt-4o,h,"a, ""b""\nc",7,true',
    ]
    path = tmp_path / "by-hand.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    assert import_runs(store, path) == 2
    rows = store.runs()
    assert list(rows["request_hash"]) == ["", "h"]
    assert rows["output"].isna().tolist() == [True, False]
    assert rows["output"][1] == 'a, "b"\nc'
    assert rows["seed"].tolist() == [pd.NA, 7] and list(rows["cache_hit"]) == [False, True]


def test_export_and_import_name_the_three_formats(store: Any, tmp_path: Path) -> None:
    for action in (store.export, lambda path: import_runs(store, path)):
        with pytest.raises(StoreError) as caught:
            action(tmp_path / "runs.xlsx")
        for suffix in (".parquet", ".csv", ".jsonl"):
            assert suffix in str(caught.value)


def test_importing_a_broken_file_is_one_store_error_and_adds_nothing(
    store: Any, tmp_path: Path
) -> None:
    missing_column = tmp_path / "bad.jsonl"
    missing_column.write_text(json.dumps({"run_id": "x", "kind": "chat"}) + "\n")
    with pytest.raises(StoreError, match="no column"):
        import_runs(store, missing_column)

    good = bare_record()
    row = {**good.as_row(), "created_at": T0.isoformat()}
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(row) + "\n{not json\n")
    with pytest.raises(StoreError, match="line 2"):
        import_runs(store, broken)

    null_model = tmp_path / "null.jsonl"
    null_model.write_text(json.dumps({**row, "model": None}) + "\n")
    with pytest.raises(StoreError, match="model"):
        import_runs(store, null_model)

    with pytest.raises(StoreError, match="cannot read"):
        import_runs(store, tmp_path / "nowhere.csv")
    assert store.count() == 0


# ---------------------------------------------------------------- embeddings and prices


def test_embeddings_are_cached_per_model_dimensions_and_text(store: Any) -> None:
    vectors = {"hello": [0.1, 0.2, 0.3], "world": [1.0, -1.0, 0.5], "": [0.0, 0.0, 0.0]}
    store.put_embeddings("minilm", None, vectors)
    store.put_embeddings("small", 2, {"hello": [9.0, 8.0]})

    found = store.get_embeddings("minilm", None, ["hello", "world", "", "absent"])
    assert set(found) == {"hello", "world", ""}
    for text, vector in vectors.items():
        # Stored as float32: what comes back is the float32 value of what went in.
        assert found[text] == np.asarray(vector, dtype=np.float32).tolist()
        assert all(isinstance(x, float) for x in found[text])
    assert store.get_embeddings("small", 2, ["hello"]) == {"hello": [9.0, 8.0]}
    assert store.get_embeddings("small", None, ["hello"]) == {}
    assert store.get_embeddings("other", None, ["hello"]) == {}

    store.put_embeddings("minilm", None, {"hello": [5.0, 5.0, 5.0]})  # a newer vector wins
    assert store.get_embeddings("minilm", None, ["hello"]) == {"hello": [5.0, 5.0, 5.0]}

    many = {f"text {i}": [float(i)] for i in range(1500)}
    store.put_embeddings("minilm", 1, many)
    assert store.get_embeddings("minilm", 1, list(many)) == {t: v for t, v in many.items()}


def test_prices_keep_their_decimals(store: Any) -> None:
    assert store.prices() == {}
    store.set_price("mine", Decimal("0.15"), Decimal("0.60"), Decimal("0.075"))
    store.set_price("tiny", Decimal("1E-7"), Decimal("0"), None)
    assert store.prices() == {
        "mine": (Decimal("0.15"), Decimal("0.60"), Decimal("0.075")),
        "tiny": (Decimal("1E-7"), Decimal("0"), None),
    }
    store.set_price("mine", Decimal("0.20"), Decimal("0.80"), None)
    assert store.prices()["mine"] == (Decimal("0.20"), Decimal("0.80"), None)
    if isinstance(store, SQLiteStore):  # SQLite only: storage classes
        assert sql(store.path, "SELECT typeof(input_per_mtok) FROM prices LIMIT 1") == [("text",)]
    assert raw_rows(store, "SELECT input_per_mtok FROM prices WHERE model = 'tiny'") == [("1E-7",)]
    with pytest.raises(ValueError):
        store.set_price("bad", Decimal("-1"), Decimal("0"), None)
    with pytest.raises(ValueError):
        store.set_price("bad", 0.15, Decimal("0"), None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- files that are not stores
# SQLite only: junk files, other programs' databases, folders and file permissions. Their
# PostgreSQL twins (a server down, a wrong password, a read-only role, another app's runs
# table) are in tests/test_store_postgres.py.


def _assert_one_line(error: StoreError, path: Path) -> None:
    message = str(error)
    assert "\n" not in message
    assert str(path) in message
    assert "WORKBENCH_STORE" in message
    assert isinstance(error.__cause__, (sqlite3.Error, OSError))


@pytest.mark.parametrize("size", [10, 5000])
def test_a_junk_file_is_a_store_error_and_is_left_alone(tmp_path: Path, size: int) -> None:
    path = tmp_path / "junk.db"
    junk = os.urandom(size)
    path.write_bytes(junk)
    with pytest.raises(StoreError, match="is not a workbench store") as caught:
        SQLiteStore(path)
    _assert_one_line(caught.value, path)
    assert "move it aside" in str(caught.value)
    assert path.read_bytes() == junk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.db"]


def test_another_programs_database_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a workbench store") as caught:
        SQLiteStore(path)
    assert str(path) in str(caught.value)
    assert [row[0] for row in sql(path, "SELECT name FROM sqlite_master")] == ["notes"]


def test_a_path_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError) as caught:
        SQLiteStore(blocker / "runs.db")  # its "folder" is a file
    _assert_one_line(caught.value, blocker / "runs.db")
    with pytest.raises(StoreError) as caught:
        SQLiteStore(tmp_path)  # a folder, not a file
    _assert_one_line(caught.value, tmp_path)


def _open_error(path: str) -> tuple[int | None, str]:
    """(runs read, StoreError message) of opening ``path`` then checking it is writable."""
    read = None
    try:
        with SQLiteStore(path) as store:
            read = store.count()  # a store that can only be read still reads
            store.check_writable()
    except StoreError as exc:
        assert isinstance(exc.__cause__, (sqlite3.Error, OSError, type(None)))
        return read, str(exc)
    return read, ""


def _open_error_in_child(path: str, results: Any) -> None:
    os.setgid(65534)
    os.setuid(65534)  # nobody: file permissions apply from here on
    results.put(_open_error(path))


def open_error_as_unprivileged(path: Path) -> tuple[int | None, str]:
    """What ``_open_error`` gives for ``path`` as a user who is bound by permissions.

    root ignores file modes, so under root the open happens in a forked child that has
    given up root first.
    """
    if os.geteuid() != 0:
        return _open_error(str(path))
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("running as root without fork(): cannot drop privileges")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_open_error_in_child, args=(str(path), results))
    child.start()
    outcome: tuple[int | None, str] = results.get(timeout=120)
    child.join()
    return outcome


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder every user can reach (tmp_path sits under a root-only folder)."""
    base = Path(tempfile.mkdtemp(prefix="workbench-store-test-"))
    base.chmod(0o755)
    yield base
    for path in [base, *base.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    shutil.rmtree(base)


@pytest.mark.parametrize(
    "case", ["read-only file", "read-only folder", "new file, read-only folder"]
)
def test_read_only_places_give_a_one_line_store_error(shared_dir: Path, case: str) -> None:
    # An existing store there is opened read-only: it reads, and refuses writes before
    # any call is sent. A new one cannot even be created.
    folder = shared_dir / "stores"
    folder.mkdir()
    path = folder / "runs.db"
    if case != "new file, read-only folder":
        with SQLiteStore(path) as store:
            store.append(bare_record())
        for extra in folder.glob("runs.db-*"):
            extra.unlink()  # closed cleanly: the WAL was checkpointed into the file
    before = path.read_bytes() if path.exists() else None
    if case == "read-only file":
        path.chmod(0o444)
    else:
        if path.exists():
            path.chmod(0o666)
        folder.chmod(0o555)

    read, message = open_error_as_unprivileged(path)

    assert read == (None if case == "new file, read-only folder" else 1)
    assert message.startswith("cannot write the workbench store"), message
    assert "\n" not in message and str(path) in message and "WORKBENCH_STORE" in message
    assert (path.read_bytes() if path.exists() else None) == before


def test_a_closed_store_says_so(store: Any) -> None:
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.runs()
    with pytest.raises(StoreError, match="closed"):
        store.append(bare_record())


# ---------------------------------------------------------------- expand_json


def test_expand_json_spreads_params_and_messages_into_prefixed_columns(
    store: Any,
) -> None:
    store.append(full_record())
    store.append(bare_record(params="{}", messages=json.dumps(["a text"])))
    frame = store.runs()

    params = expand_json(frame)
    assert params["params.temperature"].tolist()[0] == 0.3
    assert pd.isna(params["params.seed"].tolist()[1])
    assert "params" in params.columns and list(params.index) == list(frame.index)

    messages = expand_json(frame, "messages")
    assert messages["messages.0.role"].tolist()[0] == "user"
    assert messages["messages.0"].tolist()[1] == "a text"

    variables = expand_json(frame, "variables")
    assert variables["variables.word"].tolist()[0] == "hi"

    nothing = expand_json(frame.iloc[1:], "variables")
    assert list(nothing.columns) == list(frame.columns)


def test_expand_json_keeps_rows_with_repeated_index_labels() -> None:
    frame = pd.DataFrame({"params": ['{"a": 1}', '{"a": 2}', None]}, index=[7, 7, 8])
    expanded = expand_json(frame)
    assert list(expanded.index) == [7, 7, 8]
    assert expanded["params.a"].tolist()[:2] == [1, 2] and pd.isna(expanded["params.a"].iloc[2])


def test_expand_json_names_the_row_with_bad_json() -> None:
    frame = pd.DataFrame({"params": ['{"a": 1}', "{oops"]}, index=["r1", "r2"])
    with pytest.raises(ValueError, match="r2"):
        expand_json(frame)
