"""One store interface (issue 21 item 4): both backends implement the ``Store`` protocol,
their names say which is which, SQL is built in each store's dialect with its driver's own
placeholders (nothing rewritten: tests/test_store_placeholders.py), one schema renders both
dialects, and a store made by the previous release's DDL migrates cleanly."""

from __future__ import annotations

import ast
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest
from store_backends import new_store, store, store_backend, store_maker

from workbench.core.record import COLUMNS
from workbench.store import SQLiteStore, Store, open_store
from workbench.store.dialect import POSTGRES_ADBC
from workbench.store.migrations import MIGRATIONS, POSTGRES_MIGRATIONS
from workbench.store.schema import (
    SCHEMA,
    TrackFilledColumns,
    postgres_statements,
    sqlite_statements,
)

__all__ = ["store_backend", "new_store", "store", "store_maker"]

STORE_PACKAGE = Path(__file__).resolve().parents[1] / "workbench" / "store"


def test_both_backends_are_stores(store: Any) -> None:
    assert isinstance(store, Store)
    assert type(store).__name__ in ("SQLiteStore", "PostgresStore")


def test_the_old_name_still_works_and_says_the_new_one(tmp_path: Path) -> None:
    import workbench.store as package

    with pytest.warns(DeprecationWarning, match="SQLiteStore"):
        old = package.ExperimentStore
    assert old is SQLiteStore
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from workbench.store import ExperimentStore
    with ExperimentStore(tmp_path / "old-name.db") as made:
        assert isinstance(made, SQLiteStore)


def test_the_sql_surface_takes_sql_in_the_stores_own_dialect(store: Any) -> None:
    # A "?" inside a string literal is a character of the string to both drivers; the
    # parameters are the dialect's own (psycopg: %s), put in as the statement is built.
    p = store.dialect.mark
    rows = store.select_rows(f"SELECT 'why?', {p}", ["100% ?"])
    assert [tuple(row) for row in rows] == [("why?", "100% ?")]
    store.execute("INSERT INTO prices (model, input_per_mtok, output_per_mtok, updated_at)"
                  f" VALUES ('m?', {store.dialect.marks(3)})", ["1", "2", "x"])
    assert [tuple(r) for r in store.select_rows("SELECT model FROM prices")] == [("m?",)]


def test_a_numbered_dialect_has_no_single_mark() -> None:
    assert POSTGRES_ADBC.marks(3, first=2) == "$2, $3, $4"
    with pytest.raises(ValueError, match="param"):
        POSTGRES_ADBC.mark  # noqa: B018 - the property refuses: $n needs its position


def test_one_schema_renders_both_dialects() -> None:
    names = [name for name, _ in SCHEMA]
    assert names == [name for name, _ in MIGRATIONS] == list(POSTGRES_MIGRATIONS)
    for name, steps in SCHEMA:
        assert POSTGRES_MIGRATIONS[name] == postgres_statements(steps)
        if not any(isinstance(step, TrackFilledColumns) for step in steps):
            assert len(sqlite_statements(steps)) == len(postgres_statements(steps))
        else:  # SQLite's filled-columns mask: nothing on PostgreSQL (see the step)
            assert postgres_statements(steps) == () and sqlite_statements(steps)
    runs = postgres_statements(SCHEMA[0][1])[0]
    assert 'run_id TEXT COLLATE "C" NOT NULL PRIMARY KEY' in runs and "BIGINT" in runs
    assert "COLLATE" not in sqlite_statements(SCHEMA[0][1])[0]


# The previous release's DDL for its first migrations, as it created stores in the field
# (workbench/store/migrations.py before the schema had one source); kept as text here so
# that the test does not depend on the code under test.
LEGACY_M001 = """
CREATE TABLE runs (
    kind TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
    run_id TEXT NOT NULL PRIMARY KEY, created_at TEXT NOT NULL, experiment TEXT NOT NULL,
    sweep_id TEXT, response_model TEXT, temperature REAL, top_p REAL, seed INTEGER,
    max_tokens INTEGER, params TEXT NOT NULL, system TEXT, prompt TEXT, messages TEXT,
    template TEXT, variables TEXT, output TEXT, finish_reason TEXT, tool_calls TEXT,
    prompt_tokens INTEGER, completion_tokens INTEGER, cached_tokens INTEGER,
    reasoning_tokens INTEGER, total_tokens INTEGER,
    tokens_counted INTEGER NOT NULL CHECK (tokens_counted IN (0, 1)),
    cost_usd REAL, price_source TEXT, latency_s REAL, ttft_s REAL, system_fingerprint TEXT,
    request_hash TEXT NOT NULL, sample_index INTEGER NOT NULL,
    cache_hit INTEGER NOT NULL CHECK (cache_hit IN (0, 1)), status TEXT NOT NULL,
    error TEXT, retries INTEGER NOT NULL
)
"""


def test_a_store_made_by_the_previous_release_migrates_cleanly(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.db"
    conn = sqlite3.connect(legacy)
    conn.executescript(
        LEGACY_M001
        + ";CREATE INDEX idx_runs_identity ON runs (request_hash, sample_index);"
        "CREATE TABLE schema_migrations (name TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL);"
        "INSERT INTO schema_migrations VALUES ('m001_create_runs', '2025-01-01T00:00:00+00:00');"
        "INSERT INTO runs (kind, provider, model, run_id, created_at, experiment, params,"
        " tokens_counted, request_hash, sample_index, cache_hit, status, retries) VALUES"
        " ('chat', 'openai', 'm', 'r1', '2025-01-01T00:00:00.000000+00:00', 'e', '{}', 0,"
        " 'h', 0, 0, 'ok', 0);"
    )
    conn.close()
    with open_store(legacy) as migrated, open_store(tmp_path / "fresh.db") as fresh:
        assert migrated.count() == 1 and migrated.runs()["run_id"].tolist() == ["r1"]
        assert tuple(migrated.runs().columns) == COLUMNS
        for table in ("runs", "datasets", "scores", "batches", "claims", "preferences"):
            info = f"PRAGMA table_info({table})"
            assert migrated.select_rows(info) == fresh.select_rows(info), table
        applied = "SELECT name FROM schema_migrations ORDER BY name"
        assert migrated.select_rows(applied) == fresh.select_rows(applied)


def _imports(module: Path) -> set[str]:
    """The store modules ``module`` imports (top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found & {path.stem for path in STORE_PACKAGE.glob("*.py")}


def test_the_store_package_has_no_import_circle() -> None:
    graph = {path.stem: _imports(path) for path in STORE_PACKAGE.glob("*.py")}
    graph["__init__"] = set()  # the package's own re-exports sit above every module

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, set()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(name for name in graph if reaches(name, name, {name}))
    assert circles == []
    assert "sqlite" not in graph["postgres"]  # no SQLite helpers in the PostgreSQL store
    # Opening the SQLite file and its busy retries live in sqlite_file.py, not migrations.py.
    migrations = (STORE_PACKAGE / "migrations.py").read_text()
    assert "def open_database" not in migrations and "def with_retries" not in migrations


def test_every_store_module_is_under_500_lines() -> None:
    for path in STORE_PACKAGE.glob("*.py"):
        assert len(path.read_text().splitlines()) < 500, path.name
