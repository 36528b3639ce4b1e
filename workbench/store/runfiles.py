"""Runs in files: the export formats (.parquet, .csv, .jsonl) and the datasets file beside
an export, each read back as it was written (:func:`write_runs`, :func:`read_runs`).

A CSV is written for spreadsheets: a text cell that a spreadsheet would run as a formula
is neutralised (see :func:`_csv_text`), unless the caller asks for the cells raw.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.record import COLUMNS
from workbench.store.frames import (
    COLUMN_KINDS,
    EXPORT_SUFFIXES,
    NULLABLE,
    ColumnKind,
    JSONLineError,
    frame_to_rows,
    iso_utc,
    json_lines,
    normalised_frame,
)

__all__ = [
    "EXPORT_SUFFIXES",
    "write_runs",
    "read_runs",
    "DATASET_FIELDS",
    "datasets_file",
    "write_datasets",
    "read_datasets",
]

# ---------------------------------------------------------------- files


def write_runs(frame: pd.DataFrame, path: Path, *, keep_formulas: bool = False) -> None:
    """Write a runs frame to ``path``; the format follows the suffix. In a CSV, text that a
    spreadsheet would run as a formula is neutralised unless ``keep_formulas``."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        _write_csv(frame, path, neutralise=not keep_formulas)
    elif suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as out:
            for row in frame_to_rows(frame):
                out.write(json.dumps(dict(_json_items(row)), ensure_ascii=False))
                out.write("\n")
    else:
        raise ValueError(f"unknown suffix {suffix!r}")


def _json_items(row: Sequence[Any]) -> Iterator[tuple[str, Any]]:
    for name, value in zip(COLUMNS, row, strict=True):
        yield name, bool(value) if COLUMN_KINDS[name] == "bool" else value


def read_runs(path: Path) -> pd.DataFrame:
    """Read a file written by :func:`write_runs` (or by hand) into a typed runs frame."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa  # deferred: keeps import workbench light (pyarrow ~0.2 s)
        import pyarrow.parquet as pq  # deferred: keeps import workbench light (~0.2 s)

        # Int64 for whole-number columns, as written: through float64 (pandas' default
        # for a column with nulls) a seed of 2**63 - 1 would come back rounded.
        frame = pq.read_table(path).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    elif suffix == ".csv":
        frame = _without_neutralising_quotes(_read_csv(path))
    elif suffix == ".jsonl":
        frame = _read_jsonl(path)
    else:
        raise ValueError(f"unknown suffix {suffix!r}")
    return normalised_frame(frame, path.name)


# ---------------------------------------------------------------- CSV

# CSV has one spelling for an empty field, and the csv module (before Python 3.12's
# QUOTE_NOTNULL) and pandas read both "" and nothing as "". So the files spell the two
# apart themselves: a missing value is an empty field, an empty text is a quoted "".
# Spreadsheets and other readers see both as empty cells, as before.
_NEEDS_QUOTES = re.compile(r'[",\r\n]')
# Where a quoted empty field may be: a "" between field ends (a superset: the same text
# can sit inside a quoted field). Searched in ~0.2 s for 20,000 runs.
_MAYBE_QUOTED_EMPTY = re.compile(r'[,\r\n]""(?:[,\r\n]|\Z)')
# One field: quoted (doubled quotes inside) or bare, then what ends it.
# A quote that does not close the field ("ab"c) falls back to a bare field, read as it is.
_CSV_FIELD = re.compile(r'(?:(")((?:[^"]|"")*)"|([^,\r\n]*))(,|\r\n|\n|\r|\Z)')


# OWASP, "CSV Injection": "Ensure that no cells begin with any of the following
# characters: Equals to (=), Plus (+), Minus (-), At (@), Tab (0x09), Carriage return
# (0x0D)" and "Prepend each cell field with a single quote". A model's output or a prompt
# is text anyone may have written; opened in a spreadsheet it must stay text. A text that
# already starts with quotes before one of those characters gets one more, so reading the
# file back drops exactly one and every text returns as it was.
_FORMULA_START = re.compile(r"'*[=+\-@\t\r]")
_NEUTRALISED = re.compile(r"^'(?='*[=+\-@\t\r])")


def _write_csv(frame: pd.DataFrame, path: Path, *, neutralise: bool) -> None:
    kinds = [COLUMN_KINDS[name] for name in COLUMNS]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(COLUMNS) + "\n")
        for row in frame_to_rows(frame):
            out.write(
                ",".join(
                    _csv_field(kind, value, neutralise)
                    for kind, value in zip(kinds, row, strict=True)
                )
            )
            out.write("\n")


def _csv_field(kind: ColumnKind, value: Any, neutralise: bool = False) -> str:
    if value is None:
        return ""
    if kind == "bool":
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    text = str(value)
    if neutralise and kind == "text" and _FORMULA_START.match(text):
        return '"\'' + text.replace('"', '""') + '"'
    if text == "" or _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _without_neutralising_quotes(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns with the quote :func:`_write_csv` put before a formula-like text
    dropped (one quote, only there): the file reads back as the runs it was written from."""
    for name in frame.columns:
        if COLUMN_KINDS.get(name) == "text":
            with contextlib.suppress(AttributeError):  # a column without any text
                frame[name] = frame[name].str.replace(_NEUTRALISED, "", regex=True)
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    # -sig: a spreadsheet's byte-order mark; newline="": line ends inside quotes are text.
    with path.open(encoding="utf-8-sig", newline="") as file:
        text = file.read()
    if not _may_hold_quoted_empty(text):
        # Every empty field is then a missing value, which pandas' C parser reads ~2.5x
        # faster than the scan below (20,000 runs: 0.8 s against 2 s here).
        return _read_csv_without_quoted_empties(path)
    rows = [row for row in _csv_rows(text) if row != [None]]  # blank lines skipped
    if not rows:
        raise ValueError("the file is empty")
    header = [name or "" for name in rows[0]]
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"row {number} has {len(row)} fields, the header {len(header)}")
    columns = zip(*rows[1:], strict=True) if len(rows) > 1 else ((),) * len(header)
    return pd.DataFrame(
        {
            name: pd.Series(_csv_column(name, values), dtype=object)
            for name, values in zip(header, columns, strict=True)
        }
    )


