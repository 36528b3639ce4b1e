"""The session's store: opened on first use from the configured target (a SQLite file or a
``postgresql://`` URL), and the one place a row is appended, kept in a file beside the
store when the table refuses it."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.api.credentials import known_secrets
from workbench.core.errors import redact
from workbench.store.target import configured_target, is_postgres_url
from workbench.store.unsaved import UnsavedRun, UnsavedRunWarning

if TYPE_CHECKING:
    from workbench.core.record import RunRecord
    from workbench.store import AnyStore
    from workbench.store.target import StoreURL

__all__ = ["StoreSlot", "one_line"]


def one_line(exc: BaseException) -> str:
    """An error as the single line the table keeps, with every key known here masked."""
    text = redact(" ".join(str(exc).split()), known_secrets()) or type(exc).__name__
    return text[:500]


class StoreSlot:
    """The store the session writes to, opened lazily (importing the store and pandas
    takes ~0.5 s: not at ``import workbench``) and reopened when its target changes."""

    def __init__(self) -> None:
        # As configured (a URL held masked); None: the environment's or the default.
        self.target: str | StoreURL | None = None
        self._store: AnyStore | None = None
        self._key: str | StoreURL | None = None  # the target the open store was opened for
        self._lock = threading.RLock()

    def retarget(self, target: str | StoreURL) -> None:
        self.close()
        self.target = target

    @property
    def configured(self) -> str | StoreURL:
        """The store as configured: a SQLite file path or a ``postgresql://`` URL (which
        may hold a password: show :attr:`where` instead)."""
        return configured_target(self.target)[0]

    @property
    def path(self) -> Path:
        """The SQLite file of the store; for a PostgreSQL store, the file in the working
        folder that rows go to when the server refuses them."""
        target = self.configured
        if is_postgres_url(target) or not isinstance(target, str):
            return Path.cwd() / "workbench-store.db"
        return Path(target).absolute()

    @property
    def where(self) -> Path | str:
        """The store as it may be shown: the file, or the URL with its password masked."""
        # deferred: at the top, import workbench would load numpy, pandas, pyarrow
        from workbench.store import store_label

        target = self.configured
        return store_label(target) if is_postgres_url(target) else self.path

    @property
    def store(self) -> AnyStore:
        with self._lock:
            target, password_env = configured_target(self.target)
            key = target if not isinstance(target, str) else str(Path(target).absolute())
            if self._store is None or self._key != key:
                # deferred: at the top, import workbench would load numpy, pandas, pyarrow
                from workbench.store import open_store

                if self._store is not None:
                    self._store.close()
                    self._store = None
                self._store = open_store(key, password_env=password_env)
                self._key = key
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def save(
        self, record: RunRecord, *, extra: Mapping[str, Any] | None = None, warn: bool = True
    ) -> UnsavedRun | None:
        """Append ``record``; when the table refuses it, keep it in a file beside the store
        (with ``extra``, e.g. vectors) and warn, so the caller still gets the answer.

        Returns None when the row is in the store. ``warn=False`` leaves saying so to
        the caller (a sweep stops with one line instead of a warning per row).
        """
        try:
            self.store.append(record)
        except Exception as exc:  # whatever refused the row (disk, schema...), keep it
            from workbench.store.unsaved import keep

            unsaved = keep(record, self.path, one_line(exc), extra, shown=self.where)
            if warn:
                warnings.warn(unsaved.message(), UnsavedRunWarning, stacklevel=4)
            return unsaved
        return None
