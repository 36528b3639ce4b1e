"""The experiment table and the store's caches, on SQLite (the default) or PostgreSQL.

``open_store(target)`` picks the backend from the target: a ``postgresql://`` URL is the
shared team store (:mod:`.postgres`), anything else is a SQLite file (:mod:`.sqlite`).
Both have the same schema, the same named migrations and the same methods, including the
small SQL surface (``select_rows``, ``execute``, ``execute_many``, ``dialect``) through
which the scoring, review and batch packages keep their own tables on either backend.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

from ..frames import expand_json
from .sqlite import ExperimentStore
from .target import StoreURL, as_target

if TYPE_CHECKING:
    from .postgres import PostgresStore

__all__ = [
    "ExperimentStore",
    "AnyStore",
    "expand_json",
    "open_store",
    "store_label",
]

AnyStore = Union[ExperimentStore, "PostgresStore"]


def open_store(
    target: str | os.PathLike[str] | StoreURL, *, password_env: str | None = None
) -> ExperimentStore | PostgresStore:
    """The store at ``target``: a ``postgresql://`` URL (text or :class:`StoreURL`) or a
    SQLite file path."""
    held = as_target(target)  # the URL's password is never a variable of a later frame
    if isinstance(held, StoreURL):
        from .postgres import PostgresStore

        return PostgresStore(held.with_password_env(password_env))
    return ExperimentStore(held)


def store_label(target: str | os.PathLike[str] | StoreURL) -> str:
    """``target`` as it may be shown: a URL with its password masked, or the path."""
    held = as_target(target)
    return held.masked if isinstance(held, StoreURL) else held
