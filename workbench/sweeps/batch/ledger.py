"""The store's ``batches`` table: every batch a sweep submitted, written the moment the
API created it, so that a restarted kernel (or another process) finds it and collects it.

Holds the provider's *name*, never its URL's credentials or a key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from workbench.store.rows import iso_utc
from workbench.sweeps.batch.api import TERMINAL, BatchInfo

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["BatchRow", "Ledger"]


@dataclass(frozen=True)
class BatchRow:
    """One row of the ``batches`` table."""

    batch_id: str
    provider: str
    sweep_id: str
    experiment: str
    input_file_id: str
    status: str
    created_at: str
    custom_ids: str  # JSON list
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int | None = None
    completed: int | None = None
    failed: int | None = None
    ended_at: str | None = None
    collected_at: str | None = None
    message: str | None = None

    @property
    def ids(self) -> list[str]:
        ids: list[str] = json.loads(self.custom_ids)
        return ids

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def open(self) -> bool:
        """Not yet collected: its answers are not all rows yet."""
        return self.collected_at is None


# The store returns rows in BATCH_COLUMNS order (tests/test_store_sql_boundary.py checks
# that it is this order).
_COLUMNS = tuple(f.name for f in fields(BatchRow))


def now_iso() -> str:
    return iso_utc(datetime.now(timezone.utc))


class Ledger:
    """The batches of one store (SQLite or PostgreSQL), through its batch methods."""

    def __init__(self, store: AnyStore) -> None:
        self.store = store

    def add(self, row: BatchRow) -> None:
        self.store.put_batch({name: getattr(row, name) for name in _COLUMNS})

    def update(self, info: BatchInfo) -> None:
        """What the API last said of a batch."""
        ended = None if info.ended_at is None else iso_utc(info.ended_at)
        self.store.update_batch(
            info.id,
            {
                "status": info.status,
                "output_file_id": info.output_file_id,
                "error_file_id": info.error_file_id,
                "total": info.total,
                "completed": info.completed,
                "failed": info.failed,
                "ended_at": ended,
                "message": info.message,
            },
        )

    def mark_collected(self, batch_id: str) -> None:
        self.store.update_batch(batch_id, {"collected_at": now_iso()})

    def get(self, batch_id: str) -> BatchRow | None:
        """The batch's row as the store holds it now (another kernel may have changed it)."""
        rows = self.store.batch_rows(batch_id=batch_id)
        return BatchRow(*rows[0]) if rows else None

    def for_sweep(self, sweep_id: str) -> list[BatchRow]:
        return [BatchRow(*row) for row in self.store.batch_rows(sweep_id=sweep_id)]

    def frame(self, sweep_id: str) -> pd.DataFrame:
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        rows = self.for_sweep(sweep_id)
        data: dict[str, Any] = {
            name: [getattr(r, name) for r in rows] for name in _COLUMNS if name != "custom_ids"
        }
        data["requests"] = [len(r.ids) for r in rows]
        return pd.DataFrame(data)