def _read_csv_without_quoted_empties(path: Path) -> pd.DataFrame:
    # The file again, not the text already read: pandas reads a file ~0.2 s faster
    # (20,000 runs) than a StringIO, which copies the text once more first.
    header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
    dtypes = {name: _CSV_DTYPES[COLUMN_KINDS[name]] for name in COLUMNS if name in header}
    return pd.read_csv(
        path,
        encoding="utf-8-sig",
        dtype=dtypes,
        # Only an empty field is missing, and only in a column that may be null: a
        # prompt reading "NA" or "null" stays text, and a required text reads as "".
        keep_default_na=False,
        na_values={name: [""] for name in COLUMNS if name in header and NULLABLE[name]},
        **_ROUND_TRIP_FLOATS,
    )


# pandas 3 parses floats exactly by default (and deprecates the switch); pandas 2's default
# parser can be one unit in the last place off, which would change a cost or a knob.
_ROUND_TRIP_FLOATS: dict[str, Any] = (
    {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
)


_CSV_DTYPES: dict[ColumnKind, Any] = {
    "text": object,
    "int": "Int64",
    "float": "float64",
    "bool": object,  # parsed by parse_bool: pandas' own parser would also take "yes"
    "datetime": object,
}


def _may_hold_quoted_empty(text: str) -> bool:
    return text.startswith('""') or _MAYBE_QUOTED_EMPTY.search(text) is not None


def _csv_rows(text: str) -> list[list[str | None]]:
    """Records of ``text`` as fields: str, or None for an empty unquoted field."""
    rows: list[list[str | None]] = []
    row: list[str | None] = []
    after_field = False  # the last field ended with a comma: one more field follows
    # findall finds the fields in C; it also reports an empty match at the very end, which
    # is a field only after a trailing comma.
    for opening, quoted, bare, stop in _CSV_FIELD.findall(text):
        if not (opening or bare or stop or after_field):
            break  # the empty match at the end of the text
        row.append(quoted.replace('""', '"') if opening else bare or None)
        after_field = stop == ","
        if not after_field:
            rows.append(row)
            row = []
    return rows


def _csv_column(name: str, values: Sequence[str | None]) -> list[Any]:
    kind = COLUMN_KINDS.get(name)
    if kind == "text" and not NULLABLE[name]:
        # A hand-made file may leave a required text empty: read it as "", as before.
        return ["" if value is None else value for value in values]
    try:
        if kind == "int":
            return [None if value is None else int(value) for value in values]
        if kind == "float":
            return [None if value is None else float(value) for value in values]
    except ValueError as exc:
        raise ValueError(f"{name} must hold numbers ({exc})") from None
    return list(values)  # text, bools (parsed with the frame) and times stay text here


def _read_jsonl(path: Path) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    for number, item in json_lines(path):
        if not isinstance(item, dict):
            raise ValueError(f"line {number} is not a JSON object")
        records.append(item)
    names = dict.fromkeys(name for item in records for name in item)
    # dtype=object: no inference, so a seed of 2**63-1 or a text "007" arrives intact.
    return pd.DataFrame(
        {name: pd.Series([item.get(name) for item in records], dtype=object) for name in names}
    )


# ---------------------------------------------------------------- datasets beside runs

DATASET_FIELDS: tuple[str, ...] = ("name", "version", "expected", "rows", "stored_at")


def datasets_file(path: Path) -> Path:
    """Where an export of runs to ``path`` keeps the datasets its runs came from."""
    return path.with_name(path.name + ".datasets.jsonl")


def write_datasets(rows: Sequence[tuple[Any, ...]], path: Path) -> None:
    """Write ``datasets`` table rows (items as JSON text) as JSON lines, rows readable."""
    with path.open("w", encoding="utf-8") as out:
        for name, version, expected, items, stored_at in rows:
            values = (name, version, expected, json.loads(items), stored_at)
            line = dict(zip(DATASET_FIELDS, values, strict=True))
            out.write(json.dumps(line, ensure_ascii=False))
            out.write("\n")


def read_datasets(path: Path) -> list[tuple[Any, ...]]:
    """``datasets`` table rows from a file written by :func:`write_datasets`."""
    rows: list[tuple[Any, ...]] = []
    try:
        for number, item in json_lines(path):
            missing = [f for f in DATASET_FIELDS if not isinstance(item, dict) or f not in item]
            if missing or not isinstance(item["rows"], list):
                raise ValueError(f"{path.name}, line {number} is not a dataset (name, rows, ...)")
            rows.append(
                (
                    item["name"],
                    item["version"],
                    item["expected"],
                    json.dumps(item["rows"], ensure_ascii=False),
                    iso_utc(item["stored_at"]),
                )
            )
    except JSONLineError as exc:
        raise ValueError(f"{path.name}, {exc}") from exc
    return rows


