"""Every table a store holds for its user, copied between real SQLite files and databases
on the throw-away PostgreSQL server, in both directions (``wb.import_runs``, ``workbench
store copy``), rows already there skipped."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from postgres_server import ALICE_PASSWORD
from store_backends import StoreMaker, chat_run, raw_rows, store_maker

from workbench.core.record import RunRecord
from workbench.store import SQLiteStore
from workbench.store.copying import NOT_COPIED, TABLES, Table, copy_command, import_runs
from workbench.store.schema import FILLED_TABLE

__all__ = ["store_maker"]

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
KINDS = ["sqlite", "postgresql"]
DIRECTIONS = [(a, b) for a in KINDS for b in KINDS]


def run(i: int) -> RunRecord:
    # With wb.optimize's lineage (m013_runs_lineage): a copy carries it like any column.
    return chat_run(i, dataset="capitals", dataset_version="v1", item_id=str(i),
                    candidate=f"{i:012x}", parent=f"{i - 1:012x}" if i else None,
                    reflection=f"{i:032x}" if i else None)


def put(store: Any, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """Rows written past the code under test: sqlite3 / psycopg on the store's connection."""
    postgres = isinstance(getattr(store, "path", None), type(None))
    mark = "%s" if postgres else "?"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(table.columns)})"
        f" VALUES ({', '.join([mark] * len(table.columns))})"
    )

    def write(conn: Any) -> None:
        if postgres:
            with conn.cursor() as cur:
                cur.executemany(sql, rows)
        else:
            conn.executemany(sql, rows)

    store._write(write)


TABLE = {table.name: table for table in TABLES}
VECTOR = b"\x00\x00\x80?\x00\x00\x00@"  # float32 [1.0, 2.0]


def at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def fill(store: Any, runs: list[RunRecord]) -> None:
    """One or more rows in every copied table, with values that trip careless copies."""
    for record in runs:
        store.append(record)
    first, second = runs[0].run_id, runs[1].run_id
    put(store, TABLE["datasets"], [("capitals", "v1", "answer", '[{"q": "ünï ✓"}]', at(0))])
    put(
        store,
        TABLE["scores"],
        [
            (first, "contains", "contains#1", 1.0, 1, "found", None, at(1)),
            (second, "judge", "judge#2", 0.30000000000000004, 0, "meh", first, at(2)),
        ],
    )
    put(
        store,
        TABLE["score_history"],
        [(first, "contains", "contains#1", 0.0, 0, "first try", None, at(0), at(1))],
    )
    put(
        store,
        TABLE["preferences"],
        [
            (first, second, "baseline", "alice", "shorter", at(3)),
            (first, second, "tie", "alice", "changed my mind", at(4)),
        ],
    )
    batch = ("batch_1", "openai", "sweep-1", "exp", "file-1", "completed", at(5), '["h:0"]')
    put(store, TABLE["batches"], [(*batch, "out-1", None, 2, 2, 0, at(6), at(7), None)])
    put(store, TABLE["embeddings"], [("minilm", 0, "ab" * 32, VECTOR, at(8))])
    store.set_price("mine", Decimal("0.15"), Decimal("0.60"), Decimal("0.075"))


def table_rows(store: Any, table: Table) -> list[tuple[Any, ...]]:
    rows = [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
        for row in raw_rows(store, f"SELECT {', '.join(table.columns)} FROM {table.name}")
    ]
    return sorted(rows, key=repr)


def test_every_table_is_copied_or_named_as_not(store_maker: StoreMaker) -> None:
    store = store_maker.make("sqlite")
    tables = "SELECT name FROM sqlite_master WHERE type = 'table'"
    names = {name for (name,) in raw_rows(store, tables)}
    assert names == {"runs", *NOT_COPIED, *(table.name for table in TABLES)}
    for table in TABLES:  # a column a later migration adds must be copied too
        columns = [row[1] for row in raw_rows(store, f"PRAGMA table_info({table.name})")]
        assert tuple(columns) == table.columns, table.name


def test_postgresql_has_the_tables_and_columns_of_sqlite(store_maker: StoreMaker) -> None:
    lite, team = store_maker.make("sqlite"), store_maker.make("postgresql")
    tables = "SELECT name FROM sqlite_master WHERE type = 'table'"
    for (name,) in raw_rows(lite, tables):
        if name == FILLED_TABLE:  # SQLite's own (TrackFilledColumns): not on PostgreSQL
            continue
        columns = [row[1] for row in raw_rows(lite, f"PRAGMA table_info({name})")]
        listed = team._query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = %s ORDER BY ordinal_position",
            (name,),
        )
        assert [column for (column,) in listed] == columns, name


