"""Sequential sweeps: ``s.run(until="decided", baseline=..., scorer=...)`` sends the test
cases in a random order, in waves, to every variant still undecided and to the baseline;
after each wave it updates an anytime-valid confidence sequence on each variant's paired
difference to the baseline (:mod:`.confidence_sequence`) and stops sending a variant once
it is decided better, decided worse, or futile (it cannot be ``margin`` better).

Each variant's sequence is at level alpha / (number of variants), so the chance that any
variant is ever declared better or worse when none differs stays at most alpha, however
many waves are looked at. Scores must lie in [0, 1] (pass/fail, or a 0-1 grade).

The sweep runs each wave as an ordinary run of a subset of its planned points, so a
resumed or replayed sequential run answers from the table what it already has, and the
sweep's budget is kept across waves.
"""

from __future__ import annotations

import html
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.core.money import NO_MATHS_CLASS, format_money
from workbench.decide.confidence_sequence import EmpiricalBernsteinCS
from workbench.decide.variants import find_variant, label_of
from workbench.scoring import scorers as builtin
from workbench.scoring.base import Scorer, as_scorer
from workbench.scoring.calls import ModelCalls
from workbench.scoring.engine import score_within

if TYPE_CHECKING:
    import pandas as pd

    from workbench.sweeps.sweep import Sweep

__all__ = ["SequentialTest", "Decision", "run_until_decided", "simulate"]

STATES = ("better", "worse", "futile")


class SequentialTest:
    """The decisions alone, with no sweep: feed each variant's paired differences in
    the order the cases were sent; a decided variant takes no more."""

    def __init__(self, variants: Sequence[str], *, alpha: float = 0.05,
                 margin: float | None = None, v_opt: float = 30.0) -> None:
        each = alpha / max(1, len(variants))  # Bonferroni over variants: anytime-valid too
        self.margin = margin
        self.sequences = {v: EmpiricalBernsteinCS(-1.0, 1.0, each, v_opt) for v in variants}
        self.states: dict[str, str] = {v: "undecided" for v in variants}

    @property
    def undecided(self) -> list[str]:
        return [v for v, s in self.states.items() if s == "undecided"]

    def update(self, variant: str, differences: Sequence[float]) -> str:
        if self.states[variant] != "undecided" or not differences:
            return self.states[variant]
        low, high = self.sequences[variant].update(list(differences))
        if low > 0:
            self.states[variant] = "better"
        elif high < 0:
            self.states[variant] = "worse"
        elif self.margin is not None and high < self.margin:
            self.states[variant] = "futile"
        return self.states[variant]


