"""``wb.agreement``: how far two scorers agree on the same runs (a judge and a person).

Cohen's kappa from the confusion matrix: 1 - sum(w * observed) / sum(w * expected by
chance), with w the disagreement weights. Pass/fail (when either scorer gives only 0 and
1, or its verdicts are compared) uses plain weights (0 on the diagonal, 1 off it); ordinal
grades use quadratic weights ((i - j) / (K - 1))^2 over the grades seen, so 4 against 5
costs less than 1 against 5. Written out rather than taken from scikit-learn, which would
be a large dependency for one formula.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.scoring.engine import runs_to_score
from workbench.scoring.scored import scorer_name, stored_passes
from workbench.scoring.table import latest_ids

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["Agreement", "agreement", "cohen_kappa"]


def cohen_kappa(a: list[float], b: list[float], *, weights: str | None = None) -> float:
    """Cohen's kappa of two raters' labels; ``weights="quadratic"`` for ordinal grades.
    NaN when chance alone explains everything (both raters gave one label)."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    labels = sorted(set(a) | set(b))
    index = {v: i for i, v in enumerate(labels)}
    k = len(labels)
    observed = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        observed[index[x], index[y]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    i, j = np.indices((k, k))
    if weights == "quadratic":
        w = ((i - j) / max(k - 1, 1)) ** 2
    elif weights is None:
        w = (i != j).astype(float)
    else:
        raise InvalidInputError(f"weights is 'quadratic' or None, not {weights!r}")
    chance = float((w * expected).sum())
    if chance == 0:
        return math.nan
    return 1.0 - float((w * observed).sum()) / chance


@dataclass
class Agreement:
    a: str
    b: str
    kappa: float
    weights: str | None
    n: int
    confusion: pd.DataFrame
    disagreements: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        kind = "quadratic-weighted" if self.weights else "plain"
        return (f"{self.a} vs {self.b}: Cohen's kappa {self.kappa:.3g} ({kind}) over {self.n}"
                f" runs, {len(self.disagreements)} disagree")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        notes = "".join(f"<div style='color:var(--jp-warn-color1)'>{html.escape(n)}</div>"
                        for n in self.notes)
        return (
            "<div style='color:var(--jp-ui-font-color1)'>"
            f"<b>{html.escape(str(self))}</b>{notes}"
            f"<div>rows: {html.escape(self.a)}, columns: {html.escape(self.b)}</div>"
            f"{self.confusion.to_html()}</div>"
        )


def agreement(
    a: str = "judge", b: str = "human", *, data: Any = None, store: AnyStore
) -> Agreement:
    """Agreement between the latest scores of scorers ``a`` and ``b`` on the runs both
    scored (only the runs of ``data`` when given: a Sweep, runs DataFrame or experiment)."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    a, b = scorer_name(a), scorer_name(b)
    ids = latest_ids(store)
    for name in (a, b):
        if name not in ids:
            raise InvalidInputError(
                f"no {name!r} scores are stored: score the runs first (scorers so far: "
                f"{', '.join(sorted(ids)) or 'none'})"
            )
    values = {name: {run_id: value for run_id, value, _ in store.score_values(ids[name])
                     if value is not None} for name in (a, b)}
    runs = sorted(set(values[a]) & set(values[b]))
    if data is not None:
        wanted = set(runs_to_score(data, store)["run_id"].tolist())
        runs = [r for r in runs if r in wanted]
    if not runs:
        raise InvalidInputError(f"no run has both a {a!r} and a {b!r} score")
    va = [float(values[a][r]) for r in runs]
    vb = [float(values[b][r]) for r in runs]
    notes: list[str] = []
    binary = {0.0, 1.0}
    if set(va) <= binary and set(vb) <= binary:
        weights = None
    elif set(va) <= binary or set(vb) <= binary:
        # A pass/fail rater against a graded one: compare their verdicts.
        pa, pb = stored_passes(store, a), stored_passes(store, b)
        runs = [r for r in runs if pa.get(r) is not None and pb.get(r) is not None]
        va = [float(bool(pa[r])) for r in runs]
        vb = [float(bool(pb[r])) for r in runs]
        weights = None
        notes.append("one scale is pass/fail: the verdicts (passed) are compared")
    else:
        weights = "quadratic"
    kappa = cohen_kappa(va, vb, weights=weights)
    if math.isnan(kappa):
        notes.append("kappa is undefined: both gave one and the same label to every run")
    # Pass/fail verdicts read as words in the matrix, not 0.0 and 1.0.
    words: dict[float, Any] = {0.0: "fail", 1.0: "pass"} if weights is None else {}
    labels = [words.get(v, v) for v in sorted(set(va) | set(vb))]
    confusion = pd.crosstab(
        pd.Categorical([words.get(v, v) for v in va], categories=labels),
        pd.Categorical([words.get(v, v) for v in vb], categories=labels),
        rownames=[a], colnames=[b], dropna=False,
    )
    differ = [r for r, x, y in zip(runs, va, vb, strict=True) if x != y]
    disagree = pd.DataFrame(_prompts_and_outputs(store, differ),
                            columns=["run_id", "prompt", "output"])
    disagree[a] = disagree["run_id"].map(values[a])
    disagree[b] = disagree["run_id"].map(values[b])
    return Agreement(a, b, kappa, weights, len(runs), confusion,
                     disagree.reset_index(drop=True), notes)


def _prompts_and_outputs(store: Any, run_ids: list[str]) -> list[tuple[Any, ...]]:
    """(run_id, prompt, output) of the given runs, in their order."""
    return list(store.run_texts(run_ids))
