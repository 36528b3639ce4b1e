"""Store tests on both backends: fixtures yielding empty stores of either kind.

Import the fixtures into a test module (``from store_backends import store_backend, new_store,
store``) and its tests that take ``store`` or ``new_store`` run once on a SQLite file and
once on the session's throw-away PostgreSQL server (tests/postgres_server.py, started once
per run). A PostgreSQL store is a fresh database cloned from a template the migrations
have already built, so each test starts empty without paying for the migrations again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from workbench.core.record import RunRecord
from workbench.store import SQLiteStore, open_store

__all__ = [
    "BACKENDS",
    "StoreMaker",
    "store_backend",
    "new_store",
    "store",
    "store_maker",
    "raw_rows",
    "chat_run",
]

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
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class StoreMaker:
    """Empty stores of either kind for one test, all closed (and dropped) at its end."""

    def __init__(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.tmp_path = tmp_path
        self.request = request
        self.opened: list[Any] = []
        self.databases: list[str] = []
        self.server: Any = None

    def make(self, kind: str, name: str = "runs") -> Any:
        if kind == "sqlite":
            made: Any = SQLiteStore(self.tmp_path / f"{name}.db")
        else:
            if self.server is None:
                self.server = self.request.getfixturevalue("pg_server")
            database = self.server.create_database_from(_template(self.server))
            self.databases.append(database)
            made = open_store(self.server.url(database))
        self.opened.append(made)
        return made

    @staticmethod
    def target(store: Any) -> str:
        """What ``open_store``, ``import_runs`` and the CLI take for ``store``."""
        path = getattr(store, "path", None)
        return str(path) if path is not None else str(store.url.conninfo())

    def close(self) -> None:
        for made in self.opened:
            made.close()
        for database in self.databases:
            self.server.drop_database(database)


@pytest.fixture
def store_maker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    maker = StoreMaker(tmp_path, request)
    yield maker
    maker.close()


@pytest.fixture
def new_store(store_backend: str, store_maker: StoreMaker) -> Callable[..., Any]:
    """``new_store(name)``: another empty store of this test's backend (closed after)."""
    return lambda name="runs": store_maker.make(store_backend, name)


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


T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def chat_run(i: int = 0, **overrides: Any) -> RunRecord:
    """Run number ``i`` of an experiment: its own request_hash, one second after the last."""
    values: dict[str, Any] = dict(
        kind="chat",
        provider="openai",
        model="gpt-4o-mini",
        created_at=T0 + timedelta(seconds=i),
        experiment="exp",
        request_hash=f"{i:064x}",
        output=f"answer {i} ünïcode ✓",
        prompt_tokens=10 + i,
        completion_tokens=5,
        temperature=0.5,
        cost_usd=0.000123,
        tool_calls=json.dumps([{"id": "c1"}]),
        user="alice",
    )
    values.update(overrides)
    return RunRecord(**values)
