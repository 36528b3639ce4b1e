"""A result a person reads (``wb.runs()``, ``wb.scores``, ``wb.stability``, a sweep's
points): a pandas DataFrame for code whose notebook view is formatted for people.

The view: text left-aligned with its line breaks (long text folded under its opening),
numbers right-aligned with three significant digits (money as money), a missing value
shown one way (``—``), inside a box that scrolls both ways with its header in view, so a
wide result never pushes the notebook sideways and its scrollbar is near its top. Code
sees the values and dtypes untouched; like the sweep table, every derived frame
(``r[cols]``, ``r.copy()``, arithmetic) is a plain DataFrame, except ``head``/``tail``,
which are the same result, fewer rows. Importing this module imports pandas.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from workbench.core.htmltable import NUMBERS, TableRow, html_table
from workbench.core.money import NO_MATHS_CLASS, format_money

__all__ = ["ResultFrame", "result_frame", "frame_html", "cell_text", "MISSING"]

MISSING = "—"  # None, NaN, pd.NA and NaT alike: pandas shows them three ways
FOLD_CHARS = 240  # longer texts are folded under their opening (all their text kept)
_FOLD_LINES = 6
_MAX_ROWS = 60  # as pandas' display.max_rows: the first rows shown, the rest counted

_STYLE = """<style>
.wb-frame-scroll {overflow: auto; max-width: 100%; max-height: 36em;
  border: 1px solid var(--jp-border-color2)}
table.wb-frame {border-collapse: separate; border-spacing: 0; table-layout: auto;
  margin: 0 !important; color: var(--jp-content-font-color1)}
table.wb-frame td, table.wb-frame th {text-align: left !important; vertical-align: top;
  padding: .3em .5em; border-bottom: 1px solid var(--jp-border-color2); line-height: 1.4;
  white-space: nowrap}
table.wb-frame thead th {position: sticky; top: 0; z-index: 1; font-weight: 600;
  background: var(--jp-layout-color2)}
table.wb-frame tbody th {font-weight: normal; color: var(--jp-ui-font-color2);
  background: var(--jp-layout-color1)}