@pytest.mark.parametrize(("source_kind", "target_kind"), DIRECTIONS)
def test_import_runs_carries_every_table_and_skips_rows_already_there(
    store_maker: StoreMaker, source_kind: str, target_kind: str
) -> None:
    source = store_maker.make(source_kind, "source")
    target = store_maker.make(target_kind, "target")
    runs = [run(i) for i in range(3)]
    fill(source, runs)
    # The target already has one run, one score and its own price for the same model.
    target.append(runs[0])
    first_score = table_rows(source, TABLE["scores"])[0]
    put(target, TABLE["scores"], [first_score])
    target.set_price("mine", Decimal("9"), Decimal("9"))

    assert import_runs(target, store_maker.target(source)) == 2

    assert list(target.runs()["run_id"]) == [record.run_id for record in runs]
    for table in TABLES:
        if table.name == "prices":
            continue
        assert table_rows(target, table) == table_rows(source, table), table.name
    assert target.prices() == {"mine": (Decimal("9"), Decimal("9"), None)}  # target's kept
    # Preferences keep their order: the later one is the rater's answer.
    preferences = raw_rows(target, "SELECT winner FROM preferences ORDER BY created_at")
    assert preferences == [("baseline",), ("tie",)]

    before = {table.name: table_rows(target, table) for table in TABLES}
    assert import_runs(target, store_maker.target(source)) == 0  # nothing twice
    assert {table.name: table_rows(target, table) for table in TABLES} == before
    assert target.count() == 3


@pytest.mark.parametrize(
    ("source_kind", "target_kind"), [("sqlite", "postgresql"), ("postgresql", "sqlite")]
)
def test_store_copy_command_shows_progress_and_what_it_copied(
    store_maker: StoreMaker,
    capsys: pytest.CaptureFixture[str],
    source_kind: str,
    target_kind: str,
) -> None:
    source = store_maker.make(source_kind, "source")
    target = store_maker.make(target_kind, "target")
    fill(source, [run(i) for i in range(4)])
    source_url, target_url = store_maker.target(source), store_maker.target(target)

    assert copy_command(source_url, target_url, progress=True) == 0
    first = capsys.readouterr().err
    assert "copied 4 new runs of 4" in first
    assert "1 of 1 datasets" in first and "2 of 2 scores" in first
    assert "2 of 2 preferences" in first and "1 of 1 embeddings" in first
    assert "13/13" in first  # the progress bar counted every row of every table

    assert copy_command(source_url, target_url, progress=False) == 0
    again = capsys.readouterr().err
    assert "copied 0 new runs of 4" in again and "0 of 2 scores" in again
    assert len(table_rows(target, TABLE["preferences"])) == 2


def test_an_export_into_postgresql_brings_its_datasets(store_maker: StoreMaker) -> None:
    local = store_maker.make("sqlite", "local")
    assert isinstance(local, SQLiteStore)
    fill(local, [run(i) for i in range(2)])
    exported = local.export(local.path.parent / "runs.jsonl")
    team = store_maker.make("postgresql", "team")
    assert import_runs(team, exported) == 2
    assert table_rows(team, TABLE["datasets"]) == table_rows(local, TABLE["datasets"])
    assert table_rows(team, TABLE["scores"]) == []  # an export holds runs and datasets only


def test_a_source_url_takes_its_password_from_the_variable_workbench_toml_names(
    pg_server: Any,
    store_maker: StoreMaker,
    in_tmp_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    team = store_maker.make("postgresql", "team")
    team.append(run(1))
    database = store_maker.target(team).rsplit("/", 1)[1]
    pg_server.psql(database, "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO alice")
    (in_tmp_dir / "workbench.toml").write_text('[store]\npassword_env = "TEAM_STORE_PW"\n')
    monkeypatch.setenv("TEAM_STORE_PW", ALICE_PASSWORD)
    source = pg_server.url(database, "alice")  # no password in the URL

    assert copy_command(source, str(in_tmp_dir / "mine.db"), progress=False) == 0
    err = capsys.readouterr().err
    assert "copied 1 new runs of 1" in err and ALICE_PASSWORD not in err
