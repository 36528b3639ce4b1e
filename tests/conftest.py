"""Test set-up: no test touches a user's files, environment or real API keys."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

# Variables that would send calls somewhere other than where a test means them to go.
_ROUTING_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WORKBENCH_STORE", "JPY_SESSION_NAME")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stress: fault injection, crashes and concurrent processes (tests/faults)"
    )
    # nbval starts notebook kernels before any fixture runs, so what a kernel must see
    # (no real key, a throwaway store) goes into the process environment here.
    for name in _ROUTING_VARS:
        os.environ.pop(name, None)
    scratch = Path(tempfile.mkdtemp(prefix="workbench-tests-"))
    os.environ["WORKBENCH_STORE"] = str(scratch / "notebooks.db")
    os.environ.setdefault("MPLBACKEND", "Agg")
    # A shell without job control starts background commands with SIGINT ignored, and
    # Python keeps an ignored SIGINT: then no Ctrl-C test can raise KeyboardInterrupt
    # (seen with `make test &`). Tests of Ctrl-C need Python's own handler.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, except that all browser tests go to one worker, so that they
    share one JupyterLab and one Chromium (tests/browser/conftest.py). A file's tests stay
    on one worker, in order: a notebook's cells share its kernel, a module's fixtures
    their local model. (xdist's `loadgroup` would do it, but its groups are lost with this
    pytest, whose node ids no longer read the `_nodeid` that xdist sets.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    # Imported here: xdist is loaded only when tests run on workers (-n).
    from xdist.scheduler import LoadFileScheduling

    class BrowserTogether(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/browser/"):
                return "tests/browser"
            return str(super()._split_scope(nodeid))

    return BrowserTogether(config, log)


@pytest.fixture(autouse=True)
def isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the session's experiment table at a fresh file for every test."""
    from workbench.calls import session as session_mod

    path = tmp_path / "experiments.db"
    monkeypatch.setenv("WORKBENCH_STORE", str(path))
    previous = session_mod._SESSION
    session_mod._SESSION = None
    yield path
    if session_mod._SESSION is not None:
        session_mod._SESSION.close_store()
        session_mod._SESSION.clients.close()
    session_mod._SESSION = previous


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, so no workbench.toml of the developer's is read."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def start_api(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> Iterator[Callable[[Callable[[Any], Any]], Any]]:
    """Start loopback APIs (tests/loopback.py) with the test's own handler and point
    OPENAI_BASE_URL / OPENAI_API_KEY at the last one; all stop after the test."""
    from loopback import LoopbackAPI

    with ExitStack() as stack:

        def start(handler: Callable[[Any], Any]) -> LoopbackAPI:
            server = stack.enter_context(LoopbackAPI(handler))
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            monkeypatch.setenv("OPENAI_API_KEY", "sk-test-loopback-0123456789")
            return server

        yield start


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One real PostgreSQL server for the whole run (tests/postgres_server.py)."""
    from postgres_server import PostgresServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb):"
            " `make test` installs it, or apt-get install -y postgresql"
        )
    server = PostgresServer(bin_dir)
    yield server
    server.close()


@pytest.fixture
def pg_url(pg_server: Any) -> Iterator[str]:
    """The URL of a fresh, empty database on the test server, dropped afterwards."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, isolated_store: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The session's store on each backend: the isolated SQLite file, or a fresh database
    on the test PostgreSQL server. For tests of features that keep tables in the store."""
    if request.param == "postgres":
        monkeypatch.setenv("WORKBENCH_STORE", request.getfixturevalue("pg_url"))
    yield str(request.param)
    from workbench.calls import session as session_mod

    if session_mod._SESSION is not None:
        session_mod._SESSION.close_store()  # before its database is dropped
