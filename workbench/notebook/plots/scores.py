"""Figures of scores: mean score or pass rate per group with 95 % intervals, and quality
against cost with the Pareto front. Reached as ``wb.plots.scores`` and ``wb.plots.pareto``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.core.figures import adopt
from workbench.decide.stats import Interval, mean_interval, wilson_interval
from workbench.notebook.display import format_cost, shorten
from workbench.notebook.pivot import varying
from workbench.notebook.plots.base import (
    category_ticks,
    finish_axes,
    group_codes,
    group_label,
    new_axes,
    place_labels,
    plottable_runs,
    side_legend,
)
from workbench.scoring.columns import PREFIX, add_score_columns, score_columns
from workbench.scoring.judge import JUDGE_SUFFIX

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["scores", "pareto", "scored_runs"]

MAX_PARETO_LABELS = 16  # beyond this, only the front's points are labelled


def scored_runs(data: Any, column: str | None = None) -> pd.DataFrame:
    """The plottable runs of ``data`` with their ``score:`` columns (a judge's own calls
    left out); with ``column``, only the runs that have that score."""
    from workbench.calls.session import get_session  # looked up at call time: the tests patch it

    df = plottable_runs(data)
    if "experiment" in df:
        df = df[~df["experiment"].astype(str).str.endswith(JUDGE_SUFFIX)]
    if not score_columns(df):
        df = add_score_columns(df, get_session().store)
    if column is not None:
        if column not in df.columns:
            shown = ", ".join(score_columns(df)) or "none yet: score the runs with wb.score"
            raise InvalidInputError(f"no {column!r} column; score columns: {shown}")
        df = df[df[column].notna()]
    return df


def _column_of(scorer: str) -> str:
    return scorer if scorer.startswith(PREFIX) else PREFIX + scorer


def _interval(values: list[float]) -> tuple[Interval, bool]:
    """The mean (pass rate for 0/1 scores, with Wilson's interval) and whether a rate."""
    if values and all(v in (0.0, 1.0) for v in values):
        return wilson_interval(int(sum(values)), len(values)), True
    return mean_interval(values), False


def scores(
    data: Any,
    by: str | None = "temperature",
    scorer: str | None = None,
    hue: str | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Mean score per group of ``by`` (pass rate for yes/no scorers) with its 95 %
    interval; one bar per ``hue`` value, or per scorer when ``scorer`` is None and the
    runs have several."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    df = scored_runs(data)
    columns = [_column_of(scorer)] if scorer is not None else score_columns(df)
    if not columns:
        raise InvalidInputError("the runs have no scores yet: score them with wb.score(...)")
    if len(columns) > 1 and hue is not None:
        raise InvalidInputError(f"several scorers ({', '.join(columns)}): choose one with"
                                " scorer=... to use hue")
    for column in columns:
        if column not in df.columns:
            raise InvalidInputError(f"no {column!r} column; score columns: "
                                    f"{', '.join(score_columns(df))}")
    df = df[df[columns].notna().any(axis=1)]
    groups, labels = group_codes(df, by)
    hue = None if hue == by else hue
    hues, hue_labels = group_codes(df, hue)
    series = [(c, h) for c in columns for h in range(len(hue_labels))]
    ax = new_axes(ax, len(labels) * len(series))
    width = 0.8 / max(len(series), 1)
    rates = []
    for j, (column, h) in enumerate(series):
        values = df[column].astype("float64").to_numpy()
        x = np.arange(len(labels)) + (j - (len(series) - 1) / 2) * width
        means, lows, highs = [], [], []
        for g in range(len(labels)):
            chosen = values[(groups == g) & (hues == h) & ~np.isnan(values)].tolist()
            interval, rate = _interval(chosen)
            rates.append(rate)
            means.append(interval.estimate)
            lows.append(interval.estimate - interval.low if not math.isnan(interval.low) else 0)
            highs.append(interval.high - interval.estimate if not math.isnan(interval.high)
                         else 0)
        name = column.removeprefix(PREFIX) if len(columns) > 1 or hue is None else hue_labels[h]
        ax.bar(x, means, width * 0.9, yerr=[lows, highs], capsize=3, color=f"C{j}",
               alpha=0.8, label=name, error_kw={"elinewidth": 1})
    if len(series) > 1:
        side_legend(ax)
    category_ticks(ax, labels)
    what = "pass rate" if rates and all(rates) else "mean score"
    title = f"{what.capitalize()} by {by or 'run'}" + (
        f" ({columns[0].removeprefix(PREFIX)})" if len(columns) == 1 else "")
    return finish_axes(ax, title + ", 95% CI", len(df), xlabel=by, ylabel=what)


def pareto(
    data: Any,
    quality: str = "score:judge",
    cost: str = "cost_usd",
    *,
    by: list[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Mean ``quality`` against mean ``cost`` per knob combination (the knobs that vary,
    or ``by``); the Pareto front (no other point is both better and cheaper) is marked."""
    df = scored_runs(data)
    column = quality if quality in df.columns else _column_of(quality)  # "judge" is a scorer
    if column.startswith(PREFIX):
        df = scored_runs(df, column)
    if cost not in df.columns:
        raise InvalidInputError(f"no {cost!r} column in the runs")
    knobs = list(by) if by is not None else varying(df)
    knobs = [k for k in knobs if k != "sample_index"]
    if not knobs:
        frame = df.assign(_all="all runs")
        knobs = ["_all"]
    else:
        frame = df
    points = (
        frame.assign(_q=frame[column].astype("float64"), _c=frame[cost].astype("float64"))
        .groupby(knobs, dropna=False, sort=True)[["_q", "_c"]]
        .mean()
        .dropna()
        .reset_index()
    )
    ax = new_axes(ax)
    shown = [k for k in knobs if k != "_all"]
    # The values only (the knobs' names are said once, in the legend's title): a label
    # of "system=You are a helpful assistant., temperature=1.5" crowded out the points.
    labels = [
        ", ".join(_short(v) for k, v in zip(knobs, row, strict=True) if k != "_all")
        or "all runs"
        for row in points[knobs].itertuples(index=False)
    ]
    front = pareto_front(points["_c"].tolist(), points["_q"].tolist())
    # Nearly opaque: the PNG is transparent, and at 0.6 the blue sank into the dark theme.
    ax.scatter(points["_c"], points["_q"], color="C0", alpha=0.9, label="knob combination")
    if front:
        ordered = sorted(front, key=lambda i: points["_c"].iloc[i])
        ax.plot(points["_c"].iloc[ordered], points["_q"].iloc[ordered], "-o", color="C3",
                label="Pareto front", zorder=3)
    # Below the axes, not beside them: beside, it squeezed a wide figure's axes square.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, fontsize="small",
              frameon=False, title=f"labels: {', '.join(shown)}" if shown else None,
              title_fontsize="small")
    if cost == "cost_usd" and len(points):
        ax.set_xlabel(f"mean {cost} per run (max {format_cost(float(points['_c'].max()))})")
    finish_axes(ax, f"{column.removeprefix(PREFIX)} against {cost}", len(df),
            xlabel=ax.get_xlabel() or f"mean {cost}", ylabel=f"mean {column}")
    # Room above and beside the outermost points, so their labels sit inside the frame
    # with a gap rather than against it.
    ax.margins(x=0.08, y=0.14)
    chosen = [i for i in range(len(labels)) if i in front or len(labels) <= MAX_PARETO_LABELS]
    place_labels(ax, [float(points["_c"].iloc[i]) for i in chosen],
                 [float(points["_q"].iloc[i]) for i in chosen], [labels[i] for i in chosen])
    return adopt(ax)


def pareto_front(costs: list[float], qualities: list[float]) -> list[int]:
    """Indices of the points no other point beats: cheaper or as cheap, and better."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -qualities[i]))
    front, best = [], -math.inf
    for i in order:
        if qualities[i] > best:
            front.append(i)
            best = qualities[i]
    return front


def _short(value: Any) -> str:
    return group_label(value) if not isinstance(value, str) else shorten(value, 20)
