"""Helpers for tests that run sweeps in other processes: start them, watch the store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

SWEEPER = Path(__file__).with_name("sweeper.py")


def start_sweeper(
    store: Path,
    base_url: str,
    *,
    runs: int,
    experiment: str,
    concurrency: int = 4,
    start: int = 0,
    key: str = "sk-sweeper-test-0000000000",
) -> subprocess.Popen[str]:
    """``python sweeper.py ...`` in a process of its own (a kernel, as far as the store knows)."""
    env = {**os.environ, "OPENAI_API_KEY": key, "OPENAI_BASE_URL": base_url}
    env.pop("WORKBENCH_STORE", None)
    command = [
        sys.executable,
        str(SWEEPER),
        str(store),
        base_url,
        f"--runs={runs}",
        f"--experiment={experiment}",
        f"--concurrency={concurrency}",
        f"--start={start}",
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def row_count(store: Path) -> int:
    """Rows in the store as another process sees them (0 before the table exists)."""
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def wait_for_rows(
    store: Path, at_least: int, process: subprocess.Popen[str], limit_s: float
) -> int:
    """Poll until the store holds ``at_least`` rows; fail if the process ends first."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        count = row_count(store)
        if count >= at_least:
            return count
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"the sweeper ended early ({process.returncode}): {err[-2000:]}")
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"the store did not reach {at_least} rows in {limit_s} s")


def integrity(store: Path) -> str:
    conn = sqlite3.connect(store)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()
