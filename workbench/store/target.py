"""Where the store lives: a SQLite file path or a ``postgresql://`` URL, and its password.

The target comes from ``wb.configure(store=...)``, else ``WORKBENCH_STORE``, else
``[store] url`` in ``workbench.toml``, else ``experiments.db``. A URL is only ever shown
masked (``postgresql://user:***@host/db``); the password stays in :class:`StoreURL`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..errors import ConfigurationError

__all__ = ["StoreURL", "is_postgres_url", "configured_target", "DEFAULT_STORE"]

DEFAULT_STORE = "experiments.db"
_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(target: str | os.PathLike[str]) -> bool:
    return (
        isinstance(target, str)
        and target.split(":", 1)[0].lower() in _SCHEMES
        and ("://" in target)
    )


@dataclass(frozen=True)
class StoreURL:
    """A PostgreSQL URL with its password held apart from everything that gets shown."""

    masked: str
    _conninfo: str = field(repr=False)  # the URL without its password
    _password: str | None = field(repr=False, default=None)

    @classmethod
    def parse(cls, url: str, password_env: str | None = None) -> StoreURL:
        parts = urlsplit(url)
        password = unquote(parts.password) if parts.password is not None else None
        if password is None and password_env:
            password = os.environ.get(password_env) or None
            if password is None:
                raise ConfigurationError(
                    f"workbench.toml names password_env = {password_env!r} for the store, but"
                    f" {password_env} is not set: export it, or use PGPASSWORD or ~/.pgpass"
                )
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"  # an IPv6 address
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = quote(unquote(parts.username), safe="") if parts.username else ""
        bare = urlunsplit((parts.scheme, f"{user}@{host}" if user else host, *parts[2:]))
        shown = (
            f"{user}:***@{host}"
            if user and password is not None
            else (f"{user}@{host}" if user else host)
        )
        masked = urlunsplit((parts.scheme, shown, parts.path, "", ""))
        return cls(masked=masked, _conninfo=bare, _password=password)

    @property
    def password(self) -> str | None:
        return self._password

    def conninfo(self) -> str:
        """For libpq (psycopg), with the password passed apart as a keyword."""
        return self._conninfo

    def uri_with_password(self) -> str:
        """For drivers that take only a URI (ADBC); never shown, never logged."""
        if self._password is None:
            return self._conninfo  # libpq still reads PGPASSWORD and ~/.pgpass
        parts = urlsplit(self._conninfo)
        user, _, host = parts.netloc.rpartition("@")
        netloc = f"{user}:{quote(self._password, safe='')}@{host}"
        return urlunsplit((parts.scheme, netloc, *parts[2:]))

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced, in case a driver ever echoes it."""
        if self._password:
            for form in {self._password, quote(self._password, safe="")}:
                text = text.replace(form, "***")
        return text

    def __str__(self) -> str:
        return self.masked


def _toml_store_table(directory: Path | None = None) -> dict[str, object]:
    from ..providers import CONFIG_FILE, _read_toml

    path = (directory or Path.cwd()) / CONFIG_FILE
    if not path.is_file():
        return {}
    table = _read_toml(path).get("store") or {}
    if not isinstance(table, dict):
        raise ConfigurationError(f'{path}: [store] must be a table: url = "postgresql://..."')
    if "password" in table:
        raise ConfigurationError(
            f"{path}: [store] has password; passwords belong in the environment: use"
            ' password_env = "NAME_OF_VARIABLE", PGPASSWORD or ~/.pgpass'
        )
    return table


def configured_target(configured: str | None) -> tuple[str, str | None]:
    """(store target, name of the env var holding its password, if workbench.toml names one)."""
    table = _toml_store_table()
    password_env = table.get("password_env")
    env_name = str(password_env) if password_env else None
    if configured is not None:
        return configured, env_name
    if env := os.environ.get("WORKBENCH_STORE"):
        return env, env_name
    if url := table.get("url"):
        return str(url), env_name
    return DEFAULT_STORE, env_name
