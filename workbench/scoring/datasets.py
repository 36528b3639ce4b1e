"""Datasets: test cases for a sweep, each a row of template variables with an expected answer.

A dataset comes inline (a DataFrame, a list of dicts, a .csv/.jsonl/.parquet file) or by
name from the store (``wb.dataset("capitals", data)``), versioned by content: the same rows
are the same version, changed rows a new one. Each row has an ``item_id``, a hash of its
content, so runs of the same test case pair up across sweeps and datasets.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError, StoreError
from workbench.core.gcpause import gc_paused
from workbench.core.templates import variables_of

if TYPE_CHECKING:
    import pandas as pd

    from workbench.core.record import RunRecord
    from workbench.store import AnyStore

__all__ = [
    "Dataset",
    "answer_text",
    "as_dataset",
    "case_variables",
    "load_dataset",
    "mark_run",
    "save_dataset",
    "template_columns",
]

FILE_SUFFIXES = (".csv", ".jsonl", ".parquet")
# 64 bits of sha256: no two test cases of one person's datasets will ever share it, and
# the ids stay short enough to read in a table.
_HASH_CHARS = 16
# The column that holds the reference answer when expected= is not given.
DEFAULT_EXPECTED = "expected"


class Dataset:
    """Test cases in order: ``rows`` (dicts of column -> value), the ``expected`` column's
    name (or None), a ``name`` when stored, and a ``version`` hashed from the content."""

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        expected: str | None = None,
        name: str | None = None,
        source: str = "the dataset",
    ) -> None:
        with gc_paused():  # a million rows' dicts: see workbench.core.gcpause
            self._read(rows, expected, name, source)

    def _read(
        self, rows: Sequence[Mapping[str, Any]], expected: str | None, name: str | None,
        source: str,
    ) -> None:
        self.name = name
        self.rows: list[dict[str, Any]] = [_plain_row(row, i, source) for i, row in enumerate(rows)]
        if not self.rows:
            raise InvalidInputError(f"{source} has no rows: give at least one test case")
        columns: dict[str, None] = {}
        for row in self.rows:
            columns.update(dict.fromkeys(row))
        self.columns: list[str] = list(columns)
        if expected is not None and expected not in columns:
            raise InvalidInputError(
                f"expected={expected!r} is not a column of {source} (its columns: "
                f"{', '.join(self.columns)}): name the column that holds the answers"
            )
        self.expected = expected
        self.item_ids: list[str] = [_digest(_canonical_row(row)) for row in self.rows]
        first: dict[str, int] = {}
        for index, item in enumerate(self.item_ids):
            if item in first:
                raise InvalidInputError(
                    f"rows {first[item]} and {index} of {source} are the same test case: "
                    "drop one of them"
                )
            first[item] = index
        self.version = _digest(_canonical([expected, self.item_ids]))
        self._by_item = dict(zip(self.item_ids, self.rows, strict=True))

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        label = repr(self.name) if self.name else "unnamed"
        answer = f", expected={self.expected!r}" if self.expected else ""
        return (
            f"<Dataset {label} version {self.version}: {len(self)} rows, "
            f"columns {', '.join(self.columns)}{answer}>"
        )

    def expected_of(self, item_id: str) -> Any:
        """The reference answer of one test case (its original value), or None."""
        if self.expected is None or item_id not in self._by_item:
            return None
        return self._by_item[item_id].get(self.expected)

    def expected_text(self, index: int) -> str | None:
        """Row ``index``'s reference answer as a run stores it: text as is, else JSON."""
        if self.expected is None:
            return None
        return answer_text(self.rows[index].get(self.expected))

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame, with an ``item_id`` column first."""
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        frame = pd.DataFrame(self.rows, columns=self.columns)
        frame.insert(0, "item_id", self.item_ids)
        return frame

    def items_json(self) -> str:
        """The rows as stored in the ``datasets`` table."""
        return json.dumps(self.rows, ensure_ascii=False)


def answer_text(value: Any) -> str | None:
    """A reference answer as a run stores it: text as is, any other value as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------------- inputs


