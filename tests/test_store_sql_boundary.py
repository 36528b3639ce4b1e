"""SQL runs only inside workbench/store/: the scores, review and batch tables are reached
through the Store protocol's methods (store/scores.py, store/batches.py), written once
for both backends, not through SQL sent from other packages."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

import workbench
from workbench.store import Store
from workbench.store.batches import BATCH_COLUMNS, BatchTables
from workbench.store.dialect import POSTGRES, SQLITE
from workbench.store.scores import ScoreTables

PACKAGE = Path(workbench.__file__).parent
STORE = PACKAGE / "store"
# Calls that send SQL to a database (sqlite3, psycopg, ADBC cursors) or through the
# store's own SQL surface (select_rows/execute/execute_many, meant for store/ modules).
SQL_CALLS = {"execute", "executemany", "executescript", "execute_many", "select_rows",
             "cursor", "_query", "_write", "_run_many"}
DRIVERS = {"sqlite3", "psycopg", "psycopg_pool", "adbc_driver_sqlite", "adbc_driver_postgresql"}
# Honest exceptions: none today. A module listed here would say why it must run SQL.
EXCEPTIONS: dict[str, str] = {}


def sql_sent_outside_the_store() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if STORE in path.parents:
            continue
        name = str(path.relative_to(PACKAGE))
        if name in EXCEPTIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
            ):
                found.append(f"{name}:{node.lineno} .{node.func.attr}(")
            elif isinstance(node, ast.Import | ast.ImportFrom):
                modules = (
                    [a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                for module in modules:
                    if module.split(".")[0] in DRIVERS:
                        found.append(f"{name}:{node.lineno} import {module}")
    return found


def test_no_module_outside_the_store_sends_sql() -> None:
    assert sql_sent_outside_the_store() == []


def test_the_check_finds_sql_where_there_is_some(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check itself can fail: a module outside store/ with the old way of writing a score.
    fake = tmp_path / "workbench"
    (fake / "store").mkdir(parents=True)
    (fake / "scoring").mkdir()
    (fake / "scoring" / "table.py").write_text(
        "import sqlite3\n"
        "def write(store, rows):\n"
        "    store.execute_many('INSERT INTO scores VALUES (?)', rows)\n"
    )
    (fake / "store" / "scores.py").write_text("def f(conn):\n    conn.execute('SELECT 1')\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    monkeypatch.setattr(__import__(__name__), "STORE", fake / "store")
    assert sql_sent_outside_the_store() == [
        "scoring/table.py:1 import sqlite3",
        "scoring/table.py:3 .execute_many(",
    ]


def test_the_exceptions_name_modules_that_exist() -> None:
    for name, why in EXCEPTIONS.items():
        assert (PACKAGE / name).is_file() and why


@pytest.mark.parametrize("mixin", [ScoreTables, BatchTables])
def test_the_table_methods_are_part_of_the_protocol(mixin: type) -> None:
    public = {n for n in vars(mixin) if not n.startswith("_") and callable(getattr(mixin, n))}
    protocol = {n for n in vars(Store) if not n.startswith("_")}
    assert public and public <= protocol


def test_statements_carry_each_drivers_own_placeholder() -> None:
    # Nothing is rewritten after the fact: psycopg's %s is written into PostgreSQL's
    # statements as they are built, sqlite3's ? into SQLite's.
    from workbench.store.scores import _statements

    assert "%s" in _statements(POSTGRES).put_scores and "?" not in _statements(POSTGRES).put_scores
    assert "?" in _statements(SQLITE).put_scores and "%s" not in _statements(SQLITE).put_scores


def test_batch_rows_come_in_the_order_of_the_ledgers_fields() -> None:
    from workbench.sweeps.batch.ledger import BatchRow

    assert tuple(f.name for f in fields(BatchRow)) == BATCH_COLUMNS