def simulate(baseline_rate: float, variant_rates: Sequence[float], *, cases: int = 600,
             wave: int = 30, runs: int = 1000, alpha: float = 0.05,
             margin: float | None = None, seed: int = 0,
             shared: float = 0.0) -> dict[str, Any]:
    """Simulated sequential runs with no server: each case passes or fails with the given
    rates (``shared``: the share of cases whose outcome is one draw for every variant, as
    an easy or hard case is for every prompt). Returns the share of runs that declared
    each state for any variant, and the mean share of the full grid's calls made."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    rng = np.random.default_rng(seed)
    names = [f"v{i}" for i in range(len(variant_rates))]
    declared = {state: 0 for state in STATES}
    used = []
    v_opt = _v_opt(cases)
    for _ in range(runs):
        common = rng.random(cases)
        is_shared = rng.random(cases) < shared
        draws = {n: np.where(is_shared, common, rng.random(cases)) for n in ["base", *names]}
        base = (draws["base"] < baseline_rate).astype(float)
        outcome = {n: (draws[n] < r).astype(float) for n, r in zip(names, variant_rates,
                                                                     strict=True)}
        test = SequentialTest(names, alpha=alpha, margin=margin, v_opt=v_opt)
        calls = 0
        for start in range(0, cases, wave):
            active = test.undecided
            if not active:
                break
            stop = min(cases, start + wave)
            calls += (stop - start) * (len(active) + 1)
            for n in active:
                test.update(n, (outcome[n][start:stop] - base[start:stop]).tolist())
        for state in STATES:
            declared[state] += any(s == state for s in test.states.values())
        used.append(calls / (cases * (len(names) + 1)))
    return {"runs": runs, **{s: declared[s] / runs for s in STATES},
            "share_of_calls": float(np.mean(used))}


def _v_opt(cases: int) -> float:
    """Where the boundary is tightest: intrinsic time near a tenth of the cases (pass/fail
    differences have a variance of about 0.3-0.5; decisions come after 20-40 % of cases
    when a difference is worth finding)."""
    return max(10.0, cases / 10)


@dataclass
class VariantOutcome:
    variant: str
    state: str
    cases: int
    mean_difference: float
    low: float
    high: float


@dataclass
class Decision:
    """What a sequential run decided; ``s.decision`` after ``s.run(until="decided")``."""

    baseline: str
    scorer: str
    alpha: float
    margin: float | None
    variants: list[VariantOutcome]
    calls_planned: int
    calls_made: int
    dollars_not_spent: float | None
    waves: int
    notes: list[str] = field(default_factory=list)

    @property
    def better(self) -> list[str]:
        return [v.variant for v in self.variants if v.state == "better"]

    @property
    def calls_not_made(self) -> int:
        return self.calls_planned - self.calls_made

    def summary(self) -> str:
        states = "; ".join(f"{v.variant} {v.state} after {v.cases} cases" for v in self.variants)
        money = ("" if self.dollars_not_spent is None
                 else f", about {format_money(self.dollars_not_spent)} not spent")
        return (f"Against {self.baseline} on {self.scorer}: {states}. {self.calls_made} of"
                f" {self.calls_planned} calls made ({self.calls_not_made} not needed{money}).")

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td style='text-align:left'>{e(v.variant)}</td><td>{e(v.state)}</td>"
            f"<td style='text-align:right'>{v.cases}</td>"
            f"<td style='text-align:right'>{v.mean_difference:+.3f}</td>"
            f"<td style='text-align:right'>{v.low:+.3f} to {v.high:+.3f}</td></tr>"
            for v in self.variants)
        money = ("unknown" if self.dollars_not_spent is None
                 else format_money(self.dollars_not_spent))
        return (
            f"<div class='{NO_MATHS_CLASS}' style='color:var(--jp-ui-font-color1)'>"
            f"<b>Sequential run against {e(self.baseline)} ({e(self.scorer)}, alpha"
            f" {self.alpha:g})</b><table><tr><th>variant</th><th>decision</th><th>cases</th>"
            f"<th>difference</th><th>anytime interval</th></tr>{rows}</table>"
            f"<div>{self.calls_made} of {self.calls_planned} calls made;"
            f" {self.calls_not_made} not needed, about {e(money)} not spent.</div></div>")


def _resolve_scorer(s: Sweep, scorer: Any) -> Any:
    """A scorer object: one given, one of the sweep's by name, or a built-in by name
    that needs no argument (``"contains"`` checks the expected answer)."""
    if not isinstance(scorer, str):
        return as_scorer(scorer)
    if s.scoring is not None:
        for each in s.scoring.scorers:
            if each.name == scorer:
                return each
    factory = getattr(builtin, scorer, None)
    if callable(factory):
        try:
            made = factory()
        except TypeError:
            made = None
        if isinstance(made, Scorer):
            return made
    raise InvalidInputError(
        f"scorer={scorer!r} is not one of the sweep's scorers nor a built-in that needs no"
        " argument: pass the scorer itself, e.g. scorer=wb.scorers.contains('Paris')")


def _case_key(planned: Any) -> str:
    record = planned.prepared.record
    if record.item_id:
        return str(record.item_id)
    return json.dumps(planned.point.variables, sort_keys=True, default=str)


def run_until_decided(
    s: Sweep,
    *,
    until: str = "decided",
    mode: str = "live",
    baseline: Any,
    scorer: Any,
    alpha: float = 0.05,
    margin: float | None = None,
    wave: int | None = None,
    seed: int = 0,
    progress: bool = True,
    on_progress: Callable[[Any], None] | None = None,
) -> pd.DataFrame:
    """The body of ``Sweep.run(until="decided", ...)``; see the module docstring.
    ``wave``: cases per wave (default a twentieth of them, at least 10); ``seed`` fixes
    the random order of the cases, so a resumed run sends the same waves."""
    if mode != "live":
        raise InvalidInputError("a sequential run decides between live waves: mode='live'")
    if until != "decided":
        raise InvalidInputError(f"until={until!r}: the one stopping rule is until='decided'")
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise InvalidInputError(f"alpha must be a number between 0 and 1: {alpha!r}")
    if margin is not None and not (isinstance(margin, (int, float)) and 0 <= margin <= 1):
        raise InvalidInputError(f"margin must be a difference between 0 and 1: {margin!r}")
    chosen = _resolve_scorer(s, scorer)
    plan = list(s._plan)  # noqa: SLF001 - the planned points, each run by identity
    knobs = list(s.grid)
    label_of_run = {p.identity: label_of({k: p.point.knobs.get(k) for k in knobs}) for p in plan}
    case_of_run = {p.identity: _case_key(p) for p in plan}
    by_label: dict[str, dict[str, Any]] = {}
    for p in plan:
        by_label.setdefault(label_of_run[p.identity], {k: p.point.knobs.get(k) for k in knobs})
    base = find_variant(list(by_label), baseline, by_label)
    others = [v for v in by_label if v != base]
    if not others:
        raise InvalidInputError("a sequential run compares variants: sweep a knob (grid=...)")
    cases = list(dict.fromkeys(case_of_run[p.identity] for p in plan))
    random.Random(seed).shuffle(cases)
    size = wave or max(10, math.ceil(len(cases) / 20))
    test = SequentialTest(others, alpha=alpha, margin=margin, v_opt=_v_opt(len(cases)))
    budget, waves = s.budget, 0
    try:
        for start in range(0, len(cases), size):
            active = set(test.undecided)
            if not active:
                break
            chunk = cases[start:start + size]
            wanted = set(chunk)
            ids = {i for i in label_of_run if case_of_run[i] in wanted
                   and label_of_run[i] in active | {base}}
            _run_points(s, plan, ids, budget, progress, on_progress)
            waves += 1
            values = _wave_scores(s, ids, chosen, score_within)
            for variant in sorted(active):
                d = [values[(variant, c)] - values[(base, c)] for c in chunk
                     if (variant, c) in values and (base, c) in values]
                if any(not -1 <= x <= 1 for x in d):
                    raise InvalidInputError(
                        f"{chosen.name} scores outside 0-1: a sequential run needs pass/fail"
                        " or 0-1 scores")
                test.update(variant, d)
            _say(s, f"wave {waves}: {len(others) - len(test.undecided)} of {len(others)}"
                    " variants decided")
    finally:
        s.budget = budget
        s._plan = plan  # noqa: SLF001
    s.decision = _decision(s, test, base, chosen.name, alpha, margin, plan, label_of_run, waves)
    _say(s, s.decision.summary())
    return s.df


def _run_points(s: Sweep, plan: list[Any], ids: set[Any], budget: Any, progress: bool,
                on_progress: Any) -> None:
    """One wave: an ordinary run of the sweep with its plan cut to ``ids`` (what is in
    the table already is replayed, not sent), its budget what is left of it."""
    if budget is not None:
        spent = _spent(s)
        s.budget = max(type(budget)(0), budget - type(budget)(str(spent)))
    s._plan = [p for p in plan if p.identity in ids]  # noqa: SLF001
    try:
        s.run(progress=progress, on_progress=on_progress)
    finally:
        s._plan = plan  # noqa: SLF001


def _spent(s: Sweep) -> float:
    df = s.df
    if df.empty or "cost_usd" not in df:
        return 0.0
    if "cache_hit" in df:  # a replayed answer cost nothing this time
        df = df[~df["cache_hit"].fillna(False).astype(bool)]
    return float(df["cost_usd"].fillna(0).sum())


def _wave_scores(s: Sweep, ids: set[Any], chosen: Any,
                 score_within: Any) -> dict[tuple[str, str], float]:
    """(variant, case) -> the mean score over repeats of this wave's ok runs."""
    df = s.df
    if df.empty:
        return {}
    keys = list(zip(df["request_hash"], df["sample_index"].astype(int), strict=True))
    mask = [k in ids for k in keys]
    rows = df[mask]
    rows = rows[rows["status"] == "ok"] if "status" in rows else rows
    if rows.empty:
        return {}

    # The sweep's session and concurrency, as its own scorers get (scoring/live.py).
    scores = score_within(rows, chosen, calls=ModelCalls(s.session, concurrency=s.concurrency))
    value_of = dict(zip(scores["run_id"], scores["value"], strict=True))
    label_of_run = _labels(s)
    sums: dict[tuple[str, str], list[float]] = {}
    plan_by_id = {p.identity: p for p in s._plan}  # noqa: SLF001
    for row in rows.to_dict("records"):
        key = (row["request_hash"], int(row["sample_index"]))
        value = value_of.get(row["run_id"])
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        sums.setdefault((label_of_run[key], _case_key(plan_by_id[key])), []).append(float(value))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def _labels(s: Sweep) -> dict[Any, str]:
    knobs = list(s.grid)
    return {p.identity: label_of({k: p.point.knobs.get(k) for k in knobs})
            for p in s._plan}  # noqa: SLF001