def as_dataset(data: Any, *, expected: str | None = None, name: str | None = None) -> Dataset:
    """Test cases from a Dataset, a DataFrame, a list of dicts or a .csv/.jsonl/.parquet
    path. ``expected`` names the answer column; by default a column called ``expected``."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    if isinstance(data, Dataset):
        if expected is not None and expected != data.expected:
            label = repr(data.name) if data.name else "this dataset"
            raise InvalidInputError(
                f"{label} already names its expected column ({data.expected!r}): drop "
                f"expected=..., or store it again: wb.dataset(name, rows, expected={expected!r})"
            )
        return data
    source = "the dataset"
    if isinstance(data, (str, os.PathLike)):
        source = str(data)
        rows = _read_file(Path(data))
    elif isinstance(data, pd.DataFrame):
        source = "the DataFrame"
        rows = _frame_rows(data, source)
    elif isinstance(data, Sequence) and not isinstance(data, bytes):
        source = "the list of test cases"
        rows = list(data)
    else:
        raise InvalidInputError(
            f"vars= takes a dict of value lists, a DataFrame, a list of dicts, a .csv/.jsonl/"
            f".parquet path or wb.dataset(...), not {type(data).__name__}"
        )
    if expected is None and any(DEFAULT_EXPECTED in row for row in rows):
        expected = DEFAULT_EXPECTED
    return Dataset(rows, expected=expected, name=name, source=source)


def _read_file(path: Path) -> list[dict[str, Any]]:
    with gc_paused():  # a million rows' dicts: see workbench.core.gcpause
        return _read_rows(path)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise InvalidInputError(
            f"cannot read test cases from {path}: the name must end in {', '.join(FILE_SUFFIXES)}"
        )
    try:
        if suffix == ".csv":
            return _csv_rows(path)
        if suffix == ".parquet":
            return _frame_rows(pd.read_parquet(path), str(path))
        return _jsonl_rows(path)
    except InvalidInputError:
        raise
    except ImportError as exc:
        raise InvalidInputError(f"reading {path} needs pyarrow: pip install pyarrow") from exc
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read test cases from {path} ({exc.strerror or exc}): check the path"
        ) from exc
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InvalidInputError(
            f"cannot read test cases from {path} ({reason}): write it as {suffix[1:]}"
        ) from exc


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    """Every record of a CSV file, each cell as text as written ("007" stays "007", an
    empty cell is ""), and each record exactly as wide as the header.

    Read with the csv module, not pandas: pandas took a row with one field more than the
    header as an index plus shifted values ("Paris,France,EXTRA" under "city,expected"
    became city France), filled a short row with empty values, and renamed a repeated
    column "a.1"; each sent wrong prompts without a word.
    """
    rows: list[dict[str, Any]] = []
    header: list[str] | None = None
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, strict=True)
        next_line = 1  # where the next record starts (a quoted value may span lines)
        try:
            for record in reader:
                line, next_line = next_line, reader.line_num + 1
                if not record:
                    continue  # a blank line
                if header is None:
                    header = _csv_header(record, path, line)
                elif len(record) == len(header):
                    rows.append(dict(zip(header, record, strict=True)))
                else:
                    raise InvalidInputError(_csv_width_problem(path, line, record, header))
        except csv.Error as exc:
            raise InvalidInputError(
                f"{path}, line {reader.line_num}: {exc}: put a value holding quotes, commas "
                'or line breaks in double quotes, with its own quotes doubled ("say ""hi""")'
            ) from None
    return rows


def _csv_header(record: list[str], path: Path, line: int) -> list[str]:
    for position, name in enumerate(record, 1):
        if not name.strip():
            raise InvalidInputError(
                f"{path}, line {line} (the header): column {position} has no name: name "
                "every column"
            )
        if record.count(name) > 1:
            raise InvalidInputError(
                f"{path}, line {line} (the header) names the column {name!r} twice: rename one"
            )
    return record


