"""A sweep's results shaped for people: its rows matched to its planned points, the
side-by-side pivot from its plan (one row per prompt, one column per knob combination:
:func:`side_by_side`; every planned point has its cell, run or not yet), each cell's small
print, and the table as HTML. pandas is imported lazily.

Columns are labelled by :func:`column_label`, the one labelling of a knob combination that
``wb.compare`` uses too, so the same runs get the same column in both views
(``temperature=1``, whether the sweep was given 1 or 1.0).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workbench.core.finish import finish_note
from workbench.core.htmltable import TableRow, html_table
from workbench.core.money import NO_MATHS_CLASS, format_money
from workbench.core.pricing import is_estimated
from workbench.sweeps.grid import GridPoint

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["rows_by_point", "side_by_side", "row_key", "table_html", "cell_note",
           "column_label", "varying_knobs", "NOT_SET"]

NOT_SET = "not set"  # a knob that was not sent (None in a plan, a null in the table)
_LONG_VALUE = 40  # characters of a text value (a system prompt) shown in a label

Identity = tuple[str, int]  # a planned call: (request hash, sample index)


def rows_by_point(rows: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """One row per planned point that has one, in point order.

    ``rows`` are a sweep's rows of the experiment table; ``points`` its planned points
    (with ``point``, ``request_hash`` and ``sample_index``). A point's ok row wins over its
    errors (kept in the table as history); among errors, the newest. Columns of
    ``points`` the table does not have (``point``, template variables, other knobs) are
    added.
    """
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    if rows.empty:
        return rows.assign(point=pd.Series(dtype="int64"))
    ranked = rows.assign(_ok=rows["status"] == "ok").sort_values(["_ok", "run_id"])
    latest = ranked.drop_duplicates(["request_hash", "sample_index"], keep="last")
    keys = ["request_hash", "sample_index"]
    extra = [c for c in points.columns if c not in rows.columns]
    planned = points[extra + keys].astype({"sample_index": rows["sample_index"].dtype})
    merged = latest.drop(columns="_ok").merge(planned, on=keys, how="inner")
    return merged.sort_values("point").reset_index(drop=True)


FOLD_CHARS = 400  # longer outputs are folded under their opening (all their text kept)
_FOLD_LINES = 8

# Four knob combinations fit a 1,400 px window (cells 11em at least, headers wrap at their
# spaces); wider sweeps scroll inside a box of at most 42em, so its scrollbar is near the
# top, with the prompt column and the header in view (sticky); colours only from
# JupyterLab's variables.
# The line height is set here: inside a widget (the SweepPanel) it would be the widgets' 28px.
TABLE_STYLE = """<style>
.wb-sweep-scroll {overflow: auto; max-width: 100%; max-height: 42em; padding-bottom: 2px}
table.wb-sweep {border-collapse: separate; border-spacing: 0; table-layout: auto;
  margin: 0 !important}
table.wb-sweep td, table.wb-sweep th {text-align: left !important; vertical-align: top;
  padding: .4em .6em; border-bottom: 1px solid var(--jp-border-color2);
  color: var(--jp-content-font-color1); line-height: 1.45}
table.wb-sweep td {min-width: 11em; max-width: 30em; white-space: normal;
  overflow-wrap: anywhere}
table.wb-sweep thead th {white-space: normal; background: var(--jp-layout-color2);
  font-weight: 600; position: sticky; top: 0; z-index: 2; min-width: 8em}
table.wb-sweep tbody th {min-width: 8em; max-width: 18em; font-weight: normal;
  background: var(--jp-layout-color1); border-right: 1px solid var(--jp-border-color1);
  white-space: normal; overflow-wrap: anywhere}
