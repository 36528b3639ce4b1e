"""A sweep's results for people: its rows matched to its planned points, the side-by-side
pivot (one row per prompt, one column per knob combination), as HTML, and a token chart.
pandas and matplotlib are imported lazily.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .grid import GridPoint, knob_label

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["rows_by_point", "side_by_side", "table_html", "token_usage_png"]

Identity = tuple[str, int]


def rows_by_point(rows: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """One row per planned point that has one, in point order.

    ``rows`` are a sweep's rows of the experiment table; ``points`` its planned points
    (with ``point``, ``request_hash`` and ``sample_index``). A point's ok row wins over its
    errors (kept in the table as history); among errors, the newest. Columns of
    ``points`` the table does not have (``point``, template variables, other knobs) are
    added.
    """
    import pandas as pd

    if rows.empty:
        return rows.assign(point=pd.Series(dtype="int64"))
    ranked = rows.assign(_ok=rows["status"] == "ok").sort_values(["_ok", "run_id"])
    latest = ranked.drop_duplicates(["request_hash", "sample_index"], keep="last")
    keys = ["request_hash", "sample_index"]
    extra = [c for c in points.columns if c not in rows.columns]
    planned = points[extra + keys].astype({"sample_index": rows["sample_index"].dtype})
    merged = latest.drop(columns="_ok").merge(planned, on=keys, how="inner")
    return merged.sort_values("point").reset_index(drop=True)


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
    import pandas as pd

    cells: dict[tuple[Any, ...], dict[str, Any]] = {}
    for point, identity, prompt in plan:
        labels = tuple(map(_row_label, point.variables.values()))
        key = labels if point.variables else (prompt or "",)
        column = knob_label(point.knobs) or values
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


def _row_label(value: Any) -> Any:
    # A list or dict (a test case's options, a JSON record) cannot be a row key: its JSON can.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


def table_html(table: pd.DataFrame) -> str:
    """The table as HTML with every cell in full (escaped), for a widget."""
    import pandas as pd

    def cell(value: object) -> str:
        # Escape here (not in to_html) so that line breaks in answers can become <br>:
        # pandas would show them as a literal "\\n".
        if value is None or (isinstance(value, float) and value != value):
            return "—"
        return html.escape(str(value)).replace("\n", "<br>")

    shown = table.map(cell)
    for axis in ("index", "columns"):
        labels = getattr(shown, axis)
        if isinstance(labels, pd.MultiIndex):
            escaped = labels.set_levels(
                [level.map(lambda v: html.escape(str(v))) for level in labels.levels]
            )
        else:
            escaped = labels.map(lambda v: html.escape(str(v))).rename(labels.name)
        setattr(shown, axis, escaped)
    with pd.option_context("display.max_colwidth", None):
        return str(shown.to_html(escape=False))


def token_usage_png(df: pd.DataFrame, knobs: Sequence[str]) -> bytes:
    """Mean prompt and completion tokens per knob combination (``knobs`` name the
    columns of ``df`` that make one), as a PNG bar chart for a widget."""
    from matplotlib.figure import Figure

    labels = [knob_label({k: row[k] for k in knobs}) or "all runs" for _, row in df.iterrows()]
    means = (
        df.assign(_label=labels)
        .groupby("_label", sort=False)[["prompt_tokens", "completion_tokens"]]
        .mean()
    )
    figure = Figure(figsize=(max(4.0, 1.2 * len(means)), 3.0))
    ax = figure.subplots()
    positions = range(len(means))
    ax.bar([p - 0.2 for p in positions], means["prompt_tokens"].astype(float), 0.4, label="prompt")
    ax.bar(
        [p + 0.2 for p in positions],
        means["completion_tokens"].astype(float),
        0.4,
        label="completion",
    )
    ax.set_xticks(list(positions), list(means.index), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("tokens (mean per run)")
    ax.set_title(f"Token usage per knob combination ({len(df)} runs)", fontsize=10)
    ax.margins(y=0.25)  # room above the bars, so the legend covers none of them
    ax.legend(loc="upper right", fontsize=8, ncols=2)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
