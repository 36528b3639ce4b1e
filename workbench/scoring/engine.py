"""``wb.score``: score the runs of a sweep, a DataFrame or an experiment, store the scores.

Outputs are never generated again: a scorer reads the stored output of each run. Scores
already stored for a scorer's id are neither computed nor sent again (``fresh=True``
recomputes them), so re-running a notebook re-scores for free.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from workbench.calls.budget.estimate import Estimate
from workbench.core.checks import amount
from workbench.core.errors import BudgetExceededError, InvalidInputError
from workbench.core.selection import runs_frame
from workbench.scoring.base import Item, PartialScores, Scorer, as_scorers, safe_score
from workbench.scoring.builtin import YesNoScorer
from workbench.scoring.calls import ModelCalls
from workbench.scoring.judge import JUDGE_SUFFIX
from workbench.scoring.table import NewScores, known_scores, read_scores, write_many, write_scores

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.session import Session
    from workbench.core.record import RunRecord
    from workbench.store import AnyStore

__all__ = [
    "score",
    "score_within",
    "scores",
    "runs_to_score",
    "items_of",
    "estimate_scoring",
    "expected_for",
    "records_frame",
    "failed",
]


def records_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Run records as a runs-like DataFrame (what wb.score reads of them)."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    return pd.DataFrame([record.as_row() for record in records])


def failed(frame: pd.DataFrame) -> pd.Series:
    """Which stored scores failed (no value: an HTTP error, a timeout, a budget, an
    unreadable verdict, a scorer that raised); their ``reason`` says why. Scoring again
    retries these, and only these."""
    return frame["value"].isna()


def expected_for(run: Any) -> Any:
    """A run's reference answer: its ``expected`` column (set by a dataset sweep)."""
    value = run.get("expected") if hasattr(run, "get") else None
    return None if value is None or value != value else value  # NaN is missing


class _HoldsStore(Protocol):
    @property
    def store(self) -> AnyStore: ...


