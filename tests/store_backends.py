"""Store tests on both backends: fixtures yielding empty stores of either kind.

Import the fixtures into a test module (``from store_backends import backend, new_store,
store``) and its tests that take ``store`` or ``new_store`` run once on a SQLite file and
once on the session's throw-away PostgreSQL server (tests/postgres_server.py, started once
per run). A PostgreSQL store is a fresh database cloned from a template the migrations
have already built, so each test starts empty without paying for the migrations again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.store import ExperimentStore, open_store

__all__ = ["BACKENDS", "backend", "new_store", "store", "raw_rows"]

BACKENDS = ["sqlite", "postgresql"]
_TEMPLATES: dict[int, str] = {}  # id(server) -> migrated template database


def _template(server: Any) -> str:
    """A database the migrations have built, to clone (CREATE DATABASE ... TEMPLATE)."""
    name = _TEMPLATES.get(id(server))
    if name is None:
        name = server.create_database()
        open_store(server.url(name)).close()  # a template must have no connection left
        _TEMPLATES[id(server)] = name
    return name


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """``new_store(name)``: another empty store of this test's backend (closed after)."""
    opened: list[Any] = []
    databases: list[str] = []
    server = request.getfixturevalue("pg_server") if backend == "postgresql" else None

    def make(name: str = "runs") -> Any:
        if server is None:
            made: Any = ExperimentStore(tmp_path / f"{name}.db")
        else:
            database = server.create_database_from(_template(server))
            databases.append(database)
            made = open_store(server.url(database))
        opened.append(made)
        return made

    yield make
    for made in opened:
        made.close()
    for database in databases:
        assert server is not None
        server.drop_database(database)


@pytest.fixture
def store(new_store: Callable[..., Any]) -> Any:
    """An empty store: a SQLite file, or a fresh PostgreSQL database."""
    return new_store()


def raw_rows(store: Any, query: str) -> list[tuple[Any, ...]]:
    """Rows of ``query`` (no parameters) read past the store's own methods."""
    path = getattr(store, "path", None)
    if path is not None:
        conn = sqlite3.connect(path)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()
    return [tuple(row) for row in store._query(query)]
