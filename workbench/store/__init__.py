"""The experiment table and the store's caches, on SQLite (the default) or PostgreSQL.

``open_store(target)`` picks the backend from the target: a ``postgresql://`` URL is the
shared team store (:mod:`.postgres`), anything else is a SQLite file (:mod:`.sqlite`).
Both have the same schema, the same named migrations and the same methods.
"""

from __future__ import annotations

from ..frames import expand_json
from .sqlite import ExperimentStore

__all__ = ["ExperimentStore", "expand_json"]
