"""Runs as SQLite rows: a RunRecord <-> the values of its row, and times as stored.

Kept apart from :mod:`.frames` (DataFrames) and free of pandas and numpy: opening a store,
appending a run, the replay lookup and claims go through here, so a sweep's first request
does not wait ~0.9 s for pandas to import (issue 21), nor does ``import workbench``.
"""

from __future__ import annotations

import operator
import types
import typing
from collections.abc import Sequence
from dataclasses import MISSING, fields
from datetime import datetime, timezone
from typing import Any, Literal, Union

from workbench.core.record import COLUMNS, RunRecord

__all__ = [
    "ColumnKind",
    "COLUMN_KINDS",
    "DEFAULTS",
    "EXPORT_SUFFIXES",
    "ISO_FORMAT",
    "NULLABLE",
    "iso_utc",
    "record_from_row",
    "record_to_row",
]

ColumnKind = Literal["text", "int", "float", "bool", "datetime"]

EXPORT_SUFFIXES: tuple[str, ...] = (".parquet", ".csv", ".jsonl")


def _kind_of(hint: Any) -> tuple[ColumnKind, bool]:
    """The storage kind of a RunRecord field and whether it may be None."""
    args: tuple[Any, ...] = (hint,)
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = typing.get_args(hint)
    nullable = type(None) in args
    base = next(a for a in args if a is not type(None))
    # bool before int: bool is a subclass of int but is stored and shown as a flag.
    kind: ColumnKind
    if base is bool:
        kind = "bool"
    elif base is int:
        kind = "int"
    elif base is float:
        kind = "float"
    elif base is datetime:
        kind = "datetime"
    else:  # str and the Literal aliases (Kind, Status)
        kind = "text"
    return kind, nullable


# Derived from RunRecord's annotations, so a field added there gets its dtype here without
# a second list to keep in sync (its column still needs a migration; a test checks that).
_HINTS = typing.get_type_hints(RunRecord)
COLUMN_KINDS: dict[str, ColumnKind] = {name: _kind_of(_HINTS[name])[0] for name in COLUMNS}
NULLABLE: dict[str, bool] = {name: _kind_of(_HINTS[name])[1] for name in COLUMNS}
DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(RunRecord) if f.default is not MISSING
}

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def iso_utc(value: datetime | str) -> str:
    """``value`` as stored: ISO-8601 in UTC with microseconds, so text order is time order.

    A naive datetime (or a string without an offset) is taken to be UTC already, the same
    way pandas and SQLite read one.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return _iso_utc_by_pandas(value)
        value = parsed
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime(ISO_FORMAT)


def _iso_utc_by_pandas(value: str) -> str:
    """A time ISO-8601 does not spell (``"2026/01/31"``) read as pandas reads it."""
    import pandas as pd  # only for text ISO-8601 does not parse: rows stay pandas-free

    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return str(stamp.strftime(ISO_FORMAT))


# ---------------------------------------------------------------- one record <-> one row


def _sql_scalar(kind: ColumnKind, value: Any) -> Any:
    if value is None:
        return None
    if kind == "text":
        if not isinstance(value, str):
            # A dict in params would otherwise land as its Python repr, not as JSON.
            raise TypeError(f"expected str, got {type(value).__name__}")
        return value
    if kind == "bool":
        # numpy's bool_ equals 0 or 1, so it passes without numpy imported here.
        if not isinstance(value, bool) and value not in (0, 1):
            raise TypeError(f"expected bool, got {type(value).__name__}")
        return 1 if value else 0
    if kind == "int":
        # operator.index accepts numpy integers (sqlite3 cannot bind them) but refuses
        # floats, so a 0.7 never lands silently as 0 in max_tokens or seed.
        return operator.index(value)
    if kind == "float":
        number = float(value)
        return None if number != number else number  # NaN is "unknown", i.e. NULL
    return iso_utc(value)


def record_to_row(record: RunRecord) -> tuple[Any, ...]:
    """The SQLite values of ``record`` in ``COLUMNS`` order."""
    row = []
    for name in COLUMNS:
        value = getattr(record, name)
        try:
            row.append(_sql_scalar(COLUMN_KINDS[name], value))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"RunRecord.{name} cannot be stored: {value!r} ({exc})") from exc
    return tuple(row)


def record_from_row(row: Sequence[Any]) -> RunRecord:
    """A RunRecord from SQLite values in ``COLUMNS`` order (the inverse of record_to_row)."""
    values: dict[str, Any] = {}
    for name, value in zip(COLUMNS, row, strict=True):
        kind = COLUMN_KINDS[name]
        if value is not None and kind == "bool":
            value = bool(value)
        elif value is not None and kind == "datetime":
            value = datetime.fromisoformat(value).astimezone(timezone.utc)
        values[name] = value
    return RunRecord(**values)
