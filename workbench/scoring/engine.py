"""``wb.score``: score the runs of a sweep, a DataFrame or an experiment, store the scores.

Outputs are never generated again: a scorer reads the stored output of each run. Scores
already stored for a scorer's id are neither computed nor sent again (``fresh=True``
recomputes them), so re-running a notebook re-scores for free.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..calls.budget import Spend, refuse_over_budget
from ..core.selection import runs_frame
from ..errors import BudgetExceededError, InvalidInputError
from .base import Item, Score, Scorer, as_scorers
from .builtin import YesNoScorer
from .judge import JUDGE_SUFFIX
from .table import NewScores, known_scores, read_scores, write_many, write_scores

if TYPE_CHECKING:
    import pandas as pd

    from ..estimate import Estimate
    from ..record import RunRecord
    from ..session import Session

__all__ = [
    "score",
    "score_within",
    "scores",
    "runs_to_score",
    "items_of",
    "estimate_scoring",
    "expected_for",
]


def expected_for(run: Any) -> Any:
    """A run's reference answer: its ``expected`` column (set by a dataset sweep)."""
    value = run.get("expected") if hasattr(run, "get") else None
    return None if value is None or value != value else value  # NaN is missing


def runs_to_score(data: Any, session: Session, what: str = "wb.score") -> pd.DataFrame:
    """The ok chat runs of ``data`` (a Sweep, a runs DataFrame, an experiment name, or a
    list of responses or run records) that have an output to score; a judge's own calls
    are left out."""
    import pandas as pd

    if isinstance(data, (list, tuple)) and all(hasattr(r, "record") or hasattr(r, "as_row")
                                                for r in data):
        from .live import records_frame

        # ChatResponses (their records) or RunRecords: a cell's or a script's own runs.
        records: list[RunRecord] = [r.record if hasattr(r, "record") else r for r in data]
        data = records_frame(records)
    frame = runs_frame(data, session.store, what)  # the one reading of "which runs"
    missing = {"run_id", "output"} - set(frame.columns)
    if missing:
        raise InvalidInputError(
            f"the DataFrame has no {sorted(missing)} column: pass rows of wb.runs() or sweep.df"
        )
    keep = frame["output"].notna().to_numpy(dtype=bool, copy=True)
    if "status" in frame:
        keep &= frame["status"].to_numpy() == "ok"
    if "kind" in frame:
        keep &= frame["kind"].to_numpy() == "chat"
    if "experiment" in frame:
        # A judge's own calls are not scored; few distinct names, so test those only.
        names = pd.unique(frame["experiment"])
        judges = [e for e in names if isinstance(e, str) and e.endswith(JUDGE_SUFFIX)]
        if judges:
            keep &= ~frame["experiment"].isin(judges).to_numpy(dtype=bool)
    if not keep.all():
        frame = frame[keep]
    if len(set(frame["run_id"].tolist())) != len(frame):
        frame = frame.drop_duplicates("run_id")
    return frame


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
    from ..checks import amount
    from ..session import get_session

    limit = None if budget is None else amount("budget", budget)
    return score_within(data, scorers, session=session or get_session(), fresh=fresh,
                        limit=limit)