def runs_to_score(
    data: Any, store: AnyStore | _HoldsStore, what: str = "wb.score"
) -> pd.DataFrame:
    """The ok chat runs of ``data`` (a Sweep, a runs DataFrame, an experiment name, or a
    list of responses or run records) that have an output to score; a judge's own calls
    are left out. ``store`` holds the runs an experiment name means."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    # Until review/panel.py passes its store: a session is taken for the store it holds.
    store = store.store if hasattr(store, "store") else store
    if isinstance(data, (list, tuple)) and all(hasattr(r, "record") or hasattr(r, "as_row")
                                                for r in data):
        # ChatResponses (their records) or RunRecords: a cell's or a script's own runs.
        records: list[RunRecord] = [r.record if hasattr(r, "record") else r for r in data]
        data = records_frame(records)
    frame = runs_frame(data, store, what)  # the one reading of "which runs"
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
    scorers: Sequence[Scorer], items: Sequence[Item], calls: ModelCalls
) -> Estimate:
    """What the model calls of scoring ``items`` would cost, sending nothing."""
    total = Estimate.zero()
    for scorer in scorers:
        cost = scorer.estimate(items, calls) if items else None
        if cost is not None:
            total += cost
    # Calls about runs, not runs: "32 runs + 32 judge calls" in a sweep's estimate.
    return total.as_judge_calls()


def score(
    data: Any,
    scorers: Any,
    *,
    session: Session,
    fresh: bool = False,
    budget: float | Decimal | None = None,
    concurrency: int = 8,
) -> pd.DataFrame:
    """Score the runs of ``data`` with ``scorers``; return the scores (long table).

    ``fresh=True`` recomputes (and re-asks a judge) even where a score is stored.
    ``budget`` (USD) refuses the scoring, before any call, when the model calls'
    expected cost is above it (or above the session's remaining budget). At most
    ``concurrency`` judge calls (or slow scorer calls) run at once.
    """
    limit = None if budget is None else amount("budget", budget)
    calls = ModelCalls(session, concurrency=concurrency, budget=limit)
    return score_within(data, scorers, calls=calls, fresh=fresh)


def score_within(
    data: Any,
    scorers: Any,
    *,
    calls: ModelCalls,
    fresh: bool = False,
) -> pd.DataFrame:
    """:func:`score` through ``calls``: its budget (and, in a sweep, the sweep's), its
    concurrency and its path for model calls.

    Runs whose stored score failed (no value) are scored again; good scores are kept and
    not paid again. A budget that stops the calls part-way stores the scores so far, and
    the unsent ones as failed ("budget: ..."), then raises."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    chosen = as_scorers(scorers)
    store = calls.store
    frame = runs_to_score(data, store)
    run_ids = frame["run_id"].tolist()
    pending: dict[str, list[int]] = {}
    known = {scorer.id: known_scores(store, scorer.id) for scorer in chosen}
    for scorer in chosen:
        stored, ids = known[scorer.id]
        if not fresh and ids:
            bad = failed(stored)
            if bad.any():  # failed scores are not done: they are retried
                ids = ids - set(stored["run_id"][bad].tolist())
        if fresh or not ids:  # a new scorer: every run, no lookups
            pending[scorer.id] = list(range(len(run_ids)))
        elif ids.issuperset(run_ids):  # the re-score of a whole sweep: one C-level pass
            pending[scorer.id] = []
        else:
            pending[scorer.id] = [i for i, run_id in enumerate(run_ids) if run_id not in ids]
    _refuse_over_budget(chosen, frame, pending, calls)
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
                added = _score_and_write(scorer, [items[i] for i in todo], calls, fresh)
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
    calls: ModelCalls,
) -> None:
    paid = [s for s in scorers if s.uses_model and pending[s.id]]
    if not paid or not calls.session_budget.keeps(calls.spending.budget):
        return
    items = items_of(frame)
    total = Estimate.zero()
    for scorer in paid:
        total += estimate_scoring([scorer], [items[i] for i in pending[scorer.id]], calls)
    # The one budget (calls/budget): a judge with no known price is refused as a call is.
    calls.session_budget.refuse("Scoring", total, own=calls.spending.budget)


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
            item = Item(output=outputs[i], run={"run_id": run_ids[i]})
            _add(new, scorer, item, safe_score(scorer, scorer.score, item))
        return new
    new.run_ids = run_ids if len(todo) == len(run_ids) else [run_ids[i] for i in todo]
    new.values = [1.0 if ok else 0.0 for ok in verdicts]
    new.passed = list(verdicts)
    yes, no = scorer.yes, scorer.no
    new.reasons = [yes if ok else no for ok in verdicts]
    new.judge_run_ids = [None] * len(todo)
    new.yes_no = (yes, no)
    return new


def _score_and_write(
    scorer: Scorer, items: list[Item], calls: ModelCalls, fresh: bool
) -> pd.DataFrame:
    """Score ``items`` and store the scores; a budget that stopped the scorer part-way
    is raised once what it scored (and its unsent runs, as failed) is stored."""
    stopped: BaseException | None = None
    try:
        results = scorer.score_many(items, calls, fresh=fresh)
    except PartialScores as partial:
        results, stopped = partial.scores, partial.cause
    except BudgetExceededError:
        raise
    except Exception:  # noqa: BLE001 - one by one, so one bad run spoils only its score
        results = [
            safe_score(scorer, lambda one: scorer.score_many([one], calls, fresh=fresh)[0], item)
            for item in items
        ]
    new = NewScores(scorer.name, scorer.id)
    for item, result in zip(items, results, strict=True):
        _add(new, scorer, item, result)
    added = write_scores(calls.store, new)
    if stopped is not None:
        raise stopped
    return added


def _add(new: NewScores, scorer: Scorer, item: Item, result: Any) -> None:
    # Checked here too: a scorer's own score_many may return anything; what is no score
    # becomes a failed score whose reason names the scorer and the run.
    checked = safe_score(scorer, lambda _: result, item)
    new.run_ids.append(str(item.run.get("run_id")))
    new.values.append(checked.value)
    new.passed.append(checked.passed)
    new.reasons.append(checked.reason or "")
    new.judge_run_ids.append(checked.judge_run_id)


def scores(
    experiment: str | None = None,
    *,
    scorer: str | None = None,
    store: AnyStore,
) -> pd.DataFrame:
    """The scores table (long: one row per run and scorer definition), oldest first;
    ``experiment`` keeps the scores of its runs, ``scorer`` those of one scorer name."""
    if experiment is not None:
        run_ids: Iterable[str] | None = store.runs(experiment=experiment)["run_id"].tolist()
    else:
        run_ids = None
    from workbench.core.resultframe import result_frame  # imports pandas: not at the top

    frame = read_scores(store, run_ids=run_ids)
    if scorer is not None:
        frame = frame[frame["scorer"].eq(scorer)].reset_index(drop=True)
    return result_frame(frame)  # shown formatted (1, not 1.000000); a DataFrame to code
