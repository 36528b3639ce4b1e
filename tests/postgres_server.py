"""A real, throw-away PostgreSQL server for the tests: a data folder in a temp dir, on a
free loopback port, run as the unprivileged ``postgres`` user (the server refuses root).

``make test`` installs Debian's ``postgresql`` package when initdb is missing. The role
``alice`` logs in with a password (scram-sha-256), to test that a password never shows;
every other role is trusted on loopback.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

__all__ = ["PostgresServer", "find_bin_dir", "ALICE_PASSWORD"]

ALICE_PASSWORD = "s3cr3t-Alice-pw-7f1c"  # distinctive, so a leak is easy to spot


def find_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        # Not pytest's tmp_path: its folders are root-only, and postgres must enter this one.
        self.dir = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._admin_conn: Any = None
        self.version = int(bin_dir.parent.name) if bin_dir.parent.name.isdigit() else 0
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        hba = self.data / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            "host all alice 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n"
        )
        self.start()
        self.psql("postgres", f"CREATE ROLE alice LOGIN PASSWORD '{ALICE_PASSWORD}'")

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*_as_postgres(), str(self.bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.dir,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c max_connections=100"
        )
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.dir / "log"),
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop")

    def kill(self) -> None:
        """As a crash: every connection drops at once (immediate shutdown)."""
        self.stop("immediate")

    def psql(self, database: str, sql: str) -> str:
        done = subprocess.run(
            [
                *_as_postgres(),
                str(self.bin / "psql"),
                "-h",
                str(self.dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.dir,
        )
        return done.stdout

    def create_database(self, owner: str = "postgres") -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.psql("postgres", f"CREATE DATABASE {name} OWNER {owner}")
        return name

    def create_database_from(self, template: str) -> str:
        """A new database cloned from ``template`` (a file copy: faster than migrating)."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        # FILE_COPY (PostgreSQL 15+): a copy of the template's files, with fsync off here
        # cheaper than WAL_LOG's page-by-page log of them.
        strategy = " STRATEGY FILE_COPY" if self.version >= 15 else ""
        self._admin(f"CREATE DATABASE {name} TEMPLATE {template}{strategy}")
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _admin(self, sql: str) -> None:
        """One statement as the superuser on a kept connection (a psql process per
        statement cost ~0.1 s, twice a test); reopened after a restart of the server."""
        import psycopg

        for attempt in (1, 2):
            try:
                if self._admin_conn is None or self._admin_conn.closed:
                    self._admin_conn = psycopg.connect(self.url("postgres"), autocommit=True)
                self._admin_conn.execute(sql)  # type: ignore[arg-type]  # names made here
                return
            except psycopg.OperationalError:
                self._admin_conn = None
                if attempt == 2:
                    raise

    def url(self, database: str, user: str = "postgres", password: str | None = None) -> str:
        login = f"{user}:{password}" if password is not None else user
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database}"

    def close(self) -> None:
        if self._admin_conn is not None:
            with contextlib.suppress(Exception):
                self._admin_conn.close()
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
