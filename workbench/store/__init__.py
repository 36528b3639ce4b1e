"""The experiment table and the store's caches, on SQLite (the default) or PostgreSQL.

``open_store(target)`` picks the backend from the target: a ``postgresql://`` URL is the
shared team store (:class:`PostgresStore`, :mod:`.postgres`), anything else is a SQLite
file (:class:`SQLiteStore`, :mod:`.sqlite`). Both implement the :class:`Store` protocol
(:mod:`.protocol`): the same schema (:mod:`.schema`), the same named migrations and the
same methods, including those through which the scoring, review and batch packages keep
their tables on either backend (:mod:`.scores`, :mod:`.batches`); no SQL is run outside
this package.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from workbench.store.protocol import Store

if TYPE_CHECKING:
    from workbench.store.opening import open_store, store_label
    from workbench.store.postgres import PostgresStore
    from workbench.store.sqlite import SQLiteStore

__all__ = [
    "Store",
    "SQLiteStore",
    "PostgresStore",
    "AnyStore",
    "expand_json",
    "open_store",
    "store_label",
]

# The name stores had as a union of the two classes; the protocol says it now.
AnyStore = Store


# Everything but the protocol is imported on first use: the backends need pandas (~0.4 s
# to import), and importing any module of this package (``store.unsaved`` from the
# notebook's display, at ``import workbench``) runs this file first.
_LAZY = {
    "open_store": "workbench.store.opening",
    "store_label": "workbench.store.opening",
    "SQLiteStore": "workbench.store.sqlite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "expand_json":  # imported on first use: it needs pandas (~0.4 s to import)
        from workbench.store.frames import expand_json

        return expand_json
    if name == "PostgresStore":  # imported on first use: psycopg only for PostgreSQL users
        from workbench.store.postgres import PostgresStore

        return PostgresStore
    if name == "ExperimentStore":
        # The SQLite store's name before it said which backend it is.
        warnings.warn(
            "ExperimentStore is now SQLiteStore (workbench.store.SQLiteStore)",
            DeprecationWarning,
            stacklevel=2,
        )
        return __getattr__("SQLiteStore")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
