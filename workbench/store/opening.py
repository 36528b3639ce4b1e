"""Which store a target means: ``open_store`` picks the backend, ``store_label`` shows it.

A ``postgresql://`` URL (text or :class:`~.target.StoreURL`) is the shared team store
(:mod:`.postgres`, imported only then: psycopg stays unloaded for a SQLite user); anything
else is a SQLite file (:mod:`.sqlite`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from workbench.store.sqlite import SQLiteStore
from workbench.store.target import StoreURL, as_target

if TYPE_CHECKING:
    from workbench.store.protocol import Store

__all__ = ["open_store", "store_label"]


def open_store(
    target: str | os.PathLike[str] | StoreURL, *, password_env: str | None = None
) -> Store:
    """The store at ``target``: a ``postgresql://`` URL (text or :class:`StoreURL`) or a
    SQLite file path."""
    held = as_target(target)  # the URL's password is never a variable of a later frame
    if isinstance(held, StoreURL):
        from workbench.store.postgres import (
            PostgresStore,  # psycopg and ADBC: only for a PostgreSQL user
        )

        return PostgresStore(held.with_password_env(password_env))
    return SQLiteStore(held)


def store_label(target: str | os.PathLike[str] | StoreURL) -> str:
    """``target`` as it may be shown: a URL with its password masked, or the path."""
    held = as_target(target)
    return held.masked if isinstance(held, StoreURL) else held