table.wb-sweep tbody th:first-child {position: sticky; left: 0; z-index: 1}
table.wb-sweep thead th:first-child {position: sticky; left: 0; z-index: 3}
table.wb-sweep .wb-text {white-space: pre-wrap; line-height: 1.45}
table.wb-sweep .wb-meta {font-size: 80%; color: var(--jp-ui-font-color2); margin-top: .3em}
table.wb-sweep .wb-flag {font-size: 85%; color: var(--jp-warn-color0); margin-top: .2em}
table.wb-sweep summary {cursor: pointer}
</style>"""


def _fold(text: str) -> str:
    """The text whole, or folded under its opening when long (a click opens it all)."""
    body = f'<div class="wb-text">{html.escape(text)}</div>'
    if len(text) <= FOLD_CHARS and text.count("\n") < _FOLD_LINES:
        return body
    opening = html.escape(" ".join(text.split())[:140])
    return (
        f"<details><summary>{opening}… <small>({len(text):,} characters)</small></summary>"
        f"{body}</details>"
    )


def cell_note(row: Mapping[str, Any]) -> str:
    """A run's small print for a table cell: a first line of flags (``⚠ cut at 40
    tokens``, ``refused``, ``error``) when any, then ``tokens · cost · latency``."""
    def known(name: str) -> Any:
        value = row.get(name)
        return None if value is None or (isinstance(value, float) and value != value) else value

    flags = []
    ended = finish_note(known("finish_reason"), known("completion_tokens"))
    if ended:
        flags.append(ended)
    if known("status") not in (None, "ok"):
        flags.append(f"error: {known('error') or known('status')}")
    parts = []
    if known("prompt_tokens") is not None:
        parts.append(f"{int(known('prompt_tokens'))}→{int(known('completion_tokens') or 0)} tok")
    if known("cache_hit"):
        parts.append("from the table")
    elif known("status") in (None, "ok"):
        source = known("price_source")
        parts.append(format_money(known("cost_usd"),
                                  estimated=bool(source) and is_estimated(str(source))))
        if known("latency_s") is not None:
            parts.append(f"{float(known('latency_s')):.2f} s")
    flag = f"⚠ {' · '.join(flags)}\n" if flags else ""
    return flag + " · ".join(parts)


def table_html(table: pd.DataFrame, notes: pd.DataFrame | None = None) -> str:
    """The table as HTML with every cell in full (escaped, long ones folded), scrolling
    sideways within the output; ``notes`` (same shape, from :func:`cell_note`) adds each
    cell's small print."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    def cell(value: object, note: object = None) -> str:
        if value is None or (isinstance(value, float) and value != value):
            text = "—"
        else:
            text = _fold(str(value))
        if isinstance(note, str) and note:
            flag, _, small = note.rpartition("\n")
            if flag:
                text += f'<div class="wb-flag">{html.escape(flag)}</div>'
            text += f'<div class="wb-meta">{html.escape(small)}</div>'
        return text

    noted = notes if notes is not None and notes.shape == table.shape else None
    rows: list[TableRow] = []
    for i, key in enumerate(table.index):
        labels = key if isinstance(table.index, pd.MultiIndex) else (key,)
        cells = [cell(table.iat[i, j], None if noted is None else noted.iat[i, j])
                 for j in range(table.shape[1])]
        rows.append(([html.escape(str(label)) for label in labels], cells))
    # One header row: the row labels' names (``prompt``, a template's variables) in the
    # corner above them, then the knob combinations. Several row labels: each row repeats
    # them all (no rowspan), so its first cell is always the first label, the one kept in
    # view (``th:first-child`` above); two sticky labels at left 0 would cover each other.
    corner = ["" if name is None else html.escape(str(name)) for name in table.index.names]
    header = corner + [html.escape(str(column)) for column in table.columns]
    # "dataframe": the class pandas gave this table, which JupyterLab's table styles read.
    page = html_table(header, rows, classes="dataframe wb-sweep", attributes='border="0"')
    # Money in the cells: MathJax skips the whole table.
    return f'{TABLE_STYLE}<div class="wb-sweep-scroll {NO_MATHS_CLASS}">{page}</div>'


def side_by_side(
    plan: Sequence[tuple[GridPoint, Identity, str | None]],
    found: Mapping[Identity, Any],
    *,
    variable_names: Sequence[str],
    repeats: int,
    values: str,
) -> pd.DataFrame:
    """The pivot of a sweep: ``plan`` is (point, identity, prompt) in order, ``found`` the
    value of each identity that has a row. Rows are the variables' values (or the prompt),
    columns the knob combinations (with ``#sample`` when repeated); cells without a row
    (not run yet) are None.
    """
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    cells: dict[tuple[Any, ...], dict[str, Any]] = {}
    shown = varying_knobs([point.knobs for point, _, _ in plan])
    for point, identity, prompt in plan:
        labels = tuple(map(row_key, point.variables.values()))
        key = labels if point.variables else (prompt or "",)
        column = column_label({k: point.knobs[k] for k in shown if k in point.knobs}) or values
        if repeats > 1:
            column += f" #{point.sample_index}"
        cells.setdefault(key, {})[column] = found.get(identity)
    names = list(variable_names) or ["prompt"]
    if len(names) == 1:
        index: pd.Index = pd.Index([key[0] for key in cells], name=names[0])
    else:
        index = pd.MultiIndex.from_tuples(list(cells), names=names)
    table = pd.DataFrame(list(cells.values()), index=index)
    table.columns.name = "knobs"
    return table


def row_key(value: Any) -> Any:
    # A list or dict (a test case's options, a JSON record) cannot be a row key: its JSON can.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


def varying_knobs(combinations: Sequence[Mapping[str, Any]]) -> list[str]:
    """The knobs that take more than one value (by their label) among ``combinations``, in
    order: a knob every column shares says nothing about a column, so neither view shows
    it (``wb.compare`` groups by the varying knobs alone)."""
    values: dict[str, set[str]] = {}
    for knobs in combinations:
        for name, value in knobs.items():
            values.setdefault(name, set()).add(_label_value(value))
    return [name for name, seen in values.items()
            if len(seen) > 1 or any(name not in knobs for knobs in combinations)]


def column_label(knobs: Mapping[str, Any]) -> str:
    """A knob combination as a column title, ``temperature=0.7 · seed=1``: the one
    labelling of the sweep table and ``wb.compare``. A value is written as a person types
    it and as the stored runs can tell it: a whole number without ``.0`` (the table keeps
    every temperature as a float, so 1 and 1.0 are one value), a knob not sent as
    ``not set``, a long text shortened."""
    return " · ".join(f"{name}={_label_value(value)}" for name, value in knobs.items())


def _label_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return NOT_SET
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # a numpy number, from a stored column
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value if len(value) <= _LONG_VALUE else value[: _LONG_VALUE - 1] + "…"
    return json.dumps(value, default=str)