def score_within(
    data: Any,
    scorers: Any,
    *,
    session: Session,
    fresh: bool = False,
    limit: Decimal | None = None,
    sweep: Spend | None = None,
) -> pd.DataFrame:
    """:func:`score`, its model calls also counted against a running sweep's budget
    (``sweep``): they stop with the sweep's own line once it has spent its budget."""
    import pandas as pd

    chosen = as_scorers(scorers)
    frame = runs_to_score(data, session)
    store = session.store
    run_ids = frame["run_id"].tolist()
    pending: dict[str, list[int]] = {}
    known = {scorer.id: known_scores(store, scorer.id) for scorer in chosen}
    for scorer in chosen:
        done = known[scorer.id][1]
        if fresh or not done:  # a new scorer: every run, no lookups
            pending[scorer.id] = list(range(len(run_ids)))
        elif done.issuperset(run_ids):  # the re-score of a whole sweep: one C-level pass
            pending[scorer.id] = []
        else:
            pending[scorer.id] = [i for i, run_id in enumerate(run_ids) if run_id not in done]
    _refuse_over_budget(chosen, frame, pending, session, limit)
    spending = Spend("Scoring", limit, session.spend, within=sweep,
                     kept="the scores so far are stored", again="score again")
    # Yes/no scorers call no model and cannot fail: all of them first, written in one
    # transaction (one checkpoint of the WAL, not one per scorer).
    quick = [s for s in chosen if isinstance(s, YesNoScorer) and pending[s.id]]
    written: dict[str, pd.DataFrame] = {}
    if quick:
        outputs = frame["output"].tolist()
        news = [_yes_no_scores(s, outputs, run_ids, pending[s.id]) for s in quick]
        written = dict(zip([s.id for s in quick], write_many(store, news), strict=True))
    items: list[Item] | None = None
    parts = []
    for scorer in chosen:
        todo = pending[scorer.id]
        if todo:
            if scorer.id in written:
                added = written[scorer.id]
            else:
                items = items if items is not None else items_of(frame)
                new = _scores(scorer, [items[i] for i in todo], session, fresh, spending)
                added = write_scores(store, new)
            if len(todo) == len(run_ids):  # all new: nothing to look up
                parts.append(added)
                continue
            known[scorer.id] = known_scores(store, scorer.id)
        stored, ids = known[scorer.id]
        if len(ids) != len(run_ids):  # else, holding every run_id, it holds just those
            stored = stored[stored["run_id"].isin(set(run_ids))]
        parts.append(stored)
    return pd.concat(parts, ignore_index=True)


def _refuse_over_budget(
    scorers: Sequence[Scorer],
    frame: pd.DataFrame,
    pending: dict[str, list[int]],
    session: Session,
    limit: Decimal | None,
) -> None:
    paid = [s for s in scorers if s.uses_model and pending[s.id]]
    if not paid or (limit is None and session.spend.remaining() is None):
        return
    from ..estimate import Estimate

    items = items_of(frame)
    total = Estimate.zero()
    for scorer in paid:
        total += estimate_scoring([scorer], [items[i] for i in pending[scorer.id]], session)
    # A judge with no known price is refused as a call of the session is (calls/budget.py).
    refuse_over_budget("Scoring", session.spend, total.cost_expected,
                       unpriced=total.unpriced_models, own=limit, estimate=total,
                       fix="raise budget=... or score fewer runs")


def _yes_no_scores(
    scorer: YesNoScorer, outputs: list[Any], run_ids: list[str], todo: list[int]
) -> NewScores:
    new = NewScores(scorer.name, scorer.id)
    try:
        everything = len(todo) == len(outputs)
        verdicts: list[bool] | None = scorer.verdicts(
            outputs if everything else [outputs[i] for i in todo]
        )
    except Exception:  # noqa: BLE001 - find the run that broke it, one by one below
        verdicts = None
    if verdicts is None:
        for i in todo:
            result = _safe(scorer, lambda i=i: scorer.score(Item(output=outputs[i])), run_ids[i])
            _add(new, run_ids[i], result)
        return new
    new.run_ids = run_ids if len(todo) == len(run_ids) else [run_ids[i] for i in todo]
    new.values = [1.0 if ok else 0.0 for ok in verdicts]
    new.passed = list(verdicts)
    yes, no = scorer.yes, scorer.no
    new.reasons = [yes if ok else no for ok in verdicts]
    new.judge_run_ids = [None] * len(todo)
    new.yes_no = (yes, no)
    return new


def _scores(
    scorer: Scorer,
    items: list[Item],
    session: Session,
    fresh: bool,
    spending: Spend,
) -> NewScores:
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
    new = NewScores(scorer.name, scorer.id)
    for item, result in zip(items, results, strict=True):
        _add(new, str(item.run.get("run_id")), result)
    return new


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


def _add(new: NewScores, run_id: str, result: Score) -> None:
    new.run_ids.append(run_id)
    new.values.append(None if result.value is None else float(result.value))
    new.passed.append(None if result.passed is None else bool(result.passed))
    new.reasons.append(result.reason or "")
    new.judge_run_ids.append(result.judge_run_id)


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
    return frame
