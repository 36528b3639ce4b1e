"""The ``.db`` file alone holds every row once the kernel that wrote it is gone (issue 20
item 8): the write-ahead log is checkpointed when a store closes and at interpreter exit.

SQLite's documentation (Write-Ahead Logging, 'Checkpointing'): "When the last connection
to a database closes, that connection does one last checkpoint and then deletes the WAL";
a process that exits without closing its connection skips that, and the rows stay in the
``-wal`` file, which a copy of the ``.db`` alone does not carry.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from loopback import chat_reply

REPO = Path(__file__).resolve().parents[1]


def _rows_of_db_alone(store: Path, scratch: Path) -> int:
    """Rows in a copy of the ``.db`` file without its ``-wal`` and ``-shm``."""
    scratch.mkdir()
    copy = scratch / "copied.db"
    shutil.copyfile(store, copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    finally:
        conn.close()


def test_an_executed_notebook_leaves_every_row_in_the_db_file(
    tmp_path: Path, start_api: Any
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    api = start_api(lambda request: chat_reply("bonjour"))
    store = tmp_path / "notebook.db"
    cells = [
        "%load_ext workbench",
        "import workbench as wb\n"
        "for i in range(4):\n    wb.chat(f'number {i}', model='gpt-4o-mini')",
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    env = {
        **os.environ,
        "WORKBENCH_STORE": str(store),
        "PYTHONPATH": str(REPO),  # this checkout's workbench in the kernel
        "PYTHONWARNINGS": "ignore",
    }
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=env)  # as nbconvert --execute: run, then shut the kernel down
    assert api.count("/chat/completions") == 4
    assert _rows_of_db_alone(store, tmp_path / "elsewhere") == 4


def test_closing_a_store_checkpoints_while_another_connection_stays_open(
    tmp_path: Path,
) -> None:
    from workbench.core.record import RunRecord
    from workbench.store import open_store

    path = tmp_path / "shared.db"
    other = sqlite3.connect(path)  # a colleague's kernel, still open
    try:
        with open_store(path) as store:
            other.execute("SELECT COUNT(*) FROM runs").fetchall()  # it shares the log
            for i in range(3):
                store.append(RunRecord(kind="chat", provider="p", model="m", experiment="e",
                                       request_hash=f"h{i}", output=str(i)))
        # Not the last connection: SQLite would leave the rows in the -wal.
        assert _rows_of_db_alone(path, tmp_path / "elsewhere") == 3
    finally:
        other.close()
