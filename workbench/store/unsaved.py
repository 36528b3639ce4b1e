"""Runs the table refused (full disk, damaged file, a locked store...), kept in a file.

An answer that was paid for must reach the caller and survive: when appending its row
fails, the row goes to a JSON-lines file beside the store, in the export format (plus
why it was not saved), so ``wb.import_runs(path)`` brings it back once the store works.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.record import COLUMNS, RunRecord
from workbench.store.rows import iso_utc

__all__ = ["UnsavedRun", "UnsavedRunWarning", "fallback_paths", "keep"]


class UnsavedRunWarning(UserWarning):
    """A run's row could not be written to the store; the answer was returned anyway."""


@dataclass(frozen=True)
class UnsavedRun:
    """Why a row is not in the store, and the file that holds it instead (None: nowhere)."""

    store: Path | str  # the file, or the PostgreSQL URL with its password masked
    reason: str
    kept_in: Path | None
    run_id: str

    def message(self) -> str:
        where = (
            f"kept in {self.kept_in} (bring it back with wb.import_runs({str(self.kept_in)!r}) "
            "once the store can be written)"
            if self.kept_in is not None
            else "and it could not be kept in a file either"
        )
        # The run_id also makes each message distinct, so Python's "once per place"
        # warning filter does not hide the second run that was not saved.
        return (
            f"Run {self.run_id} could not be saved to {self.store} ({self.reason}); it is {where}"
        )


def fallback_paths(store: Path) -> list[Path]:
    """Where refused rows go, in order: beside the store, then the user's data folder
    (for when the store's own disk or folder is what refuses them)."""
    import platformdirs  # deferred: keeps import workbench light (platformdirs ~8 ms)

    return [
        store.with_name(f"{store.stem}.unsaved.jsonl"),
        platformdirs.user_data_path("workbench") / "unsaved-runs.jsonl",
    ]


def _json_row(record: RunRecord, store: Path | str, reason: str) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(record, name) for name in COLUMNS}
    row["created_at"] = iso_utc(record.created_at)
    row["unsaved_reason"] = reason
    row["unsaved_store"] = str(store)
    return row


def keep(
    record: RunRecord,
    store: Path,
    reason: str,
    extra: Mapping[str, Any] | None = None,
    *,
    shown: Path | str | None = None,
) -> UnsavedRun:
    """Append ``record`` (and ``extra``, such as embedding vectors) to the first fallback
    file that takes it. The record never holds an API key, so neither does the file.
    ``store`` is the file the fallback goes beside; ``shown`` how to name the store (a
    PostgreSQL URL, masked) when it is not that file."""
    shown = store if shown is None else shown
    row = {**_json_row(record, shown, reason), **(extra or {})}
    # ASCII escapes: a lone surrogate in a value cannot make the write fail; default=repr
    # keeps a value JSON has no type for (the row exists because a value was odd).
    line = json.dumps(row, default=repr) + "\n"
    for path in fallback_paths(store):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write(line)
        except OSError:
            continue
        return UnsavedRun(shown, reason, path, record.run_id)
    return UnsavedRun(shown, reason, None, record.run_id)
