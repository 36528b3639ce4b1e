"""Runs as tables: SQLite values <-> typed pandas columns, and the export file formats.

The store hands rows to this module and gets a DataFrame with the documented dtypes back;
exports and imports go through the same conversions so a file reads back as it was written.
One run <-> one row is :mod:`.rows` (no pandas: what a sweep's calls need); its names are
also importable from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.record import COLUMNS
from workbench.store.rows import (
    COLUMN_KINDS,
    EXPORT_SUFFIXES,
    ISO_FORMAT,
    NULLABLE,
    ColumnKind,
    iso_utc,
    record_from_row,
    record_to_row,
)
from workbench.store.rows import DEFAULTS as _DEFAULTS

__all__ = [
    "ColumnKind",
    "COLUMN_KINDS",
    "TEXT_DTYPE",
    "EXPORT_SUFFIXES",
    "expand_json",
    "iso_utc",
    "record_from_row",
    "record_to_row",
    "runs_frame",
    "runs_frame_from_columns",
    "frame_to_rows",
    "normalised_frame",
    "parse_bool",
    "ISO_FORMAT",
    "NULLABLE",
    "JSONLineError",
    "json_lines",
]

_DATETIME_DTYPE = "datetime64[us, UTC]"
# Text in the dtype the installed pandas gives text by default: from pandas 3, "str"
# (Arrow-backed, NaN for a missing value); before, object. Converting Arrow text to
# Python objects took 1.98 s of a 5.89 s read of a million runs with pandas 3.
PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3
TEXT_DTYPE: Any = pd.StringDtype(na_value=np.nan) if PANDAS_3 else np.dtype(object)


# ---------------------------------------------------------------- columns <-> DataFrame


def _typed_column(name: str, values: Any) -> Any:
    """One column with the documented dtype, from a tuple of SQLite values or a Series."""
    kind = COLUMN_KINDS[name]
    if kind == "int":
        return pd.array(values, dtype="Int64")
    if kind == "float":
        if isinstance(values, pd.Series):
            return values.astype("float64").to_numpy()
        return np.array(values, dtype="float64")  # None becomes NaN
    if kind == "bool":
        if not isinstance(values, pd.Series) and None not in values:
            return np.array(values, dtype=bool)  # SQLite's 0/1, the common case
        series = pd.Series(values)
        if series.isna().any():
            raise ValueError(f"column {name!r} has empty values; it must be true or false")
        if series.dtype == object:
            series = series.map(parse_bool)
        return series.astype(bool).to_numpy()
    if kind == "datetime":
        stamps = pd.to_datetime(values, utc=True, format="ISO8601")
        # .array, not .to_numpy(): the latter turns tz-aware stamps into objects.
        return pd.Series(stamps, copy=False).astype(_DATETIME_DTYPE).array
    if isinstance(values, pd.Series):
        return _text_series(name, values)
    return _text_array(values)


def _text_array(values: Sequence[Any]) -> Any:
    """SQLite's text values (str or None) as a text column."""
    if PANDAS_3:
        try:
            import pyarrow as pa  # deferred: keeps the write path free of pyarrow (~0.2 s)
        except ImportError:  # pragma: no cover - pandas 3's str dtype needs no pyarrow
            pa = None
        if pa is not None:
            # Arrow makes the column from the strings in C: a 10,000-row query's 36 text
            # columns in ~17 ms instead of ~53 ms through pandas' own conversion (large_
            # string: what pandas' str holds, so no cast after). A value that is not text
            # (SQLite lets a number into any column) goes the slow way, which writes it
            # as its str.
            try:
                return pd.array(pa.array(values, pa.large_string()), dtype=TEXT_DTYPE)
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                pass
    return pd.array(list(values), dtype=TEXT_DTYPE)


def _text_series(name: str, values: pd.Series) -> Any:
    """A text column read from a file: anything but text (a number or an object in a
    JSON-lines file) is refused, not turned into its repr."""
    if values.dtype == object:
        present = values[values.notna()]
        wrong = present[~present.map(lambda value: isinstance(value, str)).astype(bool)]
        if len(wrong):
            raise TypeError(
                f"column {name!r} holds {type(wrong.iloc[0]).__name__} values; it holds text"
            )
    if not PANDAS_3:
        column = values.to_numpy(dtype=object, copy=True)
        column[pd.isna(column)] = None  # pandas 2: text columns hold str or None
        return pd.array(column, dtype=object)
    return values.astype(TEXT_DTYPE).array


def parse_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise ValueError(f"not a true/false value: {value!r}")
    return bool(value)


