"""The store's ``datasets`` table (migration m006_datasets), the same on both backends.

A mixin of SQLiteStore and PostgresStore: it speaks only through the store's SQL surface
(``select_rows``, ``execute_many``), with statements built in the store's ``dialect``
(its own placeholders and words), nothing rewritten after.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.store.dialect import Dialect
from workbench.store.rows import iso_utc

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DatasetTables", "insert_dataset_sql"]


def insert_dataset_sql(dialect: Dialect) -> str:
    """Insert a dataset version; one already there keeps its rows, takes the newer time."""
    return (
        "INSERT INTO datasets (name, version, expected, items, stored_at)"
        f" VALUES ({dialect.marks(5)}) ON CONFLICT (name, version) DO UPDATE"
        f" SET stored_at = {dialect.greatest}(datasets.stored_at, excluded.stored_at)"
    )


class DatasetTables:
    """Named, versioned datasets kept in the store."""

    dialect: Dialect

    def select_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # the store's

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        raise NotImplementedError  # the store's

    def put_dataset(self, name: str, version: str, expected: str | None, items: str) -> None:
        """Keep one version of a named dataset (rows as JSON); storing it again only
        makes it the latest."""
        now = iso_utc(datetime.now(timezone.utc))
        self.put_dataset_rows([(name, version, expected, items, now)])

    def put_dataset_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert ``datasets`` rows (name, version, expected, items, stored_at); a version
        already there keeps its rows and takes the newer stored_at. Returns rows written."""
        return self.execute_many(insert_dataset_sql(self.dialect), rows)

    def get_dataset(
        self, name: str, version: str | None = None
    ) -> tuple[str, str | None, str] | None:
        """(version, expected column, rows JSON) of dataset ``name``: the latest stored
        version, or ``version``; None when there is none."""
        p = self.dialect.mark
        sql = f"SELECT version, expected, items FROM datasets WHERE name = {p}"
        params: list[Any] = [name]
        if version is not None:
            sql += f" AND version = {p}"
            params.append(version)
        order = f" ORDER BY stored_at DESC, {self.dialect.row_order} DESC LIMIT 1"
        rows = self.select_rows(sql + order, params)
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def dataset_rows(self, keys: Iterable[tuple[str, str]] | None = None) -> list[tuple[Any, ...]]:
        """Raw ``datasets`` rows (name, version, expected, items, stored_at), all or those
        whose (name, version) is in ``keys``; for exports."""
        rows = self.select_rows(
            "SELECT name, version, expected, items, stored_at FROM datasets"
            f" ORDER BY {self.dialect.row_order}"
        )
        rows = [tuple(row) for row in rows]
        if keys is None:
            return rows
        wanted = set(keys)
        return [row for row in rows if (row[0], row[1]) in wanted]

    def datasets(self) -> pd.DataFrame:
        """The stored datasets, newest first: name, version, rows, expected, stored_at."""
        rows = self.select_rows(
            f"SELECT name, version, {self.dialect.json_array_length('items')}, expected,"
            f" stored_at FROM datasets ORDER BY stored_at DESC, {self.dialect.row_order} DESC"
        )
        import pandas as pd  # pandas only where a frame is built: keeps opening a store light

        columns = ["name", "version", "rows", "expected", "stored_at"]
        frame = pd.DataFrame([tuple(row) for row in rows], columns=columns)
        frame["rows"] = frame["rows"].astype("int64")
        frame["stored_at"] = pd.to_datetime(frame["stored_at"], utc=True, format="ISO8601")
        return frame

    def _export_datasets(self, target: Path, experiment: str | None) -> None:
        # pandas (runfiles' readers), only when exporting: keeps opening a store light
        from workbench.store.runfiles import datasets_file, write_datasets

        # Beside the runs file, so wb.dataset(name) works in the store that imports it.
        keys = None
        if experiment is not None:
            named = self.select_rows(
                "SELECT DISTINCT dataset, dataset_version FROM runs"
                f" WHERE experiment = {self.dialect.mark} AND dataset IS NOT NULL",
                [experiment],
            )
            keys = {(name, version) for name, version in named}
        rows = self.dataset_rows(keys)
        sidecar = datasets_file(target)
        if rows:
            write_datasets(rows, sidecar)
        else:
            sidecar.unlink(missing_ok=True)  # a stale one would import other datasets
