"""``wb.score``: score the runs of a sweep, a DataFrame or an experiment, store the scores.

Outputs are never generated again: a scorer reads the stored output of each run. Scores
already stored for a scorer's id are neither computed nor sent again (``fresh=True``
recomputes them), so re-running a notebook re-scores for free.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceededError, InvalidInputError
from .base import Item, Score, Scorer, as_scorers
from .builtin import YesNoScorer
from .judge import JUDGE_SUFFIX
from .table import SCORE_COLUMNS, now_text, read_scores, scored_run_ids, scores_frame, write_scores

if TYPE_CHECKING:
    import pandas as pd

    from ..estimate import Estimate
    from ..session import Session

__all__ = ["score", "scores", "runs_to_score", "items_of", "estimate_scoring", "expected_for"]


def expected_for(run: Any) -> Any:
    """A run's reference answer: its ``expected`` column (set by a dataset sweep)."""
    value = run.get("expected") if hasattr(run, "get") else None
    return None if value is None or value != value else value  # NaN is missing


def runs_to_score(data: Any, session: Session) -> pd.DataFrame:
    """The ok chat runs of ``data`` (a Sweep, a runs DataFrame or an experiment name)
    that have an output to score; a judge's own calls are left out."""
    import pandas as pd

    if isinstance(data, str):
        frame = session.store.runs(experiment=data)
        if frame.empty:
            raise InvalidInputError(
                f"experiment {data!r} has no runs: check the name with wb.runs()['experiment']"
            )
    elif isinstance(data, pd.DataFrame):
        frame = data
    elif hasattr(data, "df") and isinstance(getattr(data, "df", None), pd.DataFrame):
        frame = data.df
    else:
        raise InvalidInputError(
            f"wb.score takes a Sweep, a runs DataFrame or an experiment name, not "
            f"{type(data).__name__}"
        )
    missing = {"run_id", "output"} - set(frame.columns)
    if missing:
        raise InvalidInputError(
            f"the DataFrame has no {sorted(missing)} column: pass rows of wb.runs() or sweep.df"
        )
    keep = frame["output"].notna()
    if "status" in frame:
        keep &= frame["status"].eq("ok")
    if "kind" in frame:
        keep &= frame["kind"].eq("chat")
    if "experiment" in frame:
        keep &= ~frame["experiment"].astype(str).str.endswith(JUDGE_SUFFIX)
    return frame[keep].drop_duplicates("run_id")


def items_of(frame: pd.DataFrame) -> list[Item]:
    """What each run shows a scorer: output, expected answer, variables, prompt, row."""
    items = []
    for row in frame.to_dict("records"):
        variables = row.get("variables")
        try:
            parsed = json.loads(variables) if isinstance(variables, str) else {}
        except ValueError:
            parsed = {}
        items.append(
            Item(
                output=str(row.get("output") or ""),
                expected=expected_for(row),
                vars=parsed if isinstance(parsed, dict) else {},
                input=str(row.get("prompt") or ""),
                run=row,
            )
        )
    return items


class _Spending:
    """Model calls' spend against a budget (USD); raises before a call once it is over."""

    def __init__(self, session: Session, budget: Decimal | None) -> None:
        self.session, self.budget = session, budget
        self.spent = Decimal(0)
        self._lock = threading.Lock()

    def __call__(self, cost: float | None) -> None:
        with self._lock:
            if cost is not None:
                self.spent += Decimal(str(cost))
                return
            if self.budget is not None and self.spent > self.budget:
                raise BudgetExceededError(
                    f"Scoring stopped: its model calls have spent ${self.spent:.6f}, above the"
                    f" budget of ${self.budget:.6f}; the scores so far are stored, score again"
                    " with a larger budget to finish"
                )
            remaining = self.session.remaining_budget()
            if remaining is not None and remaining < 0:
                raise BudgetExceededError(
                    "Scoring stopped: the session budget is spent (raise it with"
                    " wb.configure(budget=...) and score again to finish)"
                )


def estimate_scoring(
    scorers: Sequence[Scorer], items: Sequence[Item], session: Session
) -> Estimate:
    """What the model calls of scoring ``items`` would cost, sending nothing."""
    from ..estimate import Estimate

    total = Estimate.zero()
    for scorer in scorers:
        cost = scorer.estimate(items, session) if items else None
        if cost is not None:
            total += cost
    return total


def score(
    data: Any,
    scorers: Any,
    *,
    fresh: bool = False,
    budget: float | Decimal | None = None,
    session: Session | None = None,
) -> pd.DataFrame:
    """Score the runs of ``data`` with ``scorers``; return the scores (long table).

    ``fresh=True`` recomputes (and re-asks a judge) even where a score is stored.
    ``budget`` (USD) refuses the scoring, before any call, when the model calls'
    expected cost is above it (or above the session's remaining budget).
    """
    import pandas as pd

    from ..checks import amount
    from ..session import get_session

    session = session or get_session()
    chosen = as_scorers(scorers)
    limit = None if budget is None else amount("budget", budget)
    frame = runs_to_score(data, session)
    store = session.store
    run_ids = frame["run_id"].tolist()
    pending: dict[str, list[int]] = {}
    for scorer in chosen:
        done = set() if fresh else scored_run_ids(store, scorer.id)
        pending[scorer.id] = [i for i, run_id in enumerate(run_ids) if run_id not in done]
    _refuse_over_budget(chosen, frame, pending, session, limit)
    spending = _Spending(session, limit)
    fresh_rows: list[tuple[Any, ...]] = []
    items: list[Item] | None = None
    for scorer in chosen:
        todo = pending[scorer.id]
        if not todo:
            continue
        if isinstance(scorer, YesNoScorer):
            rows = _yes_no_rows(scorer, frame["output"].tolist(), run_ids, todo)
        else:
            items = items if items is not None else items_of(frame)
            rows = _rows(scorer, [items[i] for i in todo], session, fresh, spending)
        write_scores(store, rows)
        fresh_rows += rows
    if len(fresh_rows) == len(run_ids) * len(chosen):
        return scores_frame(fresh_rows)  # all new: no need to read them back
    stored = read_scores(store, scorer_ids=[s.id for s in chosen], run_ids=run_ids)
    return pd.DataFrame(stored).reset_index(drop=True)


