"""Crash safety: a sweep killed with SIGKILL leaves a sound store, and running it again
sends only the runs that are missing."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults import Fault, FaultServer, always
from faults.processes import integrity, row_count, start_sweeper, wait_for_rows
from faults.sweeper import define

import workbench as wb
from workbench.api.providers import known_providers
from workbench.core.identity import request_hash

pytestmark = [
    pytest.mark.stress,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

RUNS = 240
EXPERIMENT = "crash"
KEY = "sk-crash-test-0000000000"


@pytest.fixture
def slow_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    # Slow enough that a kill lands mid-sweep, with calls in flight.
    with FaultServer(always(Fault.OK, delay_s=0.03)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        yield server


def ok_identities(store: Path) -> set[tuple[str, int]]:
    with _Store(store) as rows:
        return rows


class _Store:
    """The ok identities of the sweep, read with a store object of its own."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> set[tuple[str, int]]:
        from workbench.store import SQLiteStore

        self._store = SQLiteStore(self.path)
        df = self._store.runs(experiment=EXPERIMENT, status="ok")
        return set(zip(df.request_hash, df.sample_index.astype(int), strict=True))

    def __exit__(self, *exc: object) -> None:
        self._store.close()


def sent_identities(server: FaultServer, since: int) -> list[tuple[str, int]]:
    provider = known_providers()["openai"].identity  # openai@127.0.0.1:PORT
    return [(request_hash(provider, r.body), 0) for r in server.received()[since:]]


def test_a_killed_sweep_leaves_a_sound_store_and_resumes_with_only_the_missing_runs(
    slow_server: FaultServer, isolated_store: Path
) -> None:
    store = isolated_store
    planned = {p.identity for p in define(wb, RUNS, EXPERIMENT, 4)._plan}
    assert len(planned) == RUNS

    # Two crashes, each at a different point, each followed by a check of the file.
    for kill_at in (40, 120):
        have = ok_identities(store) if store.exists() else set()
        before = slow_server.count()
        process = start_sweeper(
            store, slow_server.base_url, runs=RUNS, experiment=EXPERIMENT, key=KEY
        )
        wait_for_rows(store, kill_at, process, limit_s=60)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        assert process.returncode == -signal.SIGKILL
        assert integrity(store) == "ok"
        sent = sent_identities(slow_server, before)
        assert not set(sent) & have, "a run already in the store was sent again"
        assert len(sent) == len(set(sent)), "a run was sent twice"
        assert row_count(store) < RUNS

    # Running it again here completes it, asking the server only for what is missing.
    have = ok_identities(store)
    missing = planned - have
    assert missing and have
    before = slow_server.count()
    s = define(wb, RUNS, EXPERIMENT, 4)
    df = s.run(progress=False)
    sent = sent_identities(slow_server, before)
    assert sorted(sent) == sorted(missing)
    assert len(df) == RUNS and (df.status == "ok").all()
    rows = wb.runs(experiment=EXPERIMENT)
    assert len(rows) == RUNS and rows.groupby(["request_hash", "sample_index"]).size().max() == 1
    assert integrity(store) == "ok"
