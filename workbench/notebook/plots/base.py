"""What the plots share: the runs they draw (each answer once), groups and their labels,
axes sized to the groups, thinned ticks, a legend beside the chart, boxes with dots, and
the title and "no runs" note; an Axes shows as the chart in a notebook cell.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

from workbench.core.figures import INK, adopt
from workbench.notebook.display import shorten
from workbench.notebook.pivot import groups, runs_of

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from matplotlib.axes import Axes

    Codes = npt.NDArray[np.int64]

__all__ = [
    "MAX_TICK_LABELS", "MAX_POINTS", "MAX_NOTES", "MAX_POINT_LABELS", "TOKEN_COLUMNS", "UNITS",
    "plottable_runs", "answered", "group_codes", "group_label", "palette", "new_axes",
    "category_ticks", "side_legend", "box_plot", "show_figure", "finish_axes", "place_labels",
]

MAX_TICK_LABELS = 20  # beyond this, every k-th label: 50 overlapping labels read as none
MAX_POINTS = 300  # beyond this many runs, boxes alone: thousands of dots are a smear
MAX_NOTES = 12  # beyond this many groups, numbers printed on bars overlap
MAX_POINT_LABELS = 40
TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens",
                  "total_tokens", "max_tokens")
UNITS = {**dict.fromkeys(TOKEN_COLUMNS, "tokens"), "cost_usd": "USD", "latency_s": "s",
          "ttft_s": "s"}



def plottable_runs(data: Any, kind: str | None = "chat") -> pd.DataFrame:
    """The successful runs of ``kind``, each answer once.

    Errors have no output, tokens or price to plot. A replay repeats a run: it is dropped
    where its original is in the frame too, and replays of one request count once, so
    re-running a notebook does not make its outputs look less diverse.
    """
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    df = runs_of(data)
    keep = df["status"].eq("ok") if "status" in df else pd.Series(True, index=df.index)
    if kind is not None and "kind" in df:
        keep &= df["kind"].eq(kind)
    df = df[keep]
    if {"cache_hit", "request_hash", "sample_index"} <= set(df.columns):
        replay = df["cache_hit"].eq(True)
        identity = df["request_hash"].astype(str) + "#" + df["sample_index"].astype(str)
        repeated = identity.isin(identity[~replay]) | identity.where(replay).duplicated()
        df = df[~(replay & repeated)]
    return df


def answered(df: pd.DataFrame) -> pd.DataFrame:
    """The runs with a non-blank output: an empty answer has no words or meaning to compare."""
    blank = df["output"].map(lambda text: not isinstance(text, str) or not text.strip())
    return df.loc[~blank.astype(bool)]


def group_codes(df: pd.DataFrame, column: str | None) -> tuple[Codes, list[str]]:
    """Each row's group number and the groups' labels, numbers in numeric order and the
    runs where the knob was not sent last (``None``: one group of all runs)."""
    if column is None:
        import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

        return np.zeros(len(df), dtype=np.int64), ["all runs"]
    codes, values = groups(df, column)
    return codes, [group_label(value) for value in values]


def group_label(value: Any) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return f"{float(value):g}"
    return shorten(str(value), 30)


def palette(n: int) -> list[Any]:
    import matplotlib as mpl  # deferred: keeps import workbench light (matplotlib ~0.3 s)

    palette = mpl.colormaps["tab10" if n <= 10 else "viridis"]
    return [palette(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


def new_axes(ax: Axes | None, slots: int = 1) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # deferred: keeps import workbench light (~0.6 s)

    width = min(14.0, max(7.5, 4.0 + 0.3 * slots))  # wider for many groups, within reason
    _, new = plt.subplots(figsize=(width, 4.8), layout="constrained")
    return new


def category_ticks(ax: Axes, labels: list[str], axis: str = "x") -> None:
    """One tick per group, thinned to every k-th label and slanted when they would crowd."""
    step = max(1, math.ceil(len(labels) / MAX_TICK_LABELS))
    positions = list(range(0, len(labels), step))
    if positions and positions[-1] != len(labels) - 1:
        positions[-1] = len(labels) - 1  # the last group is often NOT_SET: never thin it out
    shown = [labels[i] for i in positions]
    if axis == "y":
        ax.set_yticks(positions, shown)
        return
    ax.set_xticks(positions, shown)
    if len(shown) > 8 or max(map(len, shown), default=0) > 10:
        for text in ax.get_xticklabels():
            text.set(rotation=45, horizontalalignment="right", rotation_mode="anchor")


def side_legend(ax: Axes, **kwargs: Any) -> None:
    # Outside, on the right: inside, it hides the bars of whichever group it lands on.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", **kwargs)


def box_plot(
    ax: Axes | None, df: pd.DataFrame, by: str | None, series: list[tuple[str, pd.Series]]
) -> Axes:
    """Side-by-side boxes (one per series) for each group, with the runs as dots when few."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    from matplotlib.patches import Patch  # deferred: keeps import workbench light (~0.3 s)

    groups, labels = group_codes(df, by)
    ax = new_axes(ax, len(labels) * len(series))
    width = 0.8 / len(series)
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(df)) * width
    handles = []
    for j, (name, column) in enumerate(series):
        values = column.astype("float64").to_numpy()
        positions = np.arange(len(labels)) + (j - (len(series) - 1) / 2) * width
        color = f"C{j}"
        if labels:  # boxplot reads an empty list as one empty box
            ax.boxplot([values[(groups == g) & ~np.isnan(values)] for g in range(len(labels))],
                       positions=positions, widths=width * 0.8, patch_artist=True,
                       manage_ticks=False, showfliers=len(df) > MAX_POINTS,
                       boxprops={"facecolor": color, "alpha": 0.5, "edgecolor": color},
                       # the box's own colour: a black median vanishes on a dark page
                       medianprops={"color": color, "linewidth": 2},
                       flierprops={"markersize": 2})
        if len(df) <= MAX_POINTS:
            ax.scatter(positions[groups] + jitter, values, s=10, color=color, zorder=3)
        handles.append(Patch(facecolor=color, alpha=0.5, label=name))
    side_legend(ax, handles=handles)
    category_ticks(ax, labels)
    return ax