def _refuse_over_budget(
    scorers: Sequence[Scorer],
    frame: pd.DataFrame,
    pending: dict[str, list[int]],
    session: Session,
    limit: Decimal | None,
) -> None:
    limits = [b for b in (limit, session.remaining_budget()) if b is not None]
    paid = [s for s in scorers if s.uses_model and pending[s.id]]
    if not limits or not paid:
        return
    items = items_of(frame)
    total = None
    for scorer in paid:
        cost = estimate_scoring([scorer], [items[i] for i in pending[scorer.id]], session)
        total = cost if total is None else total + cost
    if total is not None and total.cost_expected is not None and total.cost_expected > min(limits):
        raise BudgetExceededError(
            f"Scoring refused before sending anything: its model calls are expected to cost"
            f" ${total.cost_expected:.6f}, above the budget of ${min(limits):.6f}. Estimate:"
            f" {total}. Raise budget=... or score fewer runs"
        )


def _yes_no_rows(
    scorer: YesNoScorer, outputs: list[Any], run_ids: list[str], todo: list[int]
) -> list[tuple[Any, ...]]:
    name, scorer_id, now = scorer.name, scorer.id, now_text()
    yes = (1.0, 1, scorer.yes)
    no = (0.0, 0, scorer.no)
    try:
        texts = [outputs[i] for i in todo]
        verdicts = scorer.verdicts(texts)
    except Exception:  # noqa: BLE001 - find the run that broke it, one by one below
        verdicts = None
    if verdicts is None:
        rows = []
        for i in todo:
            result = _safe(scorer, lambda i=i: scorer.score(Item(output=outputs[i])), run_ids[i])
            rows.append(_row(run_ids[i], scorer, result, now))
        return rows
    return [
        (run_ids[i], name, scorer_id, *(yes if ok else no), None, now)
        for i, ok in zip(todo, verdicts, strict=True)
    ]


def _rows(
    scorer: Scorer,
    items: list[Item],
    session: Session,
    fresh: bool,
    spending: _Spending,
) -> list[tuple[Any, ...]]:
    now = now_text()
    try:
        results = scorer.score_many(items, session, fresh=fresh, on_cost=spending)
    except BudgetExceededError:
        raise
    except Exception:  # noqa: BLE001 - one by one, so one bad run spoils only its score
        results = [
            _safe(
                scorer,
                lambda item=item: scorer.score_many([item], session, fresh=fresh,
                                                    on_cost=spending)[0],
                str(item.run.get("run_id")),
            )
            for item in items
        ]
    return [
        _row(str(item.run.get("run_id")), scorer, result, now)
        for item, result in zip(items, results, strict=True)
    ]


def _safe(scorer: Scorer, compute: Any, run_id: str) -> Score:
    """A scorer's result, or a None score whose reason names the scorer, run and error."""
    from ..session import one_line

    try:
        result = compute()
    except BudgetExceededError:
        raise
    except Exception as exc:  # noqa: BLE001 - a scorer's bug must not stop the sweep
        message = f"scorer {scorer.name} failed on run {run_id}: {type(exc).__name__}: "
        warnings.warn(message + one_line(exc), RuntimeWarning, stacklevel=4)
        return Score(None, None, (message + one_line(exc))[:500])
    return result if isinstance(result, Score) else Score(None, None, "no score")


def _row(run_id: str, scorer: Scorer, result: Score, now: str) -> tuple[Any, ...]:
    passed = None if result.passed is None else int(bool(result.passed))
    value = None if result.value is None else float(result.value)
    return (run_id, scorer.name, scorer.id, value, passed, result.reason or "",
            result.judge_run_id, now)


def scores(
    experiment: str | None = None,
    *,
    scorer: str | None = None,
    session: Session | None = None,
) -> pd.DataFrame:
    """The scores table (long: one row per run and scorer definition), oldest first;
    ``experiment`` keeps the scores of its runs, ``scorer`` those of one scorer name."""
    from ..session import get_session

    session = session or get_session()
    store = session.store
    if experiment is not None:
        run_ids: Iterable[str] | None = store.runs(experiment=experiment)["run_id"].tolist()
    else:
        run_ids = None
    frame = read_scores(store, run_ids=run_ids)
    if scorer is not None:
        frame = frame[frame["scorer"].eq(scorer)].reset_index(drop=True)
    assert list(frame.columns) == list(SCORE_COLUMNS)
    return frame
