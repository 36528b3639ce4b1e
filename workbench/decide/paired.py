"""``wb.compare_runs``: two sets of runs paired case by case, with honest statistics.

Runs pair on the test case (``item_id``, else the template variables), ``sample_index``,
and any knob that varies within a side (``temperature`` when both sides swept it), so the
same question asked the same way is compared with itself. The mean paired difference gets
a 95 % bootstrap interval (``scipy.stats.bootstrap``, paired, BCa) and a two-sided paired
permutation test (``scipy.stats.permutation_test``, ``permutation_type="samples"``: exact
up to 13 pairs). Both are seeded, so a notebook shows the same figures on every run.
"""

from __future__ import annotations

import html
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.core.figures import INK, adopt
from workbench.scoring.scored import case_of, scored_frame, scorer_name

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from workbench.store import AnyStore

__all__ = ["PairedComparison", "compare_runs", "paired_plot"]

# Knobs that may vary within a side; a knob that varies pairs runs only with its equal.
_KNOBS = ("model", "temperature", "top_p", "seed", "max_tokens", "system", "template")
_RESAMPLES = 9999
_SEED = 0


@dataclass
class PairedComparison:
    """The result of :func:`compare_runs`; figures are plain floats, ``None`` where they
    cannot be had (see ``notes``)."""

    scorer: str
    baseline_mean: float
    candidate_mean: float
    difference: float
    ci: tuple[float, float] | None
    p_value: float | None
    pairs: int
    flipped: list[dict[str, Any]]
    df: pd.DataFrame
    unpaired_baseline: list[str] = field(default_factory=list)
    unpaired_candidate: list[str] = field(default_factory=list)
    paired_on: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    baseline_name: str = "baseline"  # the experiment (or sweep) each side is
    candidate_name: str = "candidate"

    def __str__(self) -> str:
        ci = "n/a" if self.ci is None else f"[{self.ci[0]:+.3g}, {self.ci[1]:+.3g}]"
        p = "n/a" if self.p_value is None else f"{self.p_value:.3g}"
        return (
            f"{self.scorer}: baseline {self.baseline_name} {self.baseline_mean:.3g}, "
            f"candidate {self.candidate_name} {self.candidate_mean:.3g}, difference "
            f"{self.difference:+.3g} (95% CI {ci}, p = {p}) over {self.pairs} "
            f"pair{'s' if self.pairs != 1 else ''}; "
            f"{len(self.flipped)} flipped. {self.reading()}"
        )

    def reading(self) -> str:
        """How to read the interval beside the p-value: two methods, one sentence."""
        if self.ci is None or self.p_value is None:
            return ""
        text = ("The interval (bootstrap of the pairs' mean difference) and p (paired "
                "permutation test: how often swapping sides gives a difference this large) "
                "are two different methods")
        excludes_zero = self.ci[0] > 0 or self.ci[1] < 0
        if excludes_zero != (self.p_value < 0.05):
            zero = "excludes" if excludes_zero else "includes"
            return (text + f"; here they disagree (the interval {zero} 0, p = "
                    f"{self.p_value:.3g}): weak evidence either way, collect more cases.")
        return text + "; here they agree."

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        ci = "n/a" if self.ci is None else f"{self.ci[0]:+.3g} to {self.ci[1]:+.3g}"
        p = "n/a" if self.p_value is None else f"{self.p_value:.3g}"
        sign = ("--jp-success-color1" if self.difference > 0
                else "--jp-error-color1" if self.difference < 0 else "--jp-ui-font-color1")
        rows = [
            ("baseline", f"{e(self.baseline_name)} · mean {self.baseline_mean:.3g}"),
            ("candidate", f"{e(self.candidate_name)} · mean {self.candidate_mean:.3g}"),
            ("difference", f"<b style='color: var({sign})'>{self.difference:+.3g}</b>"),
            ("95 % interval (bootstrap)", ci),
            ("p-value (paired permutation)", p),
            ("pairs", str(self.pairs)),
            ("flipped", f"{len(self.flipped)} ({self._flip_counts()})"),
        ]
        unpaired = len(self.unpaired_baseline) + len(self.unpaired_candidate)
        if unpaired:
            rows.append(("unpaired runs",
                         f"{len(self.unpaired_baseline)} baseline, "
                         f"{len(self.unpaired_candidate)} candidate"))
        cells = "".join(
            f"<tr><td style='text-align:left;color:var(--jp-ui-font-color2)'>{e(k)}</td>"
            f"<td style='text-align:left'>{v}</td></tr>" for k, v in rows
        )
        notes = "".join(
            f"<div style='color:var(--jp-warn-color1)'>{e(n)}</div>" for n in self.notes
        )
        if self.reading():
            notes += f"<div style='color:var(--jp-ui-font-color2)'>{e(self.reading())}</div>"
        flips = "".join(
            f"<li>{e(readable_case(f['case'])[:80])}: "
            f"{'fixed' if f['candidate_passed'] else 'broken'}</li>" for f in self.flipped[:10]
        )
        more = f"<li>... {len(self.flipped) - 10} more in .flipped</li>" if len(
            self.flipped) > 10 else ""
        return (
            "<div style='color:var(--jp-ui-font-color1);font-family:var(--jp-ui-font-family)'>"
            f"<b>compare_runs · {e(self.scorer)}</b>"
            f"<table style='border-collapse:collapse'>{cells}</table>{notes}"
            + (f"<div style='margin-top:4px'>flipped cases</div>"
               f"<ul style='margin:2px 0'>{flips}{more}</ul>" if flips else "")
            + "</div>"
        )

    def _flip_counts(self) -> str:
        fixed = sum(1 for f in self.flipped if f["candidate_passed"])
        return f"{fixed} fixed, {len(self.flipped) - fixed} broken"

    def plot(self, ax: Axes | None = None) -> Axes:
        return paired_plot(self, ax=ax)