def _csv_width_problem(path: Path, line: int, record: list[str], header: list[str]) -> str:
    shown = ", ".join(header)
    if len(record) > len(header):
        return (
            f"{path}, line {line} has {len(record)} fields but the header has {len(header)} "
            f"({shown}); nothing was sent. A value holding a comma goes in double quotes "
            '("Paris, France")'
        )
    return (
        f"{path}, line {line} has {len(record)} field{'s' if len(record) != 1 else ''} but "
        f"the header has {len(header)} ({shown}); nothing was sent. Give every column a "
        "value on each line (an empty one is nothing between two commas)"
    )


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    from workbench.store.frames import JSONLineError, json_lines  # pandas, which this module defers

    rows: list[dict[str, Any]] = []
    try:
        for number, item in json_lines(path):
            if not isinstance(item, dict):
                raise InvalidInputError(
                    f"{path}, line {number} is a JSON {type(item).__name__}: write one JSON "
                    'object a line, e.g. {"city": "Paris", "expected": "France"}'
                )
            rows.append(item)
    except JSONLineError as exc:
        raise InvalidInputError(f"{path}, {exc}: write one JSON object a line") from exc
    return rows


def _frame_rows(frame: pd.DataFrame, source: str) -> list[dict[str, Any]]:
    for column in frame.columns:
        if not isinstance(column, str):
            raise InvalidInputError(
                f"{source} has a column named {column!r} ({type(column).__name__}): name the "
                "columns with text, e.g. df.columns = ['city', 'expected']"
            )
    if frame.columns.has_duplicates:
        twice = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
        raise InvalidInputError(f"{source} has the column {twice[0]!r} twice: rename one")
    # to_dict("records") hands back numpy scalars and NaN; _plain_row turns them into JSON.
    return [dict(row) for row in frame.to_dict("records")]


def _plain_row(row: Mapping[str, Any], index: int, source: str) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise InvalidInputError(
            f"item {index} of {source} is a {type(row).__name__}: give one dict per test "
            "case, e.g. [{'city': 'Paris', 'expected': 'France'}]"
        )
    if all(type(column) is str and type(value) is str for column, value in row.items()):
        return dict(row)  # a CSV file's rows: nothing to check or convert (~1 us a row)
    plain: dict[str, Any] = {}
    for column, value in row.items():
        if not isinstance(column, str):
            raise InvalidInputError(
                f"row {index} of {source} has a column named {column!r} "
                f"({type(column).__name__}): name the columns with text"
            )
        try:
            plain[column] = _plain(value)
        except TypeError:
            raise InvalidInputError(
                f"row {index} of {source}, column {column!r} holds a {type(value).__name__}: "
                "test cases hold text, numbers, booleans, lists and dicts"
            ) from None
    return plain


