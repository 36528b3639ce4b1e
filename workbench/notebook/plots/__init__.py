"""Figures of the experiment table: tokens, cost, latency, length, diversity, grids, embeddings.

Each takes the runs (a runs DataFrame such as ``wb.runs()``, a Sweep, an experiment name
or run ids: :class:`~workbench.core.selection.RunsSelection`), draws on ``ax`` (a new
figure when None) and returns the matplotlib Axes. Their shared helpers are in
:mod:`.base`, the figures of scores in :mod:`.scores`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.core.figures import KEEP_COLOUR
from workbench.notebook.display import format_cost, shorten
from workbench.notebook.pivot import column, runs_of

# Loaded here, before the functions below take the names ``scores``: the submodule
# ``scores`` would otherwise replace the function ``scores`` on this package when first
# imported.
from workbench.notebook.plots import scores as score_figures
from workbench.notebook.plots.base import (
    MAX_NOTES,
    MAX_POINT_LABELS,
    UNITS,
    answered,
    box_plot,
    category_ticks,
    finish_axes,
    group_codes,
    new_axes,
    palette,
    place_labels,
    plottable_runs,
    side_legend,
)
from workbench.notebook.plots.measures import distinct_2, mean_cosine_distance, pca_2d
from workbench.notebook.plots.scores import scored_runs

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from matplotlib.axes import Axes

    from workbench.calls.logprobs import LogprobsView

    Codes = npt.NDArray[np.int64]

__all__ = [
    "tokens", "cost", "latency", "length", "diversity", "heatmap", "embeddings", "outcomes",
    "logprobs", "scores", "pareto", "paired",
]

# ---------------------------------------------------------------------- the plots

# The API's finish reasons, as a reader says them.
OUTCOME_WORDS = {"stop": "finished", "length": "cut at max tokens", "tool_calls": "tool call",
                 "function_call": "tool call", "content_filter": "content filter",
                 "unknown": "no finish reason", "refusal": "refused"}


def tokens(
    data: Any, by: str | None = "temperature", hue: str | None = "model", *, ax: Axes | None = None
) -> Axes:
    """Mean prompt (hatched) and completion tokens per run, one stacked bar per group."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    from matplotlib.patches import Patch  # deferred: keeps import workbench light (~0.3 s)

    df = plottable_runs(data)
    groups, labels = group_codes(df, by)
    hue = None if hue == by else hue
    hues, hue_labels = group_codes(df, hue)
    ax = new_axes(ax, len(labels) * len(hue_labels))
    means = df[["prompt_tokens", "completion_tokens"]].astype("float64").groupby([groups, hues])
    grid = np.full((2, len(hue_labels), len(labels)), np.nan)
    for (g, h), row in means.mean().iterrows():
        grid[:, h, g] = row.to_numpy()
    width = 0.8 / max(len(hue_labels), 1)
    colors = palette(len(hue_labels))
    for h, color in enumerate(colors):
        x = np.arange(len(labels)) + (h - (len(hue_labels) - 1) / 2) * width
        prompt, completion = grid[:, h]
        ax.bar(x, prompt, width, color=color if hue else "C0", alpha=0.45, hatch="//",
               edgecolor=color if hue else "C0", label="prompt tokens")
        ax.bar(x, completion, width, bottom=np.nan_to_num(prompt),
               color=color if hue else "C1", label="completion tokens")
    if hue:
        handles = [Patch(facecolor=c, label=n) for c, n in zip(colors, hue_labels, strict=True)]
        handles += [Patch(facecolor="none", edgecolor="grey", hatch="//", label="prompt"),
                    Patch(facecolor="grey", label="completion")]
        side_legend(ax, handles=handles, title=hue, ncols=1 + len(handles) // 24)
    else:
        side_legend(ax)
    category_ticks(ax, labels)
    return finish_axes(ax, f"Prompt and completion tokens by {by or 'run'}", len(df),
                   xlabel=by, ylabel="tokens per run (mean)")


def cost(data: Any, by: str | None = "model", *, ax: Axes | None = None) -> Axes:
    """Total dollars per group (bars), dollars per priced run (printed on each bar), and
    runs whose price is unknown (hatched, with a count): unknown is never drawn as $0."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    df = plottable_runs(data, kind=None)  # embedding calls cost money too
    groups, labels = group_codes(df, by)
    ax = new_axes(ax, len(labels))
    usd = df["cost_usd"].astype("float64").to_numpy()
    known = ~np.isnan(usd)
    totals = np.bincount(groups, weights=np.where(known, usd, 0.0), minlength=len(labels))
    priced = np.bincount(groups, weights=known, minlength=len(labels)).astype(int)
    runs = np.bincount(groups, minlength=len(labels))
    ax.bar(np.arange(len(labels)), totals, 0.7, color="C0", label="total of priced runs", zorder=2)
    top = float(totals.max()) if len(totals) and totals.max() > 0 else 1e-4
    ax.set_ylim(0, top * 1.35)  # room for the numbers above the bars
    few = len(labels) <= MAX_NOTES
    unknown = runs - priced
    flagged = np.flatnonzero(unknown)
    for i in flagged:
        # A hatched column over the whole height, whatever the scale: "unknown", not "small".
        ax.axvspan(i - 0.4, i + 0.4, facecolor="none", edgecolor="C3", hatch="xx", alpha=0.6,
                   zorder=1, label=f"runs with unknown cost ({unknown.sum()})"
                   if i == flagged[0] else "_nolegend_")
        if few:
            ax.text(float(i), 0.97, f"{unknown[i]} of {runs[i]} unknown", color="C3", ha="center",
                    va="top", transform=ax.get_xaxis_transform(), fontsize="small")
    free = bool(priced.sum()) and not totals.any()
    if free:  # not an empty frame with 0.00012 ticks: say it
        ax.set_yticks([0], ["$0"])
        ax.text(0.5, 0.5, f"all {int(priced.sum())} priced runs were free ($0)",
                transform=ax.transAxes, ha="center", va="center")
    for i in np.flatnonzero(priced) if few and not free else []:
        per_run = format_cost(totals[i] / priced[i])
        ax.annotate(f"{format_cost(totals[i])}\n{per_run}/run", (i, totals[i]), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize="small")
    if len(flagged):
        side_legend(ax)
    category_ticks(ax, labels)
    spent = format_cost(float(totals.sum()))
    title = f"Cost by {by or 'run'}: {spent} for {int(priced.sum())} priced runs"
    return finish_axes(ax, title, len(df), xlabel=by, ylabel="total cost (USD)")


def latency(data: Any, by: str | None = "model", *, ax: Axes | None = None) -> Axes:
    """Distribution of wall time per run and, where streamed, of time to first token."""
    df = plottable_runs(data)
    # A replay's latency is the store's read time (0), not the API's: leave replays out.
    df = df[~df["cache_hit"].eq(True)] if "cache_hit" in df else df
    series = [("latency", df["latency_s"])]
    if "ttft_s" in df and df["ttft_s"].notna().any():
        series.append(("time to first token", df["ttft_s"]))
    ax = box_plot(ax, df, by, series)
    return finish_axes(ax, f"Latency by {by or 'run'}", len(df), xlabel=by, ylabel="seconds (s)")


def length(data: Any, by: str | None = "model", *, ax: Axes | None = None) -> Axes:
    """Distribution of output length per run, in tokens and in words."""
    df = plottable_runs(data)
    # A refusal is not a short answer: it is left out of the lengths and counted apart.
    refused = _refused(df)
    df = df[~refused]
    words = df["output"].map(lambda text: len(text.split()) if isinstance(text, str) else None)
    series = [("completion tokens", df["completion_tokens"]), ("words", words)]
    ax = box_plot(ax, df, by, series)
    title = f"Output length by {by or 'run'}"
    if refused.any():
        title += f"; {int(refused.sum())} refusals left out"
    return finish_axes(ax, title, len(df), xlabel=by, ylabel="output length (tokens, words)")


def outcomes(data: Any, by: str | None = "model", *, ax: Axes | None = None) -> Axes:
    """How the runs of each group ended, counted: each finish reason, ``refusal`` (the
    model declined: not an empty answer), ``empty`` (no text, no tool call) and ``error``."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)
    from matplotlib.ticker import MaxNLocator  # deferred: keeps import workbench light (~0.3 s)

    frame = runs_of(data)
    ok = plottable_runs(frame)
    failed = frame[frame["status"].eq("error")] if "status" in frame else frame.iloc[:0]
    if "kind" in failed:
        failed = failed[failed["kind"].eq("chat")]
    df = pd.concat([ok, failed])
    kinds = np.array([_outcome(row) for _, row in ok.iterrows()] + ["error"] * len(failed))
    groups, labels = group_codes(df, by)
    names = sorted(set(kinds), key=lambda k: (k in ("refusal", "empty", "error"), k))
    ax = new_axes(ax, len(labels))
    bottom = np.zeros(len(labels))
    for j, name in enumerate(names):
        counts = np.bincount(groups[kinds == name], minlength=len(labels))
        ax.bar(np.arange(len(labels)), counts, 0.7, bottom=bottom, color=f"C{j}",
               label=OUTCOME_WORDS.get(name, name))
        bottom += counts
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # runs are counted whole
    if names:
        side_legend(ax, title="outcome")
    category_ticks(ax, labels)
    return finish_axes(ax, f"Outcomes by {by or 'run'}", len(df), xlabel=by, ylabel="runs")


def _outcome(row: Any) -> str:
    refusal = row.get("refusal")
    if isinstance(refusal, str) and refusal:
        return "refusal"
    output, calls = row.get("output"), row.get("tool_calls")
    if (not isinstance(output, str) or not output.strip()) and not isinstance(calls, str):
        return "empty"
    reason = row.get("finish_reason")
    return str(reason) if isinstance(reason, str) and reason else "unknown"


def _refused(df: pd.DataFrame) -> pd.Series:
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    if "refusal" not in df:
        return pd.Series(False, index=df.index)
    return df["refusal"].map(lambda text: isinstance(text, str) and bool(text)).astype(bool)


def diversity(
    data: Any, by: str | None = "temperature", *, model: str | None = None, ax: Axes | None = None
) -> Axes:
    """How different the outputs within each group are: distinct-2 (unique word pairs /
    all word pairs) and the mean pairwise cosine distance of their embeddings.

    Outputs are embedded with ``wb.embed`` (``model``: its embedding model), so vectors
    are cached and the call is logged like any other.
    """
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    df = answered(plottable_runs(data))
    groups, labels = group_codes(df, by)
    ax = new_axes(ax, 2 * len(labels))
    texts: list[str] = df["output"].tolist()
    scores = np.full((2, len(labels)), np.nan)
    if texts:
        unique = list(dict.fromkeys(texts))
        vectors = _embed(unique, model).vectors
        index = {text: i for i, text in enumerate(unique)}
        rows = np.array([index[text] for text in texts])
        for g in range(len(labels)):
            members = np.flatnonzero(groups == g)
            scores[0, g] = distinct_2([texts[i] for i in members])
            scores[1, g] = mean_cosine_distance(vectors[rows[members]])
    x = np.arange(len(labels))
    for j, name in enumerate(("distinct-2", "mean cosine distance")):
        ax.bar(x + (j - 0.5) * 0.4, scores[j], 0.4, color=f"C{j}", label=name)
    ax.set_ylim(0, max(1.05, float(np.nanmax(scores, initial=0)) * 1.1))
    side_legend(ax)
    category_ticks(ax, labels)
    return finish_axes(ax, f"Output diversity by {by or 'run'}", len(df), xlabel=by,
                   ylabel="diversity (unitless, 0 = identical)")


def heatmap(
    data: Any, x: str = "temperature", y: str = "top_p", value: str = "completion_tokens",
    *, agg: str = "mean", ax: Axes | None = None,
) -> Axes:
    """A grid of ``x`` by ``y`` knobs, each cell the ``agg`` (mean, median, ...) of ``value``
    (a score column too: ``value="score:judge"``)."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    df = scored_runs(data, value) if value.startswith("score:") else plottable_runs(data)
    xs, x_labels = group_codes(df, x)
    ys, y_labels = group_codes(df, y)
    ax = new_axes(ax, len(x_labels))
    values = pd.to_numeric(column(df, value), errors="coerce").astype("float64")
    grid = np.full((len(y_labels), len(x_labels)), np.nan)
    for (row, col), cell in values.groupby([ys, xs]).agg(agg).items():
        grid[row, col] = cell
    if grid.size:  # an empty image is a singular transform, not an empty picture
        image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto")
        unit = UNITS.get(value)
        ax.figure.colorbar(image, ax=ax, label=f"{agg} {value}" + (f" ({unit})" if unit else ""))
    if len(x_labels) <= MAX_NOTES and len(y_labels) <= MAX_NOTES:  # else numbers overlap
        middle = np.nanmean(grid) if np.isfinite(grid).any() else 0.0
        for (row, col), cell in np.ndenumerate(grid):
            if not np.isnan(cell):  # dark text on the bright end of viridis, light on the dark
                ax.text(col, row, f"{cell:.3g}", ha="center", va="center", fontsize="small",
                        color="black" if cell > middle else "white", gid=KEEP_COLOUR)
    category_ticks(ax, x_labels)
    category_ticks(ax, y_labels, axis="y")
    return finish_axes(ax, f"{agg.capitalize()} {value} by {x} and {y}", len(df), xlabel=x,
                       ylabel=y)


def embeddings(
    data: Any, *, hue: str | None = None, model: str | None = None, ax: Axes | None = None
) -> Axes:
    """Embedded texts projected to 2-D (PCA), each point labelled with its text.

    ``data`` is an embed result (anything with ``.texts`` and ``.vectors``) or runs, whose
    outputs are then embedded with ``wb.embed`` and coloured by the ``hue`` column.
    """
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    hues: Codes | None = None
    if hasattr(data, "texts") and hasattr(data, "vectors"):
        texts = [str(t) for t in data.texts]
        vectors = np.asarray(data.vectors, dtype=np.float64)
    else:
        df = answered(plottable_runs(data))
        texts = df["output"].tolist()
        vectors = _embed(texts, model).vectors if texts else np.zeros((0, 2))
        if hue is not None:
            hues, hue_labels = group_codes(df, hue)
    ax = new_axes(ax)
    points, explained = pca_2d(vectors)
    if hues is None:
        ax.scatter(points[:, 0], points[:, 1], color="C0")
    else:
        for h, (color, name) in enumerate(zip(palette(len(hue_labels)), hue_labels, strict=True)):
            chosen = hues == h
            ax.scatter(points[chosen, 0], points[chosen, 1], color=color, label=name)
        side_legend(ax, title=hue)
    ax.margins(0.15)  # room for the labels of the outermost points
    if len(texts) <= MAX_POINT_LABELS:
        first = {text: i for i, text in reversed(list(enumerate(texts)))}  # equal texts
        chosen = sorted(first.values())  # share a point: label it once
        place_labels(ax, [float(points[i, 0]) for i in chosen],
                     [float(points[i, 1]) for i in chosen],
                     [shorten(texts[i], 25) for i in chosen])
    return finish_axes(ax, f"Embeddings: 2-D PCA of {len(texts)} texts", None,
                   xlabel=f"PC1 ({explained[0]:.0%} of variance)",
                   ylabel=f"PC2 ({explained[1]:.0%} of variance)")


def _embed(texts: list[str], model: str | None) -> Any:
    """``wb.embed`` of ``texts``: cached and logged like any call. Here, not at the top:
    the embedding client and the session load only when a plot embeds (``wb.plots`` is
    the top floor, so it reaches the session)."""
    # local: keeps the name out of the package's namespace
    from workbench.calls.embedding import embed

    # local: keeps the name out of the package's namespace
    from workbench.calls.session import get_session

    return embed(get_session(), texts, model=model)


def logprobs(run: Any) -> LogprobsView:
    """A run's answer token by token, each shaded by its probability, alternatives on
    hover and listed (an HTML view, not Axes). ``run``: a ChatResponse, a %%chat result,
    a row of ``wb.runs()`` or a run_id, asked with ``logprobs=True`` / ``--logprobs N``."""
    # local: keeps the name out of the package's namespace
    from workbench.calls.logprobs import logprobs_view

    # local: keeps the name out of the package's namespace
    from workbench.calls.session import get_session

    # The top floor reaches the session; logprobs is given the store's lookup.
    return logprobs_view(run, get_session().store.find_run if isinstance(run, str) else None)


def scores(
    data: Any,
    by: str | None = "temperature",
    scorer: str | None = None,
    hue: str | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Mean score (pass rate for yes/no scorers) per group of ``by``, with 95 % intervals;
    ``scorer`` picks one ``score:<name>`` column (None: every scorer of the runs)."""
    return score_figures.scores(data, by, scorer, hue, ax=ax)


def pareto(
    data: Any, quality: str = "score:judge", cost: str = "cost_usd", *, ax: Axes | None = None
) -> Axes:
    """Mean ``quality`` against mean ``cost`` per knob combination, the Pareto front marked."""
    return score_figures.pareto(data, quality, cost, ax=ax)


def paired(result: Any, *, ax: Axes | None = None) -> Axes:
    """The per-pair differences of a ``wb.compare_runs`` result, and their mean with its
    95 % interval."""
    # local: keeps the name out of the package's namespace
    from workbench.decide.paired import paired_plot

    return paired_plot(result, ax=ax)
