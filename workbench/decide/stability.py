"""``wb.stability``: how much the answers move when the same request is repeated.

One row per knob combination that has repeats (``sample_index`` > 0 or ``repeats=``):
pass@k is the chance that at least one of k answers passes, by the unbiased estimator of
Chen et al. 2021 (1 - C(n-c, k) / C(n, k) per test case, averaged); pass^k is the chance
that all k pass (C(c, k) / C(n, k)); ``distinct`` is the share of distinct answers among
the repeats of a case; ``score_std`` the spread (standard deviation) of the scores within
a case. A ``system_fingerprint`` that changed within a combination is flagged as
``drift``: the provider changed the model's backend between the repeats.
"""

from __future__ import annotations

from math import comb
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.scoring.scored import case_of, scored_frame, scorer_name

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["stability", "pass_at_k", "pass_hat_k"]

_KNOBS = ("model", "system", "template", "temperature", "top_p", "seed", "max_tokens")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed: 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise InvalidInputError(f"pass@k needs k <= the number of repeats ({n}), not {k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k, all of k samples pass, unbiased from n samples with c passes: C(c,k)/C(n,k)."""
    if k > n:
        raise InvalidInputError(f"pass^k needs k <= the number of repeats ({n}), not {k}")
    return comb(c, k) / comb(n, k)


def stability(
    data: Any, *, scorer: str | None = None, k: int | None = None,
    store: AnyStore,
) -> pd.DataFrame:
    """Per knob combination with repeats: cases, repeats, k, pass@k, pass^k (with a
    ``scorer``), distinct (share of distinct answers), score_std, fingerprints, drift.
    ``k`` defaults to the fewest repeats of a case in the combination."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    from workbench.core.resultframe import result_frame  # imports pandas: not at the top

    if k is not None and (not isinstance(k, int) or k < 1):
        raise InvalidInputError(f"k is a number of repeats, 1 or more, not {k!r}")
    name = scorer_name(scorer) if scorer else None
    frame = scored_frame(data, name, store, "data")
    column = f"score:{name}" if name else None
    knobs = [c for c in _KNOBS if c in frame.columns]
    frame = frame.assign(_case=[case_of(r) for r in frame.to_dict("records")])
    rows = []
    groups = (
        # Keys as text, missing ones too: groupby drops a key that is NaN (pandas 3's str
        # dtype keeps None as NaN), and an unsent knob is a value here like any other.
        [g for _, g in frame.groupby(
            [pd.Series([str(v) for v in frame[c].tolist()], index=frame.index) for c in knobs],
            sort=False)]
        if knobs else [frame]
    )
    for group in groups:
        cases = list(group.groupby("_case", sort=False))
        sizes = [len(g) for _, g in cases]
        if max(sizes) < 2:
            continue
        first = group.iloc[0]
        row: dict[str, Any] = {c: first[c] for c in knobs}
        k_here = k if k is not None else min(sizes)
        row.update(cases=len(cases), repeats=int(np.median(sizes)), k=k_here)
        if column is not None:
            at, hat, spread = [], [], []
            for _, g in cases:
                values = g[column].dropna().astype("float64")
                passes = g["passed"].dropna()
                n = len(passes)
                if n >= k_here:
                    c = int(passes.astype(bool).sum())
                    at.append(pass_at_k(n, c, k_here))
                    hat.append(pass_hat_k(n, c, k_here))
                if len(values) > 1:
                    spread.append(float(values.std(ddof=1)))
            row["pass@k"] = float(np.mean(at)) if at else float("nan")
            row["pass^k"] = float(np.mean(hat)) if hat else float("nan")
            row["score_std"] = float(np.mean(spread)) if spread else float("nan")
        row["distinct"] = float(np.mean([
            g["output"].astype(str).nunique() / len(g) for _, g in cases
        ]))
        prints = sorted({str(f) for f in group.get("system_fingerprint", pd.Series(
            dtype=object)).dropna().tolist()})
        row["fingerprints"] = len(prints)
        row["drift"] = len(prints) > 1
        rows.append(row)
    if not rows:
        raise InvalidInputError(
            "no test case was asked more than once: run the sweep with repeats=N (N >= 2)"
        )
    table = pd.DataFrame(rows)
    # A knob no run sent (top_p, seed...) is noise in every row: left out.
    unsent = [c for c in knobs if table[c].isna().all()]
    return result_frame(table.drop(columns=unsent))  # shown formatted, a DataFrame to code
