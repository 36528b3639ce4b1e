"""The token chart of a sweep's runs: mean prompt and completion tokens per knob
combination, as inline SVG for the sweep panel or as a PNG. matplotlib is imported when a
chart is drawn.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.core.figures import follow_theme
from workbench.sweeps.sidebyside import column_label  # the sweep table's and wb.compare's labels

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["token_usage_svg", "token_usage_png"]

_INK = "#010203"  # drawn in this colour, then given the theme's text colour in the SVG


def token_usage_svg(df: pd.DataFrame, knobs: Sequence[str]) -> str:
    """The token chart of :func:`token_usage_png` as inline SVG for a widget: sharp at any
    zoom, with a transparent background and text, axes and ticks in the surrounding
    text colour (``currentColor``), so it reads in the light and the dark theme."""
    from matplotlib import rc_context  # deferred: keeps import workbench light (matplotlib ~0.3 s)

    colours: dict[Any, Any] = {
        "text.color": _INK, "axes.labelcolor": _INK, "axes.edgecolor": _INK,
        "xtick.color": _INK, "ytick.color": _INK, "legend.labelcolor": _INK,
        "svg.fonttype": "none",  # text as text: it takes the theme's font and colour
    }
    buffer = io.StringIO()
    with rc_context(colours):
        _draw_tokens(df, knobs).savefig(buffer, format="svg", transparent=True)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):].replace(_INK, "currentColor")
    return (
        f'<div class="wb-chart" style="color: var(--jp-ui-font-color1); max-width: 720px">'
        f"{svg}</div>"
    )


def token_usage_png(df: pd.DataFrame, knobs: Sequence[str]) -> bytes:
    """Mean prompt and completion tokens per knob combination (``knobs`` name the
    columns of ``df`` that make one), as a transparent PNG bar chart with grey ink that
    reads on a light and a dark page (core.figures says why)."""
    figure = _draw_tokens(df, knobs)
    follow_theme(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=160, transparent=True)
    return buffer.getvalue()


def _draw_tokens(df: pd.DataFrame, knobs: Sequence[str]) -> Any:
    from matplotlib.figure import Figure  # deferred: keeps import workbench light (~0.5 s)

    labels = [column_label({k: row[k] for k in knobs}) or "all runs" for _, row in df.iterrows()]
    means = (
        df.assign(_label=labels)
        .groupby("_label", sort=False)[["prompt_tokens", "completion_tokens"]]
        .mean()
    )
    figure = Figure(figsize=(min(max(5.0, 1.2 * len(means)), 9.0), 3.2))
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
    ax.legend(loc="upper right", fontsize=8, ncols=2, frameon=False)
    figure.tight_layout()
    return figure
