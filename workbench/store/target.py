"""Where the store lives: a SQLite file path or a ``postgresql://`` URL, and its password.

The target comes from ``wb.configure(store=...)``, else ``WORKBENCH_STORE``, else
``[store] url`` in ``workbench.toml``, else ``experiments.db``. A URL is only ever shown
masked (``postgresql://user:***@host/db``); the password stays in :class:`StoreURL`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from workbench.api.providers import CONFIG_FILE, _read_toml
from workbench.core.errors import ConfigurationError

__all__ = ["StoreURL", "as_target", "is_postgres_url", "configured_target", "DEFAULT_STORE"]

DEFAULT_STORE = "experiments.db"
_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(target: object) -> bool:
    if isinstance(target, StoreURL):
        return True
    return (
        isinstance(target, str)
        and target.split(":", 1)[0].lower() in _SCHEMES
        and ("://" in target)
    )


_UNREADABLE = (
    "the store URL cannot be read: a user name or password in it holds an unencoded '@',"
    " ':', '/', '?' or '#'; percent-encode them (urllib.parse.quote(password, safe=''))"
    " or leave the password out of the URL and use PGPASSWORD, ~/.pgpass or [store]"
    " password_env"
)


@dataclass(frozen=True)
class StoreURL:
    """A PostgreSQL URL with its password held apart from everything that gets shown.

    Made as soon as a URL is read (``wb.configure``, ``WORKBENCH_STORE``, workbench.toml),
    so a frame of a traceback (``%xmode Verbose`` shows every variable) holds this object,
    whose repr is the masked URL, and never the text with the password."""

    masked: str
    _conninfo: str = field(repr=False)  # the URL without its password
    _password: str | None = field(repr=False, default=None)
    # The variable workbench.toml names for the password, read when the password is used.
    _password_env: str | None = field(repr=False, default=None)

    @classmethod
    def parse(cls, url: str, password_env: str | None = None) -> StoreURL:
        parts = _split(url)
        if parts is None:
            del url  # not a variable of this frame when the error is shown
            raise ConfigurationError(_UNREADABLE) from None
        scheme, user, password, host, rest = parts
        bare = urlunsplit((scheme, f"{user}@{host}" if user else host, *rest))
        shown = (
            f"{user}:***@{host}"
            if user and password is not None
            else (f"{user}@{host}" if user else host)
        )
        masked = urlunsplit((scheme, shown, rest[0], "", ""))
        return cls(masked=masked, _conninfo=bare, _password=password, _password_env=password_env)

    def with_password_env(self, password_env: str | None) -> StoreURL:
        """This URL, its password (when it has none) read from ``password_env``."""
        if password_env is None or self._password_env == password_env:
            return self
        return replace(self, _password_env=password_env)

    @property
    def password(self) -> str | None:
        if self._password is None and self._password_env:
            password = os.environ.get(self._password_env) or None
            if password is None:
                raise ConfigurationError(
                    f"workbench.toml names password_env = {self._password_env!r} for the"
                    f" store, but {self._password_env} is not set: export it, or use"
                    " PGPASSWORD or ~/.pgpass"
                )
            return password
        return self._password

    def conninfo(self) -> str:
        """For libpq (psycopg), with the password passed apart as a keyword."""
        return self._conninfo

    def uri_with_password(self) -> str:
        """For drivers that take only a URI (ADBC); never shown, never logged."""
        password = self.password
        if password is None:
            return self._conninfo  # libpq still reads PGPASSWORD and ~/.pgpass
        parts = urlsplit(self._conninfo)
        user, _, host = parts.netloc.rpartition("@")
        netloc = f"{user}:{quote(password, safe='')}@{host}"
        return urlunsplit((parts.scheme, netloc, *parts[2:]))

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced, in case a driver ever echoes it."""
        with contextlib.suppress(ConfigurationError):
            if password := self.password:
                for form in {password, quote(password, safe="")}:
                    text = text.replace(form, "***")
        return text

    def __str__(self) -> str:
        return self.masked


def _split(
    url: str,
) -> tuple[str, str, str | None, str, tuple[str, str, str]] | None:
    """(scheme, user as quoted, password, host[:port], (path, query, fragment)), or None
    when the URL is ambiguous: libpq ends the user part at the first '@' and the user name
    at the first ':', Python at the last '@', so an unencoded '@' or ':' would send one
    password and show another; a '/', '?' or '#' cuts the host part short."""
    scheme, slashes, after = url.partition("://")
    netloc = after.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    userinfo = netloc.rpartition("@")[0]
    if not slashes or netloc.count("@") > 1 or userinfo.count(":") > 1:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None  # the message would quote the text it could not read: the password
    password = unquote(parts.password) if parts.password is not None else None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    if port is not None:
        host = f"{host}:{port}"
    user = quote(unquote(parts.username), safe="") if parts.username else ""
    return parts.scheme, user, password, host, (parts.path, parts.query, parts.fragment)


def as_target(target: str | os.PathLike[str] | StoreURL) -> str | StoreURL:
    """A store target as held: a ``postgresql://`` URL becomes a :class:`StoreURL` at once."""
    if isinstance(target, StoreURL):
        return target
    if is_postgres_url(target):
        return StoreURL.parse(str(target))
    return os.fspath(target)


def _toml_store_table(directory: Path | None = None) -> dict[str, object]:
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


def configured_target(
    configured: str | StoreURL | None,
) -> tuple[str | StoreURL, str | None]:
    """(store target: a file path, or the URL as a :class:`StoreURL` with the password
    variable workbench.toml names; that variable's name, if any)."""
    table = _toml_store_table()
    password_env = table.get("password_env")
    env_name = str(password_env) if password_env else None
    # Not bound to a name here: WORKBENCH_STORE's text goes straight into a StoreURL.
    if configured is None and os.environ.get("WORKBENCH_STORE"):
        target = as_target(os.environ["WORKBENCH_STORE"])
    elif configured is None and table.get("url"):
        target = as_target(str(table["url"]))
    else:
        target = as_target(DEFAULT_STORE if configured is None else configured)
    if isinstance(target, StoreURL):
        target = target.with_password_env(env_name)
    return target, env_name
