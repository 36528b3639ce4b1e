"""A sweep's runs grouped into variants (one combination of the swept knobs each) and
test cases, for the leaderboard, the sequential run, the cheapest setup and the cascade.

A variant is named by its knob values, as the user names a baseline:
``{"system": "Be brief."}`` picks the variant whose ``system`` is that text. A case is a
test case (``item_id``, else the template variables, else the prompt); repeats of a case
(``sample_index``) are averaged within the case, so a case counts once however many
repeats it has (clustered by case, Miller 2024 section 2.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.scoring.scored import case_of, scored_frame, scorer_name

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.session import Session
    from workbench.store import AnyStore

__all__ = ["Variants", "variants_of", "knobs_of", "label_of", "find_variant", "session_of",
           "store_of"]

# Knobs that may tell variants apart when the data is a runs table, not a Sweep.
KNOBS = ("model", "system", "template", "temperature", "top_p", "seed", "max_tokens",
         "provider", "reasoning_effort")


def session_of(data: Any, session: Session) -> Session:
    """The session whose store holds the runs of ``data``: a Sweep's own, else ``session``
    (the caller's; the façade gives the notebook's)."""
    found = getattr(data, "session", None)
    return session if found is None else found


def store_of(data: Any, store: AnyStore) -> AnyStore:
    """The store that holds the runs of ``data``: a Sweep's own, else ``store``."""
    found = getattr(data, "session", None)
    return store if found is None else found.store


def knobs_of(data: Any, frame: pd.DataFrame) -> list[str]:
    """The knobs that tell variants apart: a Sweep's grid, else the knobs that vary."""
    grid = getattr(data, "grid", None)
    if isinstance(grid, Mapping) and grid:
        return [k for k in grid if k in frame.columns]
    return [k for k in KNOBS if k in frame.columns
            and frame[k].astype(str).nunique(dropna=False) > 1]


def label_of(knobs: Mapping[str, Any]) -> str:
    if not knobs:
        return "all runs"
    return " · ".join(f"{k}={_short(v)}" for k, v in knobs.items())


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class Variants:
    """Per-run rows (``variant``, ``case``, ``sample_index``, ``value``, the knobs and the
    run's usage) and the variants' knob values by label, in the sweep's order."""

    runs: pd.DataFrame
    knobs: dict[str, dict[str, Any]]
    scorer: str

    @property
    def labels(self) -> list[str]:
        return list(self.knobs)

    def case_means(self) -> pd.DataFrame:
        """One row per case, one column per variant: the mean score over repeats."""
        table = self.runs.pivot_table(index="case", columns="variant", values="value",
                                      aggfunc="mean")
        return table.reindex(columns=[v for v in self.labels if v in table.columns])

    def paired_differences(self, variant: str, baseline: str) -> Any:
        """Each case's (variant - baseline) mean score, over the cases both have."""
        means = self.case_means()
        both = means[[variant, baseline]].dropna()
        return (both[variant] - both[baseline]).to_numpy(dtype="float64")


def variants_of(data: Any, scorer: str, store: AnyStore, *,
                scored: bool = True) -> Variants:
    """The runs of ``data`` with their ``score:<scorer>`` as ``value`` (``scored=False``:
    every ok run, ``value`` NaN where there is no score), grouped by variant."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    name = scorer_name(scorer)
    if scored:
        frame = scored_frame(data, name, store, "sweep")
        frame = frame[frame["score:" + name].notna()]
    else:
        frame = scored_frame(data, None, store, "sweep")
    if frame.empty:
        raise InvalidInputError(f"no run has a {'score:' + name!r} score: score the sweep"
                                " first with wb.score(sweep, ...) or scorers=[...]")
    knobs = knobs_of(data, frame)
    rows = frame.to_dict("records")
    cases = [case_of(r) for r in rows]
    keyed = [{k: r.get(k) for k in knobs} for r in rows]
    labels = [label_of(k) for k in keyed]
    out = pd.DataFrame({
        "variant": labels,
        "case": cases,
        "sample_index": [int(r.get("sample_index") or 0) for r in rows],
        "value": pd.to_numeric(frame.get("score:" + name, pd.Series(float("nan"),
                                         index=frame.index)), errors="coerce").to_numpy(),
    })
    for column in ("run_id", "model", "provider", "prompt_tokens", "completion_tokens",
                   "cached_tokens", "cost_usd", "output", *knobs):
        if column in frame.columns and column not in out.columns:
            out[column] = frame[column].to_numpy()
    order: dict[str, dict[str, Any]] = {}
    for label, k in zip(labels, keyed, strict=True):
        order.setdefault(label, k)
    return Variants(out, order, name)


def find_variant(variants: Variants | Sequence[str], which: Any, knobs: Mapping[str,
                 Mapping[str, Any]] | None = None, *, what: str = "baseline") -> str:
    """The label of the one variant ``which`` names: its label, or a dict of knob values
    (``{"system": "Be brief."}``) that only it matches."""
    if isinstance(variants, Variants):
        labels, knobs = variants.labels, variants.knobs
    else:
        labels = list(variants)
    if isinstance(which, str) and which in labels:
        return which
    if isinstance(which, Mapping) and knobs is not None:
        matches = [label for label in labels
                   if all(str(knobs[label].get(k)) == str(v) for k, v in which.items())]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidInputError(
                f"{what}={dict(which)!r} matches {len(matches)} variants: name more knobs,"
                f" e.g. {matches[0]!r}")
    raise InvalidInputError(
        f"{what}={which!r} names no variant; the variants are: "
        + "; ".join(repr(label) for label in labels[:8]) + (" ..." if len(labels) > 8 else "")
        + f". Give {what} as a dict of knob values, e.g. {what}={{'model': ...}}")
