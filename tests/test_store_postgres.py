"""The team store on a real, throw-away PostgreSQL server (tests/postgres_server.py): the
same behaviours on both backends, then what only a shared server has to get right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply
from postgres_server import ALICE_PASSWORD, PostgresServer
from store_backends import chat_run as run
from store_backends import new_store, store, store_backend, store_maker

import workbench as wb
from workbench.core.errors import StoreError
from workbench.core.record import COLUMNS
from workbench.store import SQLiteStore, open_store
from workbench.store.columnar import read_postgres_runs_table
from workbench.store.copying import import_runs
from workbench.store.migrations import MIGRATIONS, POSTGRES_MIGRATIONS
from workbench.store.postgres import PostgresStore

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[1]
# Fixtures: the same store test on both backends
__all__ = ["store_backend", "new_store", "store", "store_maker"]


# ---------------------------------------------------------------- both backends


def test_every_migration_has_a_postgres_form() -> None:
    assert [name for name, _ in MIGRATIONS] == list(POSTGRES_MIGRATIONS)


def test_rows_round_trip_with_the_same_dtypes(store: Any, tmp_path: Path) -> None:
    records = [run(i) for i in range(5)] + [run(9, status="error", error="boom", output=None)]
    for record in records:
        store.append(record)
    frame = store.runs()
    assert list(frame.columns) == list(COLUMNS)
    reference = SQLiteStore(tmp_path / "reference.db")
    for record in records:
        reference.append(record)
    expected = reference.runs()
    reference.close()
    pd.testing.assert_frame_equal(frame, expected)
    assert store.find_ok(records[2].request_hash, 0) == records[2]
    assert store.find_ok(records[5].request_hash, 0) is None
    found = store.find_ok_many([(r.request_hash, 0) for r in records])
    assert set(found) == {(r.request_hash, 0) for r in records[:5]}


def test_filters_limit_and_user(store: Any) -> None:
    for i in range(6):
        store.append(run(i, user="alice" if i % 2 else "bob", sweep_id="s1" if i < 3 else None))
    assert store.runs(user="alice")["output"].tolist() == [
        f"answer {i} ünïcode ✓" for i in (1, 3, 5)
    ]
    assert store.count(user="bob") == 3
    assert store.runs(sweep_id="s1").shape[0] == 3
    assert store.runs(limit=2)["request_hash"].tolist() == [f"{i:064x}" for i in (4, 5)]
    assert store.runs(since=T0 + timedelta(seconds=4)).shape[0] == 2
    assert store.runs(experiment="nope").empty
    assert list(store.runs(experiment="nope").dtypes) == list(store.runs().dtypes)
    assert store.mean_completion_tokens("gpt-4o-mini") == 5.0


def test_prices_and_embeddings(store: Any) -> None:
    store.set_price("m", Decimal("0.15"), Decimal("0.6"))
    store.set_price("m", Decimal("0.15"), Decimal("0.60"), Decimal("0.075"))
    assert store.prices() == {"m": (Decimal("0.15"), Decimal("0.60"), Decimal("0.075"))}
    store.put_embeddings("e", None, {"a": [0.5, 0.25], "b": [1.0, -1.0]})
    store.put_embeddings("e", None, {"a": [0.75, 0.0]})
    assert store.get_embeddings("e", None, ["a", "b", "c"]) == {
        "a": [0.75, 0.0],
        "b": [1.0, -1.0],
    }


def test_a_point_is_claimed_once(store: Any) -> None:
    assert store.claim("h", 0, "run-a", 60.0)
    assert not store.claim("h", 0, "run-b", 60.0)  # someone else holds it
    assert store.claim("h", 1, "run-b", 60.0)  # another sample_index is another point
    store.release("h", 0, "run-b")  # not theirs to give back
    assert not store.claim("h", 0, "run-c", 60.0)
    store.release("h", 0, "run-a")
    assert store.claim("h", 0, "run-c", 60.0)
    assert store.claim("h", 0, "run-d", -1.0)  # a stale claim (its kernel died) is taken over


def test_import_skips_rows_already_there(store: Any, tmp_path: Path) -> None:
    records = [run(i) for i in range(4)]
    local = SQLiteStore(tmp_path / "local.db")
    for record in records:
        local.append(record)
    local.close()
    store.append(records[0])
    assert import_runs(store, tmp_path / "local.db") == 3
    assert import_runs(store, tmp_path / "local.db") == 0
    store.export(tmp_path / "all.jsonl")
    assert import_runs(store, tmp_path / "all.jsonl") == 0
    assert store.count() == 4


# ---------------------------------------------------------------- PostgreSQL only


def test_postgres_reads_column_wise(pg_url: str) -> None:
    with open_store(pg_url) as store:
        store.append(run(1))
        assert isinstance(store, PostgresStore)
        table = read_postgres_runs_table(store.url.uri_with_password(), "", [])
    assert table is not None and table.num_rows == 1  # not the row-wise fallback


def test_column_wise_reads_keep_one_connection_and_survive_a_restart(
    pg_server: PostgresServer, pg_url: str
) -> None:
    # Opening a connection per wb.runs() cost ~65 ms a read of a few rows (a server
    # process each time); the reader keeps its connection, and reopens a dropped one.
    database = pg_url.rsplit("/", 1)[1]
    readers = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND query LIKE 'COPY (SELECT \"kind\"%'"
    )
    with open_store(pg_url) as store:
        store.append(run(1))
        assert len(store.runs()) == 1
        first = pg_server.psql(database, readers).split()
        store.append(run(2))
        assert len(store.runs()) == 2
        assert pg_server.psql(database, readers).split() == first and len(first) == 1
        pg_server.kill()
        pg_server.start()
        assert store.runs()["output"].tolist() == [run(1).output, run(2).output]
        again = pg_server.psql(database, readers).split()
        assert len(again) == 1 and again != first  # read column-wise on a new connection
    assert pg_server.psql(database, readers).split() == []  # closed with the store


def test_a_newer_schema_is_refused_in_one_line(pg_server: PostgresServer, pg_url: str) -> None:
    open_store(pg_url).close()
    database = pg_url.rsplit("/", 1)[1]
    pg_server.psql(database, "INSERT INTO schema_migrations VALUES ('m999_from_the_future', 'x')")
    with open_store(pg_url) as store:
        assert store.find_ok("h", 0) is None  # reading still works
        with pytest.raises(StoreError) as caught:
            store.check_writable()
    message = str(caught.value)
    assert "\n" not in message and "newer workbench" in message and "m999" in message


def test_the_url_comes_from_the_environment_and_toml(
    pg_server: PostgresServer, pg_url: str, in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKBENCH_STORE")
    database = pg_url.rsplit("/", 1)[1]
    pg_server.psql(database, "GRANT ALL ON SCHEMA public TO alice")
    (in_tmp_dir / "workbench.toml").write_text(
        f'[store]\nurl = "{pg_server.url(database, "alice")}"\npassword_env = "TEAM_PG"\n'
    )
    monkeypatch.setenv("TEAM_PG", ALICE_PASSWORD)
    session = wb.get_session()
    assert isinstance(session.store, PostgresStore)
    assert str(session.store_where) == f"postgresql://alice@127.0.0.1:{pg_server.port}/{database}"
    wb.configure(store=str(in_tmp_dir / "local.db"))
    assert isinstance(session.store, SQLiteStore)


def test_the_password_never_shows(
    pg_server: PostgresServer,
    pg_url: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    pg_server.psql(database, "GRANT ALL ON SCHEMA public TO alice")
    url = pg_server.url(database, "alice", ALICE_PASSWORD)
    texts: list[str] = []
    with open_store(url) as store:
        store.append(run(1))
        texts += [repr(store), str(store.label), store.runs().to_csv()]
        texts.append(json.dumps(store.find_ok(run(1).request_hash, 0).as_row(), default=str))
    wb.configure(store=url)
    texts.append(str(wb.get_session().store_where))
    wrong = pg_server.url(database, "alice", "not-" + ALICE_PASSWORD)
    with pytest.raises(StoreError) as caught:
        open_store(wrong)
    texts.append(str(caught.value))
    assert "\n" not in str(caught.value) and "cannot log in" in str(caught.value)
    assert "alice:***@" in str(caught.value)
    out = capsys.readouterr()
    texts += [out.out, out.err, caplog.text, pg_server.psql(database, "SELECT * FROM runs")]
    for text in texts:
        assert ALICE_PASSWORD not in text


def test_a_server_that_is_down_is_one_line_before_any_call(
    pg_server: PostgresServer, start_api: Any
) -> None:
    api = start_api(lambda request: chat_reply("hi"))
    url = f"postgresql://postgres:{ALICE_PASSWORD}@127.0.0.1:1/nowhere"  # nothing listens
    wb.configure(store=url)
    with pytest.raises(StoreError) as caught:
        wb.chat("hello", model="gpt-4o-mini")
    message = str(caught.value)
    assert "\n" not in message and "cannot reach" in message
    assert "postgres:***@127.0.0.1:1/nowhere" in message and ALICE_PASSWORD not in message
    assert api.count("/chat/completions") == 0


# ---------------------------------------------------------------- many processes

_WRITER = textwrap.dedent(
    """
    import sys
    from workbench.core.record import RunRecord
    from workbench.store import open_store
    url, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open_store(url) as store:  # every process migrates (or finds it migrated)
        for i in range(n):
            store.append(RunRecord(kind="chat", provider="p", model="m", experiment=who,
                                   request_hash=f"{who}-{i}", output=str(i)))
    """
)


def _spawn(args: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.stress
def test_eight_processes_write_two_thousand_rows_to_an_empty_database(
    pg_server: PostgresServer, pg_url: str
) -> None:
    writers = [_spawn([pg_url, f"w{k}", "250"]) for k in range(8)]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    database = pg_url.rsplit("/", 1)[1]
    assert pg_server.psql(database, "SELECT COUNT(*), COUNT(DISTINCT run_id) FROM runs") == (
        "2000|2000\n"
    )
    assert (
        pg_server.psql(
            database, "SELECT COUNT(*) FROM (SELECT DISTINCT request_hash FROM runs) AS x"
        )
        == "2000\n"
    )
    # Eight processes started on an empty database: each migration ran once.
    applied = pg_server.psql(database, "SELECT name FROM schema_migrations").split()
    assert sorted(applied) == sorted(name for name, _ in MIGRATIONS)


def test_two_processes_migrate_an_empty_database_once(
    pg_server: PostgresServer, pg_url: str
) -> None:
    writers = [_spawn([pg_url, f"m{k}", "0"]) for k in range(2)]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    database = pg_url.rsplit("/", 1)[1]
    rows = pg_server.psql(database, "SELECT name FROM schema_migrations").split()
    assert len(rows) == len(MIGRATIONS) == len(set(rows))


# ---------------------------------------------------------------- sweeps and replays

_SWEEPER = textwrap.dedent(
    """
    import sys, workbench as wb
    wb.configure(store=sys.argv[1])
    s = wb.sweep("Say {{word}}.", vars={"word": ["a", "b", "c", "d", "e", "f"]},
                 model="gpt-4o-mini", max_tokens=5, concurrency=2)
    s.run()
    frame = wb.runs()
    print(len(frame), int(frame["cache_hit"].sum()), sorted(set(frame["user"])))
    """
)


def _sweep_in(folder: Path, url: str, user: str, api: LoopbackAPI) -> subprocess.Popen[str]:
    folder.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
        "OPENAI_BASE_URL": api.base_url,
        "OPENAI_API_KEY": "sk-test-loopback-0123456789",
        "WORKBENCH_USER": user,
    }
    env.pop("WORKBENCH_STORE", None)
    return subprocess.Popen(
        [sys.executable, "-c", _SWEEPER, url],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _slow_echo(request: Received) -> Reply:
    reply = chat_reply(f"echo {request.body['messages'][-1]['content']}")
    reply.delay_s = 0.3
    return reply


def test_a_colleague_replays_at_zero_requests(pg_url: str, start_api: Any, tmp_path: Path) -> None:
    api = start_api(_slow_echo)
    first = _sweep_in(tmp_path / "alice-laptop", pg_url, "alice", api)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert api.count("/chat/completions") == 6
    second = _sweep_in(tmp_path / "bob-laptop", pg_url, "bob", api)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert api.count("/chat/completions") == 6  # zero new requests
    # Bob's sweep is the same definition: Alice's rows are its rows (nothing re-logged).
    assert out.split("\n")[0] == "6 0 ['alice']"


def test_two_people_sweeping_at_once_send_each_point_once(
    pg_url: str, start_api: Any, tmp_path: Path
) -> None:
    api = start_api(_slow_echo)
    sweeps = [
        _sweep_in(tmp_path / "alice", pg_url, "alice", api),
        _sweep_in(tmp_path / "bob", pg_url, "bob", api),
    ]
    for sweep in sweeps:
        _, err = sweep.communicate(timeout=180)
        assert sweep.returncode == 0, err
    contents = sorted(
        r.body["messages"][-1]["content"]
        for r in api.received
        if r.path.endswith("/chat/completions")
    )
    assert contents == sorted(f"Say {w}." for w in "abcdef")  # each point sent once


# ---------------------------------------------------------------- a server that goes away


def test_a_server_restarted_mid_sweep_loses_no_answer(
    pg_server: PostgresServer, start_api: Any
) -> None:
    database = pg_server.create_database()
    url = pg_server.url(database)
    restarted: list[bool] = []

    def handler(request: Received) -> Reply:
        if not restarted:  # the first answer arrives while the server is down
            restarted.append(True)
            pg_server.kill()
            import threading

            threading.Timer(1.5, pg_server.start).start()
        return chat_reply(f"echo {request.body['messages'][-1]['content']}")

    start_api(handler)
    wb.configure(store=url)
    s = wb.sweep(
        "Say {{word}}.",
        vars={"word": list("abcd")},
        model="gpt-4o-mini",
        max_tokens=5,
        concurrency=1,
    )
    s.run()
    frame = wb.runs()
    assert sorted(frame["output"]) == [f"echo Say {w}." for w in "abcd"]
    assert (frame["status"] == "ok").all()
    wb.get_session().close_store()
    pg_server.drop_database(database)


def test_store_copy_from_the_shell(pg_server: PostgresServer, pg_url: str, tmp_path: Path) -> None:
    local = SQLiteStore(tmp_path / "experiments.db")
    for i in range(7):
        local.append(run(i))
    local.close()
    database = pg_url.rsplit("/", 1)[1]
    pg_server.psql(database, "GRANT ALL ON SCHEMA public TO alice")
    target = pg_server.url(database, "alice", ALICE_PASSWORD)
    command = [
        sys.executable,
        "-m",
        "workbench.cli",
        "store",
        "copy",
        str(tmp_path / "experiments.db"),
        target,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "copied 7 new runs of 7" in first.stderr and "alice:***@" in first.stderr
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert "copied 0 new runs of 7" in again.stderr
    for done in (first, again):
        assert ALICE_PASSWORD not in done.stdout + done.stderr
    assert pg_server.psql(database, "SELECT COUNT(*) FROM runs") == "7\n"


def test_an_answer_that_arrives_while_the_server_is_down_is_kept(
    pg_server: PostgresServer, start_api: Any, in_tmp_dir: Path
) -> None:
    from workbench.store.unsaved import UnsavedRunWarning

    database = pg_server.create_database()
    pg_server.psql(database, "GRANT ALL ON SCHEMA public TO alice")
    url = pg_server.url(database, "alice", ALICE_PASSWORD)

    def handler(request: Received) -> Reply:
        pg_server.kill()  # the server goes away while the call is in flight
        return chat_reply("paid for")

    start_api(handler)
    wb.configure(store=url)
    wb.get_session().store.reconnect_s = 1.0  # type: ignore[union-attr]
    try:
        with pytest.warns(UnsavedRunWarning) as warned:
            answer = wb.chat("hello", model="gpt-4o-mini")
        assert answer.text == "paid for"
        kept = in_tmp_dir / "workbench-store.unsaved.jsonl"
        message = str(warned[0].message)
        assert str(kept) in message and "alice:***@" in message
        assert ALICE_PASSWORD not in message + kept.read_text()
    finally:
        pg_server.start()
    assert wb.import_runs(kept) == 1
    assert wb.runs()["output"].tolist() == ["paid for"]
    wb.get_session().close_store()
    pg_server.drop_database(database)