def _say(s: Sweep, message: str) -> None:
    s._shared.update(message=message[:300])  # noqa: SLF001 - the progress line's text


def _decision(s: Sweep, test: SequentialTest, base: str, scorer: str, alpha: float,
              margin: float | None, plan: list[Any], label_of_run: Mapping[Any, str],
              waves: int) -> Decision:
    df = s.df
    done = set()
    cost_by_label: dict[str, list[float]] = {}
    if not df.empty:
        ok = df[df["status"] == "ok"] if "status" in df else df
        for h, i in zip(ok["request_hash"], ok["sample_index"].astype(int), strict=True):
            done.add((h, i))
        for h, i, cost in zip(ok["request_hash"], ok["sample_index"].astype(int),
                              ok.get("cost_usd", [None] * len(ok)), strict=True):
            if cost is not None and not (isinstance(cost, float) and math.isnan(cost)):
                cost_by_label.setdefault(label_of_run.get((h, i), ""), []).append(float(cost))
    dollars: float | None = 0.0
    for p in plan:
        if p.identity in done:
            continue
        costs = cost_by_label.get(label_of_run[p.identity])
        if not costs or dollars is None:
            dollars = None
            break
        dollars += sum(costs) / len(costs)  # measured mean cost of the variant's runs
    outcomes = []
    for variant, sequence in test.sequences.items():
        low, high = sequence.interval
        outcomes.append(VariantOutcome(variant, test.states[variant], sequence.n,
                                       sequence.mean, low, high))
    return Decision(base, scorer, alpha, margin, outcomes, len(plan),
                    sum(1 for p in plan if p.identity in done), dollars, waves)