def readable_case(case: Any) -> str:
    """A case label as a person reads it: ``country = France, size = 3``, not JSON."""
    try:
        values = json.loads(case) if isinstance(case, str) else None
    except ValueError:
        values = None
    if isinstance(values, dict) and values:
        return ", ".join(f"{k} = {v}" for k, v in values.items())
    return str(case)


def side_name(data: Any, side: str) -> str:
    """What a side is called: its experiment name (a name, a Sweep's, or a runs frame's
    single experiment), else "baseline" / "candidate"."""
    if isinstance(data, str):
        return data
    experiment = getattr(data, "experiment", None)
    if isinstance(experiment, str):
        return experiment
    if experiment is not None and hasattr(experiment, "unique"):  # a runs DataFrame
        names = [str(n) for n in experiment.dropna().unique()]
        if len(names) == 1:
            return names[0]
        if names:
            return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
    return side


def compare_runs(
    baseline: Any, candidate: Any, *, scorer: str, store: AnyStore
) -> PairedComparison:
    """Compare ``candidate`` with ``baseline`` (Sweeps, runs DataFrames or experiment
    names) on ``score:<scorer>``, run paired with run."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    if not isinstance(scorer, str) or not scorer:
        raise InvalidInputError("compare_runs needs scorer='<name>', e.g. scorer='judge'")
    name = scorer_name(scorer)
    column = "score:" + name
    base = scored_frame(baseline, name, store, "baseline")
    cand = scored_frame(candidate, name, store, "candidate")
    base, cand = base[base[column].notna()], cand[cand[column].notna()]
    if base.empty or cand.empty:
        raise InvalidInputError(
            f"every {column!r} score of the {'baseline' if base.empty else 'candidate'} is"
            " missing: score the runs first with wb.score"
        )
    on = _varying_knobs(base, cand)
    notes: list[str] = []
    left = _keyed(base, on, "baseline", notes)
    right = _keyed(cand, on, "candidate", notes)
    shared = [k for k in left if k in right]
    unpaired_b = [left[k]["run_id"] for k in left if k not in right]
    unpaired_c = [right[k]["run_id"] for k in right if k not in left]
    if not shared:
        raise InvalidInputError(
            f"no run of the candidate answers the same test case as a run of the baseline"
            f" (paired on case, sample_index{''.join(', ' + k for k in on)}):"
            " compare sweeps of the same cases"
        )
    if unpaired_b or unpaired_c:
        notes.append(f"{len(unpaired_b)} baseline and {len(unpaired_c)} candidate runs have"
                     " no partner and are left out (.unpaired_baseline, .unpaired_candidate)")
    rows = [_pair_row(k, left[k], right[k], column, on) for k in shared]
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    table = pd.DataFrame(rows)
    b = table["baseline"].to_numpy(dtype="float64")
    c = table["candidate"].to_numpy(dtype="float64")
    d = c - b
    ci, p = _statistics(b, c, d, notes)
    flipped = [
        {"case": r["case"], "sample_index": r["sample_index"],
         "baseline_run_id": r["baseline_run_id"], "candidate_run_id": r["candidate_run_id"],
         "baseline_passed": r["baseline_passed"], "candidate_passed": r["candidate_passed"]}
        for r in rows if r["flipped"]
    ]
    return PairedComparison(
        scorer=name,
        baseline_mean=float(np.mean(b)),
        candidate_mean=float(np.mean(c)),
        difference=float(np.mean(d)),
        ci=ci,
        p_value=p,
        pairs=len(rows),
        flipped=flipped,
        df=table,
        unpaired_baseline=unpaired_b,
        unpaired_candidate=unpaired_c,
        paired_on=("case", "sample_index", *on),
        notes=notes,
        baseline_name=side_name(baseline, "baseline"),
        candidate_name=side_name(candidate, "candidate"),
    )


def _varying_knobs(*frames: pd.DataFrame) -> list[str]:
    """Knobs with more than one value within a side: a pair must agree on them."""
    out = []
    for knob in _KNOBS:
        if any(knob in f and f[knob].astype(str).nunique(dropna=False) > 1 for f in frames):
            out.append(knob)
    return out


def _keyed(frame: pd.DataFrame, on: list[str], side: str,
           notes: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Runs by pairing key; the latest of runs sharing a key (a replay, a re-run)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    repeated = 0
    for row in frame.to_dict("records"):
        key = (case_of(row), int(row.get("sample_index") or 0),
               *(str(row.get(k)) for k in on))
        repeated += key in out
        out[key] = row
    if repeated:
        notes.append(f"{repeated} {side} runs repeat a case already there: the latest kept")
    return out


def _pair_row(key: tuple[Any, ...], b: dict[str, Any], c: dict[str, Any], column: str,
              on: list[str]) -> dict[str, Any]:
    bp, cp = _passed(b, column), _passed(c, column)
    row = {
        "case": _case_label(b),
        "sample_index": key[1],
        **{k: b.get(k) for k in on},
        "baseline": float(b[column]),
        "candidate": float(c[column]),
        "difference": float(c[column]) - float(b[column]),
        "baseline_passed": bp,
        "candidate_passed": cp,
        "flipped": bp is not None and cp is not None and bp != cp,
        "baseline_run_id": b["run_id"],
        "candidate_run_id": c["run_id"],
        "baseline_output": b.get("output"),
        "candidate_output": c.get("output"),
    }
    return row


def _passed(row: dict[str, Any], column: str) -> bool | None:
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    passed = row.get("passed")
    if passed is None or pd.isna(passed):
        value = row[column]
        return None if pd.isna(value) else bool(value >= 1)
    return bool(passed)


def _case_label(row: dict[str, Any]) -> str:
    variables = row.get("variables")
    if isinstance(variables, str) and variables not in ("", "{}"):
        return variables
    return str(row.get("prompt") or row.get("item_id") or "")


def _statistics(b: Any, c: Any, d: Any,
                notes: list[str]) -> tuple[tuple[float, float] | None, float | None]:
    """The bootstrap interval and the permutation p-value of mean(c - b)."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    from scipy import stats  # deferred: keeps import workbench light (scipy ~0.9 s)

    n = len(d)
    if n < 2:
        notes.append("one pair: no interval or p-value can be had from a single difference")
        return None, None
    if np.all(d == d[0]):
        # Every resample gives the same mean: the interval is that point. With no
        # difference at all no sign flip can change it, so p is 1.
        point = float(d[0])
        if point == 0:
            return (0.0, 0.0), 1.0
        ci: tuple[float, float] = (point, point)
    else:
        ci = _bootstrap(b, c)

    def mean_difference(x: Any, y: Any, axis: int) -> Any:
        return np.mean(y - x, axis=axis)

    test = stats.permutation_test(
        (b, c), mean_difference, permutation_type="samples", vectorized=True,
        n_resamples=_RESAMPLES, alternative="two-sided", rng=np.random.default_rng(_SEED),
    )
    return ci, float(min(1.0, test.pvalue))