def runs_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    """A DataFrame with exactly ``COLUMNS`` and their documented dtypes.

    ``columns`` maps names to sequences of SQLite values (or Series); a name that is not
    there becomes a column of the field's default.
    """
    length = len(next(iter(columns.values()))) if columns else 0
    data = {}
    for name in COLUMNS:
        values = columns.get(name)
        if values is None:
            values = [_DEFAULTS.get(name)] * length
        data[name] = _typed_column(name, values)
    return pd.DataFrame(data, columns=list(COLUMNS), copy=False)


def runs_frame_from_columns(columns: Mapping[str, Any]) -> pd.DataFrame:
    """A DataFrame from arrays that already have their documented dtypes, in ``COLUMNS``
    order, without another pass."""
    return pd.DataFrame(dict(columns), columns=list(COLUMNS), copy=False)


def normalised_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """A frame read from a file, checked and brought to the documented dtypes."""
    missing = [
        name
        for name in COLUMNS
        if name not in frame.columns and not NULLABLE[name] and name not in _DEFAULTS
    ]
    if missing:
        raise ValueError(f"{source} has no column {', '.join(missing)}")
    present = {name: frame[name] for name in COLUMNS if name in frame.columns}
    try:
        typed = runs_frame(present)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: {exc}") from exc
    # Checked here rather than left to SQLite's NOT NULL so the message names the column.
    for name in COLUMNS:
        if not NULLABLE[name]:
            empty = int(typed[name].isna().sum())
            if empty:
                raise ValueError(f"{source}: {empty} row(s) have no {name}")
    return typed


def frame_to_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """SQLite values of a frame with the documented dtypes, one tuple per row."""
    columns: list[list[Any]] = []
    for name in COLUMNS:
        kind = COLUMN_KINDS[name]
        series = frame[name]
        if kind == "int":
            # tolist() of an Int64 column gives Python ints (bindable) and pd.NA.
            columns.append([None if v is pd.NA else v for v in series.tolist()])
        elif kind == "float":
            columns.append([None if v != v else v for v in series.tolist()])
        elif kind == "bool":
            columns.append(series.astype("int64").tolist())
        elif kind == "datetime":
            columns.append(series.dt.strftime(ISO_FORMAT).tolist())
        else:
            # Missing text is NaN in pandas' str dtype; the store's NULL is None.
            values = series.tolist()
            if series.hasnans:
                values = [value if isinstance(value, str) else None for value in values]
            columns.append(values)
    return list(zip(*columns, strict=True))


# ---------------------------------------------------------------- JSON lines


class JSONLineError(ValueError):
    """A line of a JSON-lines file that is not JSON: its number and the parser's reason."""

    def __init__(self, number: int, reason: str) -> None:
        super().__init__(f"line {number} is not JSON ({reason})")
        self.number, self.reason = number, reason


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """Each non-blank line of a JSON-lines file, parsed, with its line number (from 1);
    a line that is not JSON raises :class:`JSONLineError`."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise JSONLineError(number, exc.msg) from exc
            yield number, item



# ---------------------------------------------------------------- JSON columns


def expand_json(df: pd.DataFrame, column: str = "params") -> pd.DataFrame:
    """``df`` with the JSON in ``column`` spread into ``column.key`` columns, joined.

    Nested objects flatten with dots and lists by position (``messages.0.content``), so
    ``expand_json(runs, "params")`` gives ``params.temperature`` and friends. Empty cells
    give missing values; the JSON column itself is kept.
    """
    parsed = [
        _parsed(value, column, index) for index, value in zip(df.index, df[column], strict=True)
    ]
    if not any(parsed):
        return df.copy()
    flat = pd.json_normalize(parsed, sep=".")
    flat.columns = [f"{column}.{name}" for name in flat.columns]
    # Side by side by position: a join on the index would multiply repeated labels.
    joined = pd.concat([df.reset_index(drop=True), flat], axis=1)
    joined.index = df.index
    return joined


def _parsed(value: Any, column: str, index: Any) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return {}
    try:
        data = json.loads(value) if isinstance(value, (str, bytes)) else value
    except json.JSONDecodeError as exc:
        raise ValueError(f"{column} of row {index!r} is not JSON ({exc.msg})") from exc
    data = _lists_as_dicts(data)
    return data if isinstance(data, dict) else {"value": data}


def _lists_as_dicts(data: Any) -> Any:
    # json_normalize flattens nested dicts only; lists become dicts keyed by position.
    if isinstance(data, list):
        return {str(i): _lists_as_dicts(item) for i, item in enumerate(data)}
    if isinstance(data, dict):
        return {key: _lists_as_dicts(item) for key, item in data.items()}
    return data