table.wb-frame td.wb-num {text-align: right !important; font-variant-numeric: tabular-nums}
table.wb-frame td.wb-prose {white-space: normal; min-width: 14em; max-width: 28em}
table.wb-frame td.wb-prose .wb-text {white-space: pre-wrap; overflow-wrap: anywhere}
table.wb-frame .wb-token {max-width: 8em; overflow: hidden; text-overflow: ellipsis}
table.wb-frame .wb-words {white-space: normal; min-width: 9em}
table.wb-frame .wb-missing {color: var(--jp-ui-font-color3)}
table.wb-frame summary {cursor: pointer}
.wb-frame-note {font-size: 85%; color: var(--jp-ui-font-color2); margin-top: .3em}
</style>"""


class ResultFrame(pd.DataFrame):  # type: ignore[misc]  # pandas is untyped here
    """A DataFrame whose notebook view is formatted (:func:`frame_html`); derived frames
    are plain DataFrames, ``head``/``tail`` stay results."""

    _metadata = ["_skip_empty", "_first"]
    _skip_empty: bool = False
    _first: tuple[str, ...] = ()

    @property
    def _constructor(self) -> Any:  # type[pd.DataFrame]; pandas is untyped here
        # A slice or a sum may no longer be a result: plain, as pandas shows any frame.
        return pd.DataFrame

    @classmethod
    def _from_arrays(cls, *args: Any, **kwargs: Any) -> pd.DataFrame:
        # pandas builds some frames (``r.T`` of text columns) as ``type(self)._from_arrays``.
        return pd.DataFrame._from_arrays(*args, **kwargs)

    def head(self, n: int = 5) -> ResultFrame:
        return result_frame(pd.DataFrame(self).head(n), skip_empty=self._skip_empty,
                            first=self._first)

    def tail(self, n: int = 5) -> ResultFrame:
        return result_frame(pd.DataFrame(self).tail(n), skip_empty=self._skip_empty,
                            first=self._first)

    def _repr_html_(self) -> str:
        return frame_html(pd.DataFrame(self), skip_empty=self._skip_empty, first=self._first)


def result_frame(frame: pd.DataFrame, *, skip_empty: bool = False,
                 first: Sequence[str] = ()) -> ResultFrame:
    """``frame`` (same values, dtypes, index, column order) as a :class:`ResultFrame`;
    ``skip_empty`` leaves the columns with no value at all out of the view (named under
    it); ``first`` names the columns the view shows first (the rest follow in order)."""
    made = ResultFrame(frame)
    made._skip_empty = skip_empty
    made._first = tuple(first)
    return made


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def cell_text(value: Any, column: str = "") -> str:
    """A value as a person reads it: 3 significant digits (``0.725``, ``1``, ``1,234``),
    money as money for ``cost`` columns, times to the second, JSON for lists and dicts,
    :data:`MISSING` for a missing value of any kind."""
    if is_missing(value):
        return MISSING
    if hasattr(value, "item") and not isinstance(value, (str, bytes, datetime)):
        value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)) and column.startswith("cost"):
        return format_money(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if abs(value) >= 100:  # the whole part is the reading: 1,234 not 1.23e+03
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _numeric(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    # An object column of numbers (a JSON value, a mixed score) still reads as numbers.
    known = [v for v in series.tolist() if not is_missing(v)]
    return bool(known) and series.dtype == object and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in known)


def _prose(text: str) -> str:
    body = f'<div class="wb-text">{html.escape(text)}</div>'
    if len(text) <= FOLD_CHARS and text.count("\n") < _FOLD_LINES:
        return body
    opening = html.escape(" ".join(text.split())[:100])
    return (f"<details><summary>{opening}… <small>({len(text):,} characters)</small>"
            f"</summary>{body}</details>")


def _column_cells(series: pd.Series, name: str) -> tuple[str, list[str]]:
    """The class of a column's cells and each cell's HTML."""
    if _numeric(series):
        return NUMBERS, [
            f'<span class="wb-missing">{MISSING}</span>' if is_missing(v)
            else html.escape(cell_text(v, name)) for v in series.tolist()]
    texts = [None if is_missing(v) else cell_text(v, name) for v in series.tolist()]
    # Prose (words, lines) wraps in a readable width; a short text or a long token (an id,
    # a hash) stays on one line, a token cut to an ellipsis (whole in its tooltip and copy).
    prose = any(t is not None and (len(t) > 40 or "\n" in t) and " " in t.strip()
                for t in texts)
    cells = []
    for text in texts:
        if text is None:
            cells.append(f'<span class="wb-missing">{MISSING}</span>')
        elif prose:
            cells.append(_prose(text))
        elif len(text) > 24 and not any(c.isspace() for c in text):
            cells.append(f'<div class="wb-token" title="{html.escape(text)}">'
                         f"{html.escape(text)}</div>")
        elif len(text) > 20:  # a few words: they may take two lines
            cells.append(f'<div class="wb-words">{html.escape(text)}</div>')
        else:
            cells.append(html.escape(text))
    return ("wb-prose" if prose else "wb-short"), cells


def frame_html(frame: pd.DataFrame, *, skip_empty: bool = False,
               max_rows: int = _MAX_ROWS, first: Sequence[str] = ()) -> str:
    """``frame`` as a formatted HTML table in its own scrolling box (see the module)."""
    notes: list[str] = []
    leading = [c for c in first if c in frame.columns]
    columns: Sequence[Any] = leading + [c for c in frame.columns if c not in leading]
    if skip_empty and len(frame):
        empty = [c for c in columns if frame[c].isna().all()]
        if empty:
            columns = [c for c in columns if c not in empty]
            notes.append(f"{len(empty)} empty column{'s' if len(empty) > 1 else ''} not shown: "
                         + ", ".join(map(str, empty)))
    shown = frame if len(frame) <= max_rows else frame.iloc[:max_rows]
    if len(shown) < len(frame):
        notes.append(f"the first {len(shown):,} of {len(frame):,} rows")
    notes.append(f"{len(frame):,} rows × {len(frame.columns)} columns")
    by_column = [_column_cells(shown.iloc[:, frame.columns.get_loc(c)]
                               if frame.columns.is_unique else shown[c], str(c))
                 for c in columns]
    rows: list[TableRow] = []
    for i, label in enumerate(shown.index):
        labels = label if isinstance(label, tuple) else (label,)
        rows.append(([html.escape(cell_text(x)) for x in labels],
                     [cells[i] for _, cells in by_column]))
    names = list(frame.index.names)
    header = ["" if n is None else html.escape(str(n)) for n in names] + [
        html.escape(str(c)) for c in columns]
    table = html_table(header, rows, classes="wb-frame", attributes='border="0"',
                       column_classes=[kind for kind, _ in by_column] or None)
    note = f'<div class="wb-frame-note">{html.escape(" · ".join(notes))}</div>'
    return f'{_STYLE}<div class="wb-frame-scroll {NO_MATHS_CLASS}">{table}</div>{note}'
