"""``wb.leaderboard``: every variant of a sweep against one baseline, with intervals
that stay honest when many variants are compared at once.

Each variant's difference to the baseline is paired by test case: the repeats of a case
are averaged first, so the interval is clustered by case (Miller 2024, "Adding Error Bars
to Evals", arXiv 2411.00640, sections 2.2 and 3). The p-values of the paired t tests are
adjusted with Holm's step-down method (statsmodels ``multipletests``), and the variant
with the k-th smallest p-value of m gets the interval at Holm's level for that step,
alpha / (m - k + 1): the widest, alpha / m, goes to the most convincing variant.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.core.figures import adopt
from workbench.decide.variants import Variants, find_variant, store_of, variants_of

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from workbench.store import AnyStore

__all__ = ["Leaderboard", "leaderboard", "leaderboard_plot"]


@dataclass
class Leaderboard:
    """The result of :func:`leaderboard`: ``df`` has one row per variant, best first."""

    scorer: str
    baseline: str
    baseline_mean: float
    alpha: float
    method: str
    df: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def better(self) -> list[str]:
        return [v for v, d in zip(self.df["variant"], self.df["decision"], strict=True)
                if d == "better"]

    @property
    def worse(self) -> list[str]:
        return [v for v, d in zip(self.df["variant"], self.df["decision"], strict=True)
                if d == "worse"]

    def summary(self) -> str:
        """One line: which variants are decidedly better than the baseline."""
        m = len(self.df)
        level = f"{self.method}-adjusted, {m} comparison{'s' if m != 1 else ''}"
        if not self.better:
            return (f"No variant is decidedly better than {self.baseline} on {self.scorer}"
                    f" ({level}, alpha {self.alpha:g}).")
        names = ", ".join(self.better)
        return (f"Decidedly better than {self.baseline} on {self.scorer} ({level}, alpha"
                f" {self.alpha:g}): {names}.")

    def __str__(self) -> str:
        lines = [self.summary()]
        for row in self.df.to_dict("records"):
            lines.append(
                f"  {row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]"
                f" p_adj={row['p_adjusted']:.3g} {row['decision'] or ''} {row['variant']}"
            )
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        head = "".join(
            f"<th style='text-align:{a}'>{e(h)}</th>" for h, a in (
                ("variant", "left"), ("mean", "right"), ("difference", "right"),
                ("interval", "right"), ("p (adjusted)", "right"), ("cases", "right"),
                ("decision", "left")))
        body = []
        for row in self.df.to_dict("records"):
            colour = {"better": "--jp-success-color1", "worse": "--jp-error-color1"}.get(
                row["decision"], "--jp-ui-font-color1")
            body.append(
                "<tr>"
                f"<td style='text-align:left'>{e(row['variant'])}</td>"
                f"<td style='text-align:right'>{row['mean']:.3f}</td>"
                f"<td style='text-align:right;color:var({colour})'>{row['difference']:+.3f}</td>"
                f"<td style='text-align:right'>{row['low']:+.3f} to {row['high']:+.3f}</td>"
                f"<td style='text-align:right'>{row['p_adjusted']:.3g}</td>"
                f"<td style='text-align:right'>{row['cases']}</td>"
                f"<td style='text-align:left;color:var({colour})'>{e(row['decision'])}</td>"
                "</tr>")
        notes = "".join(f"<div style='color:var(--jp-warn-color1)'>{e(n)}</div>"
                        for n in self.notes)
        return (
            "<div style='color:var(--jp-ui-font-color1);font-family:var(--jp-ui-font-family)'>"
            f"<b>{e(self.summary())}</b><div>baseline {e(self.baseline)}: mean "
            f"{self.baseline_mean:.3f}</div><div style='overflow-x:auto'>"
            f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(body)}</table>"
            f"</div>{notes}</div>")

    def plot(self, ax: Axes | None = None) -> Axes:
        return leaderboard_plot(self, ax=ax)


def leaderboard(
    sweep: Any,
    *,
    scorer: str,
    baseline: Any,
    alpha: float = 0.05,
    method: str = "holm",
    store: AnyStore,
) -> Leaderboard:
    """Each variant of ``sweep`` (a Sweep, a runs DataFrame or an experiment name) against
    ``baseline`` (its knob values, ``{"system": "Be brief."}``, or its label) on the stored
    ``score:<scorer>``: the paired difference per test case, with an interval adjusted for
    the number of variants compared (``method``: any of statsmodels' ``multipletests``;
    Holm by default), sorted best first, with a one-line verdict (:meth:`summary`)."""
    if not isinstance(scorer, str) or not scorer:
        raise InvalidInputError("leaderboard needs scorer='<name>', e.g. scorer='contains'")
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise InvalidInputError(f"alpha must be a number between 0 and 1: {alpha!r}")
    variants = variants_of(sweep, scorer, store_of(sweep, store))
    base = find_variant(variants, baseline)
    others = [v for v in variants.labels if v != base]
    if not others:
        raise InvalidInputError("the sweep has one variant: sweep a knob (grid=...) to rank")
    return _rank(variants, base, others, alpha, method)


def _rank(variants: Variants, base: str, others: list[str], alpha: float,
          method: str) -> Leaderboard:
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    # deferred: keeps import workbench light (statsmodels.stats.multitest ~1.3 s)
    from statsmodels.stats.multitest import multipletests

    means = variants.case_means()
    notes: list[str] = []
    stats = []
    for variant in others:
        d = variants.paired_differences(variant, base)
        if len(d) < len(means):
            notes.append(f"{variant}: {len(means) - len(d)} cases without a pair left out")
        stats.append((variant, d))
    p_values = np.array([_p_value(d) for _, d in stats])
    reject, p_adjusted, _, _ = multipletests(p_values, alpha=alpha, method=method)
    # Holm's step for the k-th smallest p-value of m is alpha / (m - k + 1).
    m = len(stats)
    rank = np.empty(m, dtype=int)
    rank[np.argsort(p_values, kind="stable")] = np.arange(m)
    rows = []
    for i, (variant, d) in enumerate(stats):
        level = alpha / (m - rank[i]) if method == "holm" else alpha / m
        low, high = _interval(d, level)
        mean_d = float(np.mean(d)) if len(d) else math.nan
        decided = bool(reject[i])
        rows.append({
            "variant": variant,
            "mean": float(means[variant].mean()),
            "difference": mean_d,
            "low": low,
            "high": high,
            "p_value": float(p_values[i]),
            "p_adjusted": float(p_adjusted[i]),
            "decision": ("better" if mean_d > 0 else "worse") if decided else "",
            "cases": len(d),
            "confidence": 1 - level,
            **{f"knob:{k}": v for k, v in variants.knobs[variant].items()},
        })
    table = pd.DataFrame(rows).sort_values("difference", ascending=False, kind="stable")
    return Leaderboard(variants.scorer, base, float(means[base].mean()), alpha, method,
                       table.reset_index(drop=True), notes)


def _p_value(d: Any) -> float:
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    from scipy import stats  # deferred: keeps import workbench light (scipy ~0.9 s)

    if len(d) < 2:
        return 1.0
    if np.all(d == d[0]):  # no spread: t is undefined; no change is no evidence
        return 1.0 if d[0] == 0 else 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def _interval(d: Any, level: float) -> tuple[float, float]:
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    from scipy import stats  # deferred: keeps import workbench light (scipy ~0.9 s)

    if len(d) < 2:
        return math.nan, math.nan
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(confidence_level=1 - level)
    return float(ci.low), float(ci.high)


def leaderboard_plot(board: Leaderboard, *, ax: Axes | None = None) -> Axes:
    """Each variant's difference to the baseline as a dot with its adjusted interval,
    best at the top; green when decidedly better, red when decidedly worse."""
    import matplotlib.pyplot as plt  # deferred: keeps import workbench light (~0.6 s)

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(board.df) + 1.4))
    rows = board.df.iloc[::-1]  # best at the top
    y = list(range(len(rows)))
    colours = [{"better": "C2", "worse": "C3"}.get(d, "C7") for d in rows["decision"]]
    for yi, (low, high, c) in enumerate(zip(rows["low"], rows["high"], colours, strict=True)):
        ax.plot([low, high], [yi, yi], color=c, linewidth=2.5, solid_capstyle="butt")
    ax.scatter(rows["difference"], y, color=colours, zorder=3, s=30)
    ax.axvline(0, color="0.5", linewidth=0.8)
    ax.set_yticks(y, [v if len(v) <= 48 else v[:45] + "..." for v in rows["variant"]])
    ax.set_xlabel(f"difference to the baseline ({board.scorer}), {board.method}-adjusted")
    ax.set_title(board.summary(), fontsize="small", wrap=True)
    return adopt(ax)  # shown once, following the theme, also inside a user's figure
