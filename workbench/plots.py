"""Figures of the experiment table: tokens, cost, latency, length, diversity, grids, embeddings.

Each takes the runs DataFrame (``wb.runs()``) or anything holding one in ``.df`` (a Sweep),
draws on ``ax`` (a new figure when None) and returns the matplotlib Axes.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

from .compare import _column, _frame, _groups
from .display import format_cost, shorten, show

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from matplotlib.axes import Axes

    from .logprobs import LogprobsView

    Floats = npt.NDArray[np.float64]
    Codes = npt.NDArray[np.int64]

__all__ = [
    "tokens", "cost", "latency", "length", "diversity", "heatmap", "embeddings", "outcomes",
    "logprobs", "scores", "pareto", "paired",
]

_MAX_TICK_LABELS = 20  # beyond this, every k-th label: 50 overlapping labels read as none
_MAX_POINTS = 300  # beyond this many runs, boxes alone: thousands of dots are a smear
_MAX_NOTES = 12  # beyond this many groups, numbers printed on bars overlap
_MAX_POINT_LABELS = 40
_TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens",
                  "total_tokens", "max_tokens")
_UNITS = {**dict.fromkeys(_TOKEN_COLUMNS, "tokens"), "cost_usd": "USD", "latency_s": "s",
          "ttft_s": "s"}


# ---------------------------------------------------------------------- the plots


def tokens(
    data: Any, by: str | None = "temperature", hue: str | None = "model", *, ax: Axes | None = None
) -> Axes:
    """Mean prompt (hatched) and completion tokens per run, one stacked bar per group."""
    import numpy as np
    from matplotlib.patches import Patch

    df = _runs(data)
    groups, labels = _codes(df, by)
    hue = None if hue == by else hue
    hues, hue_labels = _codes(df, hue)
    ax = _axes(ax, len(labels) * len(hue_labels))
    means = df[["prompt_tokens", "completion_tokens"]].astype("float64").groupby([groups, hues])
    grid = np.full((2, len(hue_labels), len(labels)), np.nan)
    for (g, h), row in means.mean().iterrows():
        grid[:, h, g] = row.to_numpy()
    width = 0.8 / max(len(hue_labels), 1)
    colors = _colors(len(hue_labels))
    for h, color in enumerate(colors):
        x = np.arange(len(labels)) + (h - (len(hue_labels) - 1) / 2) * width
        prompt, completion = grid[:, h]
        ax.bar(x, prompt, width, color=color if hue else "C0", alpha=0.45, hatch="//",
               edgecolor=color if hue else "C0", label="prompt tokens")
        ax.bar(x, completion, width, bottom=np.nan_to_num(prompt),
               color=color if hue else "C1", label="completion tokens")
    if hue:
        handles = [Patch(facecolor=c, label=n) for c, n in zip(colors, hue_labels, strict=True)]
        handles += [Patch(facecolor="white", edgecolor="grey", hatch="//", label="prompt"),
                    Patch(facecolor="grey", label="completion")]
        _legend(ax, handles=handles, title=hue, ncols=1 + len(handles) // 24)
    else:
        _legend(ax)
    _category_ticks(ax, labels)
    return _finish(ax, f"Prompt and completion tokens by {by or 'run'}", len(df),
                   xlabel=by, ylabel="tokens per run (mean)")


def cost(data: Any, by: str | None = "model", *, ax: Axes | None = None) -> Axes:
    """Total dollars per group (bars), dollars per priced run (printed on each bar), and
    runs whose price is unknown (hatched, with a count): unknown is never drawn as $0."""
    import numpy as np

    df = _runs(data, kind=None)  # embedding calls cost money too
    groups, labels = _codes(df, by)
    ax = _axes(ax, len(labels))
    usd = df["cost_usd"].astype("float64").to_numpy()
    known = ~np.isnan(usd)
    totals = np.bincount(groups, weights=np.where(known, usd, 0.0), minlength=len(labels))
    priced = np.bincount(groups, weights=known, minlength=len(labels)).astype(int)
    runs = np.bincount(groups, minlength=len(labels))
    ax.bar(np.arange(len(labels)), totals, 0.7, color="C0", label="total of priced runs", zorder=2)
    top = float(totals.max()) if len(totals) and totals.max() > 0 else 1e-4
    ax.set_ylim(0, top * 1.35)  # room for the numbers above the bars
    few = len(labels) <= _MAX_NOTES
    unknown = runs - priced
    flagged = np.flatnonzero(unknown)
    for i in flagged:
        # A hatched column over the whole height, whatever the scale: "unknown", not "small".
        ax.axvspan(i - 0.4, i + 0.4, facecolor="none", edgecolor="C3", hatch="xx", alpha=0.6,
                   zorder=1, label=f"runs with unknown cost ({unknown.sum()})"
                   if i == flagged[0] else "_nolegend_")
        if few:
            ax.text(float(i), 0.97, f"{unknown[i]} of {runs[i]} unknown", color="C3", ha="center",
                    va="top", transform=ax.get_xaxis_transform(), fontsize="small",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    for i in np.flatnonzero(priced) if few else []:
        per_run = format_cost(totals[i] / priced[i])
        ax.annotate(f"{format_cost(totals[i])}\n{per_run}/run", (i, totals[i]), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize="small")
    if len(flagged):
        _legend(ax)
    _category_ticks(ax, labels)
    spent = format_cost(float(totals.sum()))
    title = f"Cost by {by or 'run'}: {spent} for {int(priced.sum())} priced runs"
    return _finish(ax, title, len(df), xlabel=by, ylabel="total cost (USD)")


def latency(data: Any, by: str | None = "model", *, ax: Axes | None = None) -> Axes:
    """Distribution of wall time per run and, where streamed, of time to first token."""
    df = _runs(data)
    # A replay's latency is the store's read time (0), not the API's: leave replays out.
    df = df[~df["cache_hit"].eq(True)] if "cache_hit" in df else df
    series = [("latency", df["latency_s"])]
    if "ttft_s" in df and df["ttft_s"].notna().any():
        series.append(("time to first token", df["ttft_s"]))
    ax = _boxes(ax, df, by, series)
    return _finish(ax, f"Latency by {by or 'run'}", len(df), xlabel=by, ylabel="seconds (s)")


def length(data: Any, by: str | None = "model", *, ax: Axes | None = None) -> Axes:
    """Distribution of output length per run, in tokens and in words."""
    df = _runs(data)
    # A refusal is not a short answer: it is left out of the lengths and counted apart.
    refused = _refused(df)
    df = df[~refused]
    words = df["output"].map(lambda text: len(text.split()) if isinstance(text, str) else None)
    series = [("completion tokens", df["completion_tokens"]), ("words", words)]
    ax = _boxes(ax, df, by, series)
    title = f"Output length by {by or 'run'}"
    if refused.any():
        title += f"; {int(refused.sum())} refusals left out"
    return _finish(ax, title, len(df), xlabel=by, ylabel="output length (tokens, words)")


def outcomes(data: Any, by: str | None = "model", *, ax: Axes | None = None) -> Axes:
    """How the runs of each group ended, counted: each finish reason, ``refusal`` (the
    model declined: not an empty answer), ``empty`` (no text, no tool call) and ``error``."""
    import numpy as np
    import pandas as pd

    frame = _frame(data)
    ok = _runs(data)
    failed = frame[frame["status"].eq("error")] if "status" in frame else frame.iloc[:0]
    if "kind" in failed:
        failed = failed[failed["kind"].eq("chat")]
    df = pd.concat([ok, failed])
    kinds = np.array([_outcome(row) for _, row in ok.iterrows()] + ["error"] * len(failed))
    groups, labels = _codes(df, by)
    names = sorted(set(kinds), key=lambda k: (k in ("refusal", "empty", "error"), k))
    ax = _axes(ax, len(labels))
    bottom = np.zeros(len(labels))
    for j, name in enumerate(names):
        counts = np.bincount(groups[kinds == name], minlength=len(labels))
        ax.bar(np.arange(len(labels)), counts, 0.7, bottom=bottom, color=f"C{j}", label=name)
        bottom += counts
    if names:
        _legend(ax, title="outcome")
    _category_ticks(ax, labels)
    return _finish(ax, f"Outcomes by {by or 'run'}", len(df), xlabel=by, ylabel="runs")


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
    import pandas as pd

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
    import numpy as np

    df = _answered(_runs(data))
    groups, labels = _codes(df, by)
    ax = _axes(ax, 2 * len(labels))
    texts: list[str] = df["output"].tolist()
    scores = np.full((2, len(labels)), np.nan)
    if texts:
        from . import embed

        unique = list(dict.fromkeys(texts))
        vectors = embed(unique, model=model).vectors
        index = {text: i for i, text in enumerate(unique)}
        rows = np.array([index[text] for text in texts])
        for g in range(len(labels)):
            members = np.flatnonzero(groups == g)
            scores[0, g] = _distinct_2([texts[i] for i in members])
            scores[1, g] = _mean_cosine_distance(vectors[rows[members]])
    x = np.arange(len(labels))
    for j, name in enumerate(("distinct-2", "mean cosine distance")):
        ax.bar(x + (j - 0.5) * 0.4, scores[j], 0.4, color=f"C{j}", label=name)
    ax.set_ylim(0, max(1.05, float(np.nanmax(scores, initial=0)) * 1.1))
    _legend(ax)
    _category_ticks(ax, labels)
    return _finish(ax, f"Output diversity by {by or 'run'}", len(df), xlabel=by,
                   ylabel="diversity (unitless, 0 = identical)")


def heatmap(
    data: Any, x: str = "temperature", y: str = "top_p", value: str = "completion_tokens",
    *, agg: str = "mean", ax: Axes | None = None,
) -> Axes:
    """A grid of ``x`` by ``y`` knobs, each cell the ``agg`` (mean, median, ...) of ``value``
    (a score column too: ``value="score:judge"``)."""
    import numpy as np
    import pandas as pd

    if value.startswith("score:"):
        from .scoring.plots import scored_runs

        df = scored_runs(data, value)
    else:
        df = _runs(data)
    xs, x_labels = _codes(df, x)
    ys, y_labels = _codes(df, y)
    ax = _axes(ax, len(x_labels))
    values = pd.to_numeric(_column(df, value), errors="coerce").astype("float64")
    grid = np.full((len(y_labels), len(x_labels)), np.nan)
    for (row, col), cell in values.groupby([ys, xs]).agg(agg).items():
        grid[row, col] = cell
    if grid.size:  # an empty image is a singular transform, not an empty picture
        image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto")
        unit = _UNITS.get(value)
        ax.figure.colorbar(image, ax=ax, label=f"{agg} {value}" + (f" ({unit})" if unit else ""))
    if len(x_labels) <= _MAX_NOTES and len(y_labels) <= _MAX_NOTES:  # else numbers overlap
        middle = np.nanmean(grid) if np.isfinite(grid).any() else 0.0
        for (row, col), cell in np.ndenumerate(grid):
            if not np.isnan(cell):  # dark text on the bright end of viridis, light on the dark
                ax.text(col, row, f"{cell:.3g}", ha="center", va="center", fontsize="small",
                        color="black" if cell > middle else "white")
    _category_ticks(ax, x_labels)
    _category_ticks(ax, y_labels, axis="y")
    return _finish(ax, f"{agg.capitalize()} {value} by {x} and {y}", len(df), xlabel=x, ylabel=y)


def embeddings(
    data: Any, *, hue: str | None = None, model: str | None = None, ax: Axes | None = None
) -> Axes:
    """Embedded texts projected to 2-D (PCA), each point labelled with its text.

    ``data`` is an embed result (anything with ``.texts`` and ``.vectors``) or runs, whose
    outputs are then embedded with ``wb.embed`` and coloured by the ``hue`` column.
    """
    import numpy as np

    hues: Codes | None = None
    if hasattr(data, "texts") and hasattr(data, "vectors"):
        texts = [str(t) for t in data.texts]
        vectors = np.asarray(data.vectors, dtype=np.float64)
    else:
        from . import embed

        df = _answered(_runs(data))
        texts = df["output"].tolist()
        vectors = embed(texts, model=model).vectors if texts else np.zeros((0, 2))
        if hue is not None:
            hues, hue_labels = _codes(df, hue)
    ax = _axes(ax)
    points, explained = _pca_2d(vectors)
    if hues is None:
        ax.scatter(points[:, 0], points[:, 1], color="C0")
    else:
        for h, (color, name) in enumerate(zip(_colors(len(hue_labels)), hue_labels, strict=True)):
            chosen = hues == h
            ax.scatter(points[chosen, 0], points[chosen, 1], color=color, label=name)
        _legend(ax, title=hue)
    if len(texts) <= _MAX_POINT_LABELS:
        labelled: set[str] = set()
        for (px, py), text in zip(points, texts, strict=True):
            if text not in labelled:  # equal texts share a point: label it once
                labelled.add(text)
                ax.annotate(shorten(text, 25), (px, py), xytext=(4, 4),
                            textcoords="offset points", fontsize="small")
    ax.margins(0.15)  # room for the labels of the outermost points
    return _finish(ax, f"Embeddings: 2-D PCA of {len(texts)} texts", None,
                   xlabel=f"PC1 ({explained[0]:.0%} of variance)",
                   ylabel=f"PC2 ({explained[1]:.0%} of variance)")


def logprobs(run: Any) -> LogprobsView:
    """A run's answer token by token, each shaded by its probability, alternatives on
    hover and listed (an HTML view, not Axes). ``run``: a ChatResponse, a %%chat result,
    a row of ``wb.runs()`` or a run_id, asked with ``logprobs=True`` / ``--logprobs N``."""
    from .logprobs import logprobs_view
    from .session import get_session

    # The top floor reaches the session; logprobs is given the store's lookup.
    return logprobs_view(run, get_session().store.find_run if isinstance(run, str) else None)


# ---------------------------------------------------------------------- measures


def _distinct_2(texts: list[str]) -> float:
    """Unique word bigrams / all word bigrams, pairs counted within each text."""
    words = [text.lower().split() for text in texts]
    pairs = [pair for each in words for pair in zip(each, each[1:], strict=False)]
    return len(set(pairs)) / len(pairs) if pairs else math.nan


def _mean_cosine_distance(vectors: Floats) -> float:
    """Mean of 1 - cos over all pairs; nan for fewer than two vectors."""
    import numpy as np

    n = len(vectors)
    if n < 2:
        return math.nan
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    # The sum of v_i . v_j over i != j is |sum v|^2 - sum |v|^2: O(n d), not an n x n matrix.
    total = unit.sum(axis=0)
    off_diagonal = float(total @ total - (unit * unit).sum())
    return max(0.0, 1.0 - off_diagonal / (n * (n - 1)))


def _pca_2d(vectors: Floats) -> tuple[Floats, tuple[float, float]]:
    """The first two principal components (numpy SVD) and their share of the variance."""
    import numpy as np

    points = np.zeros((len(vectors), 2))
    if len(vectors) < 2:
        return points, (0.0, 0.0)
    centred = vectors - vectors.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:2]
    # SVD's signs are arbitrary; fixing them keeps a re-run's picture the same way round.
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    points[:, : len(components)] = centred @ (components * signs[:, None]).T
    variance = np.append(singular**2, [0.0, 0.0])  # fewer than two components: 0% for PC2
    share = variance / variance.sum() if variance.sum() > 0 else variance
    return points, (float(share[0]), float(share[1]))


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
    from .scoring.plots import scores as _scores

    return _scores(data, by, scorer, hue, ax=ax)


def pareto(
    data: Any, quality: str = "score:judge", cost: str = "cost_usd", *, ax: Axes | None = None
) -> Axes:
    """Mean ``quality`` against mean ``cost`` per knob combination, the Pareto front marked."""
    from .scoring.plots import pareto as _pareto

    return _pareto(data, quality, cost, ax=ax)


def paired(result: Any, *, ax: Axes | None = None) -> Axes:
    """The per-pair differences of a ``wb.compare_runs`` result, and their mean with its
    95 % interval."""
    from .scoring.paired import paired_plot

    return paired_plot(result, ax=ax)


# ---------------------------------------------------------------------- shared helpers


def _runs(data: Any, kind: str | None = "chat") -> pd.DataFrame:
    """The successful runs of ``kind``, each answer once.

    Errors have no output, tokens or price to plot. A replay repeats a run: it is dropped
    where its original is in the frame too, and replays of one request count once, so
    re-running a notebook does not make its outputs look less diverse.
    """
    import pandas as pd

    df = _frame(data)
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


def _answered(df: pd.DataFrame) -> pd.DataFrame:
    """The runs with a non-blank output: an empty answer has no words or meaning to compare."""
    blank = df["output"].map(lambda text: not isinstance(text, str) or not text.strip())
    return df.loc[~blank.astype(bool)]


def _codes(df: pd.DataFrame, column: str | None) -> tuple[Codes, list[str]]:
    """Each row's group number and the groups' labels, numbers in numeric order and the
    runs where the knob was not sent last (``None``: one group of all runs)."""
    if column is None:
        import numpy as np

        return np.zeros(len(df), dtype=np.int64), ["all runs"]
    codes, values = _groups(df, column)
    return codes, [_label(value) for value in values]


def _label(value: Any) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return f"{float(value):g}"
    return shorten(str(value), 30)


def _colors(n: int) -> list[Any]:
    import matplotlib as mpl

    palette = mpl.colormaps["tab10" if n <= 10 else "viridis"]
    return [palette(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


def _axes(ax: Axes | None, slots: int = 1) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    width = min(14.0, max(7.5, 4.0 + 0.3 * slots))  # wider for many groups, within reason
    _, new = plt.subplots(figsize=(width, 4.8), layout="constrained")
    return new


def _category_ticks(ax: Axes, labels: list[str], axis: str = "x") -> None:
    """One tick per group, thinned to every k-th label and slanted when they would crowd."""
    step = max(1, math.ceil(len(labels) / _MAX_TICK_LABELS))
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


def _legend(ax: Axes, **kwargs: Any) -> None:
    # Outside, on the right: inside, it hides the bars of whichever group it lands on.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", **kwargs)


def _boxes(
    ax: Axes | None, df: pd.DataFrame, by: str | None, series: list[tuple[str, pd.Series]]
) -> Axes:
    """Side-by-side boxes (one per series) for each group, with the runs as dots when few."""
    import numpy as np
    from matplotlib.patches import Patch

    groups, labels = _codes(df, by)
    ax = _axes(ax, len(labels) * len(series))
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
                       manage_ticks=False, showfliers=len(df) > _MAX_POINTS,
                       boxprops={"facecolor": color, "alpha": 0.5},
                       medianprops={"color": "black"}, flierprops={"markersize": 2})
        if len(df) <= _MAX_POINTS:
            ax.scatter(positions[groups] + jitter, values, s=10, color=color, zorder=3)
        handles.append(Patch(facecolor=color, alpha=0.5, label=name))
    _legend(ax, handles=handles)
    _category_ticks(ax, labels)
    return ax


def _show_figure(ax: Axes) -> None:
    import matplotlib.pyplot as plt

    from .figures import ThemedFigure

    figure = ax.get_figure(root=True)
    if figure is not None:  # shown once: the inline backend would show it again at cell end
        show(ThemedFigure(figure))  # not a white box in the dark theme
        plt.close(figure)


def _finish(ax: Axes, title: str, runs: int | None, *, xlabel: str | None, ylabel: str) -> Axes:
    # The Axes is returned for composition, but a bare `wb.plots.tokens(df)` cell should
    # show the chart, not "<Axes: title=...>" above it. IPython asks an object for
    # `_ipython_display_` before any repr, and asks the instance, so only our Axes change
    # (no global formatter for every matplotlib Axes in the kernel).
    setattr(ax, "_ipython_display_", lambda: _show_figure(ax))  # noqa: B010 - not an Axes field
    ax.set_title(title if runs is None else f"{title} ({runs} runs)")
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel)
    if runs == 0:  # say so, rather than leave an empty frame to puzzle over
        ax.text(0.5, 0.5, "no runs to show", transform=ax.transAxes, ha="center",
                va="center", color="grey")
    return ax