def place_labels(ax: Axes, xs: list[float], ys: list[float], labels: list[str]) -> list[Any]:
    """Each label beside its point, moved (adjustText) until no two overlap, none covers a
    point and all stay inside the axes; a moved label is tied to its point by a line.
    Labels at a fixed offset ran into each other, the legend and past the axes' edge."""
    # Here: adjustText (and scipy under it) load when labels are placed, not on import.
    from adjustText import adjust_text  # type: ignore[import-untyped]

    texts = [ax.text(x, y, label, fontsize="small") for x, y, label in zip(xs, ys, labels,
                                                                             strict=True)]
    if texts:
        figure = ax.get_figure(root=True)
        assert figure is not None  # an Axes drawn on has its figure
        figure.draw_without_rendering()  # the layout first: labels are measured in it
        adjust_text(texts, x=xs, y=ys, ax=ax, ensure_inside_axes=True, expand_axes=False,
                    expand=(1.15, 1.6),  # a clear gap: a tie line never grazes a neighbour
                    arrowprops={"arrowstyle": "-", "color": INK, "linewidth": 0.6})
    return texts


def show_figure(ax: Axes) -> None:
    """Show the figure of ``ax`` once, as the theme-neutral PNG (core.figures)."""
    getattr(adopt(ax), "_ipython_display_")()  # noqa: B009 - set on the instance


def finish_axes(ax: Axes, title: str, runs: int | None, *, xlabel: str | None, ylabel: str) -> Axes:
    ax.set_title(title if runs is None else f"{title} ({runs} runs)")
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel)
    if runs == 0:  # say so, rather than leave an empty frame to puzzle over
        ax.text(0.5, 0.5, "no runs to show", transform=ax.transAxes, ha="center",
                va="center", color="grey")
    # The Axes is returned for composition, but a bare `wb.plots.tokens(df)` cell shows
    # the chart, not "<Axes: title=...>"; in a user's `plt.subplots`, or assigned, the
    # figure follows the theme too (core.figures says how).
    return adopt(ax)
