"""``wb.optimize``: split the cases, price the search, run gepa's loop through
:class:`~workbench.optimize.search.Search`, then compare the best candidate with the
starting prompt on the validation cases the search never saw.

    result = wb.optimize("Answer: {{question}}", system="Be brief.", data=cases,
                         scorers=wb.scorers.exact(), budget=0.50, model="gpt-4o-mini")
    result.best          # the template to use; result.best_system its system prompt
    result.validation    # the paired comparison on held-out cases, and whether decided
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.calls.progress import Bar
from workbench.core.checks import amount, whole
from workbench.core.errors import BudgetExceededError, Interrupted, InvalidInputError
from workbench.decide.paired import compare_runs
from workbench.optimize.adapter import SweepAdapter
from workbench.optimize.checks import required_variables
from workbench.optimize.plan import price_search
from workbench.optimize.result import OptimizeResult, Validation
from workbench.optimize.search import PARTS, Search

if TYPE_CHECKING:
    from workbench.calls.session import Session

__all__ = ["optimize", "split_cases"]


class _Quiet:
    """gepa's logger, silenced: the progress bar and the result say what happened."""

    def log(self, message: str) -> None:
        pass


def split_cases(cases: Sequence[Mapping[str, Any]], validation: float, seed: int
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training, validation): a seeded shuffle, at least one case on each side."""
    rows = [dict(c) for c in cases]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = min(max(1, round(len(rows) * validation)), len(rows) - 1)
    return [rows[i] for i in order[held:]], [rows[i] for i in order[:held]]


def _cases(data: Any) -> list[dict[str, Any]]:
    from workbench.scoring.datasets import as_dataset  # pandas: not at import

    return [dict(row) for row in as_dataset(data).rows]


def optimize(
    prompt: str,
    *,
    data: Any,
    scorers: Any,
    system: str | None = None,
    optimize: Sequence[str] | str | None = None,
    budget: float | Decimal | None = None,
    model: str | None = None,
    reflection_model: str | None = None,
    validation: float = 0.3,
    max_candidates: int = 10,
    minibatch: int = 3,
    experiment: str | None = None,
    expected: str | None = None,
    keep: Sequence[str] = (),
    alpha: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    reflection_max_tokens: int = 400,
    session: Session,
    **params: Any,
) -> OptimizeResult:
    """Search for a better prompt with gepa's reflective loop, within ``budget`` (USD),
    and check the winner on held-out cases.

    ``prompt`` is the user template (``{{variables}}`` from ``data``'s columns),
    ``system`` the system prompt; ``optimize`` names the parts to change (``"system"``,
    ``"prompt"`` or both; by default the system prompt when there is one, else the
    prompt). ``scorers``: the first one is the objective (0 to 1). The cases are split
    (seeded) into training and ``validation`` before anything is sent; the search sees
    only the training cases. At most ``max_candidates`` proposals, each made by one call
    to ``reflection_model`` (default: ``model``) shown a ``minibatch`` of scored cases.

    Priced before anything is sent: ``budget`` covers every call (runs, a judge's calls,
    reflections); the validation's worst case is kept back, and the search stops before
    a call that might not fit. Every evaluation is a sweep in experiment
    ``NAME:optimize``, every reflection a call there too, so running it again replays the
    search with no request and goes on from where an interrupted one stopped.

    A proposal that drops a template variable, or a phrase of ``keep`` (the output
    format: ``keep=["JSON"]``), or holds no words, is refused without being evaluated.
    ``params`` (``max_tokens=``, ``temperature=``...) are sent with every run.
    """
    budget = None if budget is None else amount("budget", budget)
    whole("max_candidates", max_candidates, low=1)
    whole("minibatch", minibatch, low=1)
    if not 0 < validation < 1:
        raise InvalidInputError(f"validation must be a share between 0 and 1: {validation!r}")
    starting = {"prompt": prompt, "system": system}
    parts = _parts(optimize, starting)
    cases = _cases(data)
    if len(cases) < 2:
        raise InvalidInputError("optimize needs at least 2 cases in data= (some are held out)")
    expected = expected or ("expected" if "expected" in cases[0] else None)
    train, held = split_cases(cases, validation, seed)
    name = f"{experiment or session.experiment}:optimize"
    from workbench.scoring.base import as_scorers  # the scorers module: not at import

    checked = as_scorers(scorers)
    search = Search(
        session,
        seed={p: str(starting[p]) for p in parts},
        fixed_parts={p: v for p, v in starting.items() if p not in parts},
        train=train, expected=expected, scorers=checked, experiment=name,
        budget=budget, reserve=Decimal(0), variables=required_variables(starting),
        keep=keep, sweep_options={"model": model, **params},
        reflection_options={"model": reflection_model or model,
                            "max_tokens": reflection_max_tokens},
        max_candidates=max_candidates,
    )
    plan = price_search(search, held, minibatch=minibatch)
    if budget is not None:
        plan.refuse_over(budget)  # before anything is sent
        search.reserve = plan.validation_high
    bar = _progress(search, max_candidates) if progress else None
    try:
        _run_gepa(search, minibatch=minibatch, seed=seed)
        if search.stop_reason is None:  # set before the bar closes: an end, not a failure
            search.stop("gepa's loop ended")
    except BudgetExceededError as exc:
        search.stop(f"the budget: {exc}")
    except KeyboardInterrupt:
        raise Interrupted(
            f"optimize stopped after {len(search.candidates) - 1} proposals; every call so far "
            "is in the table: run the same wb.optimize again to go on from there (replayed "
            "at no cost)") from None
    finally:
        if bar is not None:
            bar(search, close=True)
    validation_result = _validate(search, held, alpha=alpha)
    return OptimizeResult(search=search, plan=plan, validation=validation_result,
                          starting=starting, parts=parts, train=train, held=held)


def _parts(chosen: Sequence[str] | str | None, starting: Mapping[str, str | None]) -> list[str]:
    if chosen is None:
        return ["system"] if starting.get("system") else ["prompt"]
    listed = [chosen] if isinstance(chosen, str) else list(chosen)
    if not listed or any(p not in PARTS for p in listed):
        raise InvalidInputError(f"optimize= takes 'system', 'prompt' or both, not {chosen!r}")
    for part in listed:
        if not starting.get(part):
            raise InvalidInputError(f"optimize={part!r} needs a starting {part}= text")
    return listed


def _run_gepa(search: Search, *, minibatch: int, seed: int) -> None:
    from gepa.api import optimize as gepa_optimize  # ~0.3 s of imports: only in a search


    indices = list(range(len(search.train)))
    gepa_optimize(
        seed_candidate=dict(search.candidates[0].parts),
        trainset=indices,
        valset=indices,  # gepa's own selection set: the training cases, never validation
        adapter=SweepAdapter(search),  # type: ignore[arg-type]
        reflection_minibatch_size=min(minibatch, len(indices)),
        candidate_selection_strategy="pareto",
        perfect_score=search.perfect,
        stop_callbacks=[search.should_stop],  # type: ignore[list-item]
        logger=_Quiet(),
        seed=seed,
        raise_on_exception=True,
        display_progress_bar=False,
    )


def _validate(search: Search, held: list[dict[str, Any]], *, alpha: float) -> Validation:
    best = search.best()
    start = search.candidates[0]
    if best.id == start.id:
        return Validation(None, None, None, decided=False, alpha=alpha,
                          note="no candidate scored above the starting prompt in training")
    budget = None if search.budget is None else search.budget - search.spent()
    sweeps = []
    try:
        for candidate in (start, best):
            s = search.sweep_of(candidate.parts, held, budget=budget)
            s.run(progress=False)
            sweeps.append(s)
            budget = None if search.budget is None else search.budget - search.spent()
    except BudgetExceededError as exc:
        return Validation(None, None, None, decided=False, alpha=alpha,
                          note=f"not validated: {exc}")
    comparison = compare_runs(sweeps[0], sweeps[1], scorer=search.objective.name,
                              store=search.session.store)
    # Both sweeps share the search's experiment, so its name would label both sides.
    comparison = dataclasses.replace(comparison, baseline_name="the starting prompt",
                                     candidate_name="the best candidate")
    decided = (comparison.p_value is not None and comparison.p_value < alpha
               and comparison.ci is not None and comparison.ci[0] > 0)
    return Validation(comparison, sweeps[0], sweeps[1], decided=decided, alpha=alpha)


def _progress(search: Search, total: int) -> Callable[..., None]:
    bar = Bar(total, "optimize", "candidate")

    def show(s: Search, close: bool = False) -> None:
        best = s.best()
        score = "n/a" if best.train_score is None else f"{best.train_score:.3f}"
        bar.draw(min(s.reflections, total), f"best={score} (#{best.id}) "
                 f"spent=${float(s.spent()):.4f}")
        if close:
            # A search that stopped for a stated reason (a perfect score, the budget) ended
            # well short of max_candidates: green at its count. No reason: it was interrupted.
            bar.close(ended=s.stop_reason)

    search.on_change = show
    return show
