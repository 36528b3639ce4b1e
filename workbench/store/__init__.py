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
from .target import StoreURL, is_postgres_url

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
    target: str | os.PathLike[str], *, password_env: str | None = None
) -> ExperimentStore | PostgresStore:
    """The store at ``target``: a ``postgresql://`` URL or a SQLite file path."""
    if is_postgres_url(target):
        from .postgres import PostgresStore

        return PostgresStore(str(target), password_env=password_env)
    return ExperimentStore(target)


def store_label(target: str | os.PathLike[str]) -> str:
    """``target`` as it may be shown: a URL with its password masked, or the path."""
    if is_postgres_url(target):
        return StoreURL.parse(str(target)).masked
    return os.fspath(target)