def _plain(value: Any) -> Any:
    """A JSON value for a cell: numpy scalars unwrapped, NaN and NA as None, times as ISO."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    if value is None or isinstance(value, (str, bool, int)):
        return value
    if value is pd.NA or value is pd.NaT:  # before datetime: NaT is one
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(item) for item in value]
    raise TypeError(type(value).__name__)


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_json_string = json.encoder.encode_basestring  # json.dumps(text, ensure_ascii=False)


def _canonical_row(row: dict[str, Any]) -> str:
    """:func:`_canonical` of a row; a row of text only (a CSV file's) is joined by hand,
    ~3 x faster than json.dumps with sorted keys."""
    if all(type(value) is str for value in row.values()):
        cells = [f"{_json_string(k)}:{_json_string(v)}" for k, v in sorted(row.items())]
        return "{" + ",".join(cells) + "}"
    return _canonical(row)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]


# ---------------------------------------------------------------------- sweeps


def template_columns(
    dataset: Dataset, texts: Sequence[str], context: Mapping[str, Any] | None
) -> list[str]:
    """The dataset's columns the prompt ``texts`` use, in column order; raises
    InvalidInputError when the templates need a value no column (nor ``context``) has."""
    needed = {name for text in texts for name in variables_of(text)}
    if dataset.expected is not None and dataset.expected in needed:
        raise InvalidInputError(
            f"{{{{{dataset.expected}}}}} in the template is the dataset's expected answer, "
            "which scorers get and the model must not: take it out of the template, or name "
            "another column with expected=..."
        )
    columns = [c for c in dataset.columns if c in needed and c != dataset.expected]
    missing = sorted(needed - set(columns) - set(context or {}))
    if missing:
        raise InvalidInputError(
            f"the template uses {{{{{missing[0]}}}}} but the dataset has no column "
            f"{', '.join(missing)} (its columns: {', '.join(dataset.columns)}): rename a "
            "column, or give the value in context=..."
        )
    if not columns:
        raise InvalidInputError(
            f"the template uses none of the dataset's columns ({', '.join(dataset.columns)}):"
            f" write {{{{{dataset.columns[0]}}}}} where its value goes"
        )
    for index, row in enumerate(dataset.rows):
        for column in columns:
            if column not in row:
                raise InvalidInputError(
                    f"row {index} of the dataset has no {column!r}, which the template uses: "
                    "give every row a value for it"
                )
            if row[column] is None:
                # Rendered, a null is the text "None" (and NaN was sent as "nan").
                raise InvalidInputError(
                    f"row {index} of the dataset has no value (null or NaN) in column "
                    f"{column!r}, which the template uses; nothing was sent. Fill it or drop "
                    f'the row; to send it as empty text, make it "" (a DataFrame: '
                    f'df.fillna({{"{column}": ""}}))'
                )
    return columns


def case_variables(dataset: Dataset, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Each row's template variables: the used ``columns`` only (never the answer)."""
    return [{name: row[name] for name in columns} for row in dataset.rows]


def mark_run(record: RunRecord, dataset: Dataset, index: int) -> None:
    """Stamp a run with the test case (row ``index``) it answers."""
    record.dataset = dataset.name
    record.dataset_version = dataset.version
    record.item_id = dataset.item_ids[index]
    record.expected = dataset.expected_text(index)


# ---------------------------------------------------------------------- the store


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"a dataset's name is a non-empty text, not {name!r}")
    return name


def save_dataset(
    store: AnyStore, name: str, data: Any, *, expected: str | None = None
) -> Dataset:
    """Store ``data`` as the latest version of dataset ``name`` and return it. The same
    rows stored again are the same version (nothing is added)."""
    name = _check_name(name)
    if isinstance(data, Dataset):
        dataset = Dataset(data.rows, expected=expected or data.expected, name=name)
    else:
        dataset = as_dataset(data, expected=expected, name=name)
    store.put_dataset(name, dataset.version, dataset.expected, dataset.items_json())
    return dataset


def load_dataset(store: AnyStore, name: str, *, version: str | None = None) -> Dataset:
    """Dataset ``name`` from the store: its latest version, or ``version``."""
    name = _check_name(name)
    found = store.get_dataset(name, version)
    if found is None:
        known = sorted(set(store.datasets()["name"]))
        which = f"{name!r} version {version!r}" if version else repr(name)
        hint = f"stored: {', '.join(known)}" if known else "none is stored yet"
        raise InvalidInputError(
            f"no dataset {which} in the store ({hint}): store it with "
            f"wb.dataset({name!r}, rows, expected=...)"
        )
    stored_version, expected, items = found
    try:
        rows = json.loads(items)
    except json.JSONDecodeError as exc:
        raise StoreError(f"dataset {name!r} version {stored_version} is damaged: {exc}") from exc
    dataset = Dataset(rows, expected=expected, name=name, source=f"dataset {name!r}")
    if dataset.version != stored_version:
        raise StoreError(
            f"dataset {name!r} version {stored_version} does not hash to its version "
            f"({dataset.version}): it was changed outside the workbench; store it again"
        )
    return dataset