def _bootstrap(b: Any, c: Any) -> tuple[float, float]:
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    from scipy import stats  # deferred: keeps import workbench light (scipy ~0.9 s)

    def mean_difference(x: Any, y: Any, axis: int) -> Any:
        return np.mean(y - x, axis=axis)

    for method in ("BCa", "percentile"):  # BCa is NaN on degenerate few-pair samples
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap(
                (b, c), mean_difference, paired=True, vectorized=True,
                n_resamples=_RESAMPLES, confidence_level=0.95, method=method,
                rng=np.random.default_rng(_SEED),
            )
        low, high = float(result.confidence_interval.low), float(
            result.confidence_interval.high)
        if not (math.isnan(low) or math.isnan(high)):
            return low, high
    return math.nan, math.nan


def paired_plot(result: PairedComparison, *, ax: Axes | None = None) -> Axes:
    """Each pair's difference (candidate - baseline) as a dot, the mean as a line with its
    95 % interval as a band."""
    import matplotlib.pyplot as plt  # deferred: keeps import workbench light (~0.6 s)
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    if not isinstance(result, PairedComparison):
        raise InvalidInputError("wb.plots.paired takes the result of wb.compare_runs")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    d = result.df["difference"].to_numpy(dtype="float64")
    order = np.argsort(d, kind="stable")
    x = np.arange(len(d))
    colours = np.where(d[order] > 0, "C2", np.where(d[order] < 0, "C3", "C7"))
    ax.scatter(x, d[order], c=list(colours), s=18, zorder=3,
               label="pair (green: candidate better, red: worse)")
    ax.axhline(0, color=INK, linewidth=0.8)
    ax.axhline(result.difference, color="C0", linewidth=1.5,
               label=f"mean {result.difference:+.3g}")
    if result.ci is not None:
        ax.axhspan(result.ci[0], result.ci[1], color="C0", alpha=0.15,
                   label=f"95% CI [{result.ci[0]:+.3g}, {result.ci[1]:+.3g}]")
    ax.set_xlabel("pairs, sorted by difference")
    ax.set_ylabel(f"candidate - baseline ({result.scorer})")
    p = "n/a" if result.p_value is None else f"{result.p_value:.3g}"
    ax.set_title(f"{result.pairs} pair{'s' if result.pairs != 1 else ''}, p = {p}")
    legend = ax.legend(loc="best", fontsize="small")
    pair = legend.legend_handles[0]
    if pair is not None:  # not the first pair's colour: any pair
        pair.set(color=INK)
    return adopt(ax)  # a bare cell shows the chart; it follows the theme wherever drawn
