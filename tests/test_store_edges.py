"""Stores at the edges: full disks, read-only media, newer schemas, damaged pages.

Each case is made the way it happens to a person: a real tmpfs that fills up or is
remounted read-only (root with CAP_SYS_ADMIN, as in CI; skipped with the reason
elsewhere), a second connection that migrates the file as a newer workbench would, bytes
overwritten in the middle of the runs table.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.calls import session as session_mod
from workbench.core.errors import StoreError
from workbench.core.record import RunRecord
from workbench.store import SQLiteStore
from workbench.store.copying import import_runs
from workbench.store.migrations import MIGRATIONS

StartAPI = Callable[[Callable[[Received], Reply]], LoopbackAPI]

NEWER_MIGRATION = "m999_newer_workbench_adds_team"


def answer(request: Received) -> Reply:
    if request.path.endswith("/embeddings"):
        vectors = [[float(len(text)), 1.0] for text in request.body["input"]]
        return Reply(
            body={
                "object": "list",
                "model": request.body["model"],
                "data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": 2, "total_tokens": 2},
            }
        )
    return chat_reply("Paris.", model=request.body["model"])


def run(**overrides: Any) -> RunRecord:
    values: dict[str, Any] = dict(
        kind="chat", provider="openai", model="gpt-4o-mini", request_hash="h" * 64
    )
    values.update(overrides)
    return RunRecord(**values)


def one_line_naming(error: BaseException, path: Path) -> str:
    message = str(error)
    assert "\n" not in message and str(path) in message, message
    return message


@contextlib.contextmanager
def mounted_tmpfs(size: str) -> Iterator[Path]:
    """A real small file system of its own, unmounted afterwards."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small or read-only file system")
    where = Path(tempfile.mkdtemp(prefix="workbench-tmpfs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs (needs root with CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def fill_disk(where: Path) -> None:
    """Write a file until the file system holding ``where`` has no byte left."""
    fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    assert os.statvfs(where).f_bfree == 0


def close_session_store() -> None:
    if session_mod._SESSION is not None:
        session_mod._SESSION.close_store()


# ---------------------------------------------------------------- a store that fills up


def test_a_full_disk_refuses_each_call_before_it_is_sent(start_api: StartAPI) -> None:
    api = start_api(answer)
    with mounted_tmpfs("8m") as disk:
        path = disk / "experiments.db"
        try:
            wb.configure(store=path)
            wb.chat("Capital of France?", model="gpt-4o-mini")  # fine, and checked once
            fill_disk(disk)
            for attempt in range(3):
                with pytest.raises(StoreError, match="free disk space") as caught:
                    wb.chat(f"Capital of country {attempt}?", model="gpt-4o-mini")
                one_line_naming(caught.value, path)
            assert api.count("/chat/completions") == 1  # nothing was paid for and lost
            assert len(wb.runs()) == 1
        finally:
            close_session_store()


def test_a_store_at_its_page_limit_is_refused_before_sending(tmp_path: Path) -> None:
    # max_page_count is a quota on the file: SQLite refuses a new page with SQLITE_FULL,
    # as on a full disk, and it holds on any machine (no mount needed).
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        store.append(run())
        store.check_writable()
        assert store._conn is not None
        (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
        store._conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreError, match="full") as caught:
            store.check_writable()
        one_line_naming(caught.value, path)
        assert store.count() == 1


# ---------------------------------------------------------------- read-only media


def test_a_store_on_read_only_media_answers_reads_and_replays(start_api: StartAPI) -> None:
    api = start_api(answer)
    with mounted_tmpfs("8m") as disk:
        path = disk / "experiments.db"
        try:
            wb.configure(store=path)
            first = wb.chat("Capital of France?", model="gpt-4o-mini")
            close_session_store()
            remount_read_only(disk)
            before = path.read_bytes()

            wb.configure(store=path)
            assert list(wb.runs().run_id) == [first.run_id]
            again = wb.chat("Capital of France?", model="gpt-4o-mini")
            assert again.cache_hit and again.text == "Paris."
            with pytest.raises(StoreError, match="read-only") as caught:
                wb.chat("Capital of Spain?", model="gpt-4o-mini")
            message = one_line_naming(caught.value, path)
            assert message.startswith("cannot write the workbench store")
            assert "WORKBENCH_STORE" in message
            assert api.count("/chat/completions") == 1
            assert path.read_bytes() == before
        finally:
            close_session_store()


def test_sweeps_and_embeddings_replay_from_read_only_media(start_api: StartAPI) -> None:
    api = start_api(answer)

    def sweep(*words: str) -> wb.Sweep:
        return wb.sweep("Say {{word}}.", vars={"word": list(words)}, model="gpt-4o-mini")

    with mounted_tmpfs("8m") as disk:
        path = disk / "experiments.db"
        try:
            wb.configure(store=path)
            sweep("cat", "dog").run(progress=False)
            wb.embed(["rain", "snow"], model="text-embedding-3-small")
            close_session_store()
            remount_read_only(disk)
            requests = len(api.received)

            wb.configure(store=path)
            assert list(sweep("cat", "dog").run(progress=False).output) == ["Paris."] * 2
            again = wb.embed(["rain", "snow"], model="text-embedding-3-small")
            assert again.cache_hit and again.embeddings == [[4.0, 1.0], [4.0, 1.0]]
            with pytest.raises(StoreError, match="read-only"):
                sweep("cat", "dog", "fish").run(progress=False)
            with pytest.raises(StoreError, match="read-only"):
                wb.embed(["hail"], model="text-embedding-3-small")
            assert len(api.received) == requests  # nothing sent from the read-only store
        finally:
            close_session_store()


def test_writes_to_a_read_only_store_fail_with_one_line(tmp_path: Path) -> None:
    with mounted_tmpfs("8m") as disk:
        path = disk / "runs.db"
        with SQLiteStore(path) as store:
            kept = run()
            store.append(kept)
        remount_read_only(disk)
        with SQLiteStore(path) as store:
            assert store.find_ok(kept.request_hash, 0) == kept
            exported = store.export(tmp_path / "runs.jsonl")  # reading: fine
            for write in (
                store.check_writable,
                lambda: store.append(run()),
                lambda: import_runs(store, exported),
            ):
                with pytest.raises(StoreError, match="read-only") as caught:
                    write()
                one_line_naming(caught.value, path)


# ---------------------------------------------------------------- a newer workbench's store


def record_newer_migration(path: Path) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
            (NEWER_MIGRATION, "2027-01-01T00:00:00.000000+00:00"),
        )
    conn.close()


def add_required_team_column(path: Path) -> None:
    """Rebuild runs with a NOT NULL column, the way a newer workbench's migration would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    (create,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()
    conn.execute(
        create.replace("CREATE TABLE runs", "CREATE TABLE runs_new").rstrip()[:-1]
        + ", team TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO runs_new SELECT *, 'core' FROM runs")
    conn.execute("DROP TABLE runs")
    conn.execute("ALTER TABLE runs_new RENAME TO runs")
    conn.execute("COMMIT")
    conn.close()


def test_a_store_from_a_newer_workbench_is_read_but_not_written(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        kept = run()
        store.append(kept)
    record_newer_migration(path)

    with SQLiteStore(path) as store:
        assert store.find_ok(kept.request_hash, 0) == kept
        assert list(store.runs().run_id) == [kept.run_id]
        for write in (store.check_writable, lambda: store.append(run())):
            with pytest.raises(StoreError, match="newer workbench") as caught:
                write()
            message = one_line_naming(caught.value, path)
            assert NEWER_MIGRATION in message and MIGRATIONS[-1][0] in message
            assert "upgrade prompt-workbench" in message
        assert store.count() == 1


@pytest.mark.parametrize("recorded", [True, False], ids=["migration recorded", "schema only"])
def test_a_newer_workbench_migrating_the_open_store_stops_the_next_call(
    tmp_path: Path, recorded: bool
) -> None:
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        store.append(run())
        store.check_writable()
        add_required_team_column(path)  # another kernel, running a newer workbench
        if recorded:
            record_newer_migration(path)
        with pytest.raises(StoreError) as caught:
            store.check_writable()
        message = one_line_naming(caught.value, path)
        assert "upgrade prompt-workbench" in message
        assert (NEWER_MIGRATION in message) == recorded
        assert store.count() == 1  # reading still works


# ---------------------------------------------------------------- a damaged page


def damage_a_middle_page_of_runs(path: Path) -> None:
    conn = sqlite3.connect(path)
    leaves = [
        page
        for (page,) in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'runs' AND pagetype = 'leaf' ORDER BY pageno"
        )
    ]
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    assert len(leaves) >= 5
    middle = leaves[len(leaves) // 2]
    with path.open("r+b") as file:
        # Past the page header: cell pointers and cells become garbage.
        file.seek((middle - 1) * page_size + 8)
        file.write(b"\xa5" * (page_size - 16))


@pytest.fixture
def damaged_store(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        for i in range(300):
            store.append(run(request_hash=f"{i:064x}", output="an answer of some length " * 8))
    damage_a_middle_page_of_runs(path)  # closed: the WAL is checkpointed into the file
    return path


def test_a_damaged_page_is_named_with_the_way_to_recover(damaged_store: Path) -> None:
    with SQLiteStore(damaged_store) as store:
        with pytest.raises(StoreError) as caught:
            store.runs()
        message = one_line_naming(caught.value, damaged_store)
        assert "is damaged" in message and "not a workbench store" not in message
        assert ".recover" in message


def test_a_damaged_store_refuses_calls_before_sending(
    start_api: StartAPI, damaged_store: Path
) -> None:
    api = start_api(answer)
    wb.configure(store=damaged_store)
    with pytest.raises(StoreError, match="is damaged") as caught:
        wb.chat("Capital of France?", model="gpt-4o-mini")
    one_line_naming(caught.value, damaged_store)
    assert api.count("/chat/completions") == 0


def sqlite_shell_can_recover() -> bool:
    # .recover reads pages through sqlite_dbpage, which some builds leave out (Debian's
    # sqlite3 3.40 shell says "no such table: sqlite_dbpage").
    probe = ["sqlite3", ":memory:", "SELECT 1 FROM sqlite_dbpage"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 command-line shell")
@pytest.mark.parametrize("recipe", [".recover", ".dump"])
def test_the_recovery_recipes_give_a_working_store(damaged_store: Path, recipe: str) -> None:
    recovered = damaged_store.with_name("runs-recovered.db")
    if recipe == ".recover":
        with SQLiteStore(damaged_store) as store, pytest.raises(StoreError) as caught:
            store.check_writable()
        command = str(caught.value).split("  ")[1]  # the message sets it off by two spaces
        assert command.startswith("sqlite3 ") and ".recover" in command
        assert str(recovered) in command
        if not sqlite_shell_can_recover():
            pytest.skip("this sqlite3 shell is built without sqlite_dbpage, which .recover needs")
    else:  # the README's recipe for such a shell
        command = (
            f"sqlite3 {damaged_store} .dump"
            " | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/'"
            f" | sqlite3 {recovered}"
        )
    subprocess.run(command, shell=True, check=True, capture_output=True)  # noqa: S602
    with SQLiteStore(recovered) as store:
        assert 0 < store.count() < 300  # the damaged page's rows are gone, the rest kept
        store.check_writable()
        store.append(run())
