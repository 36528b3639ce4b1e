"""The ``scores`` table of the store (migration m007_scores): writing and reading scores.

The table's SQL lives in the store (:mod:`workbench.store.scores`, the same on SQLite and
PostgreSQL); here are the scoring package's rows and frames and what a process remembers.

Each process keeps the scores it has written or read, per store and scorer id, so that a
re-score of 100,000 runs reads nothing back (reading 300,000 rows took ~2.5 s,
bench/scoring.py). On SQLite ``PRAGMA data_version`` says whether another connection has
written since; PostgreSQL has no such counter, so there the check below runs every time.
The check is the COUNT and the newest created_at of the scorer's scores: scores are never
deleted, and a replaced score gets a new created_at, so an equal pair means the same set.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice, repeat
from operator import itemgetter, le
from typing import TYPE_CHECKING, Any

from workbench.store.scores import SCORE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["SCORE_COLUMNS", "NewScores", "known_scores", "write_scores", "write_many",
           "read_scores", "latest_ids", "scores_frame"]


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass
class NewScores:
    """One scorer's fresh scores, column by column (no tuple or object per score)."""

    scorer: str
    scorer_id: str
    run_ids: list[str] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    passed: list[bool | None] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    judge_run_ids: list[str | None] = field(default_factory=list)
    created_at: str = field(default_factory=now_text)
    # A yes/no scorer's (yes reason, no reason): every value is 1.0 or 0.0 and every
    # reason one of these two, by ``passed``, and there is no judge run (a faster write).
    yes_no: tuple[str, str] | None = None

    def frame(self) -> pd.DataFrame:
        import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        n = len(self.run_ids)
        stamp = pd.Timestamp(self.created_at)

        def text(values: Any) -> pd.Series:
            # object dtype holding str or None, as wb.runs() has: pandas 3 would make a
            # bare object array a str column (a copy, and None turned into NaN).
            return pd.Series(values, dtype=object, copy=False)

        def objects(values: Sequence[Any]) -> Any:
            # fromiter, not asarray: asarray looks into every str for a nested sequence.
            return np.fromiter(values, dtype=object, count=len(values))

        if self.yes_no is not None:  # the columns from the verdicts, in numpy
            verdicts = np.fromiter(self.passed, dtype=bool, count=n)
            values = pd.Series(verdicts.astype("float64"))
            passed = pd.Series(pd.arrays.BooleanArray(verdicts, np.zeros(n, dtype=bool)))
            no_yes = np.array([self.yes_no[1], self.yes_no[0]], dtype=object)
            reasons = text(no_yes[verdicts.view(np.uint8)])
        else:
            values = pd.Series([np.nan if v is None else v for v in self.values],
                               dtype="float64")
            passed = pd.Series(pd.array(self.passed, dtype="boolean"))
            reasons = text(objects(self.reasons))
        return pd.DataFrame(
            {
                "run_id": text(objects(self.run_ids)),
                "scorer": text(np.full(n, self.scorer, dtype=object)),
                "scorer_id": text(np.full(n, self.scorer_id, dtype=object)),
                "value": values,
                "passed": passed,
                "reason": reasons,
                "judge_run_id": text(objects(self.judge_run_ids)),
                "created_at": pd.Series(
                    pd.DatetimeIndex(np.full(n, stamp.asm8)).tz_localize("UTC").as_unit("us")
                ),
            }
        )


class _Known:
    """What this process knows is stored, per scorer id: a frame and its run ids."""

    def __init__(self) -> None:
        self.frames: dict[str, pd.DataFrame] = {}
        self.ids: dict[str, set[str]] = {}
        self.checked: dict[str, int] = {}  # scorer id -> data_version when last counted
        # scorer id -> (COUNT, MAX(created_at)) of its stored scores as last seen
        self.seen: dict[str, tuple[int, str | None]] = {}
        self.lock = threading.Lock()


_KNOWN: weakref.WeakKeyDictionary[AnyStore, _Known] = weakref.WeakKeyDictionary()
_KNOWN_LOCK = threading.Lock()


def _known(store: AnyStore) -> _Known:
    with _KNOWN_LOCK:
        known = _KNOWN.get(store)
        if known is None:
            known = _KNOWN[store] = _Known()
        return known


def known_scores(store: AnyStore, scorer_id: str) -> tuple[pd.DataFrame, set[str]]:
    """Every stored score of ``scorer_id`` (frame, run ids): from memory when this
    process has seen them all, else read again."""
    known = _known(store)
    # SQLite: data_version changes only when another connection commits (our own writes
    # keep it). PostgreSQL: None, never a reason to skip the check.
    version = store.data_version()
    with known.lock:
        frame = known.frames.get(scorer_id)
        if frame is not None and version is not None and known.checked.get(scorer_id) == version:
            return frame, known.ids[scorer_id]
    seen = store.score_count(scorer_id)
    with known.lock:
        frame = known.frames.get(scorer_id)
        if version is not None:
            known.checked[scorer_id] = version
        if frame is None or known.seen.get(scorer_id) != seen:
            frame = scores_frame(store.score_rows(scorer_id))
            known.frames[scorer_id] = frame
            known.ids[scorer_id] = set(frame["run_id"].tolist())
            # What was read may be newer than the check: the next check then reads again.
            known.seen[scorer_id] = seen
        return frame, known.ids[scorer_id]


def write_scores(store: AnyStore, new: NewScores) -> pd.DataFrame:
    """Store ``new`` in one transaction and return it as a frame. A score for the same
    (scorer_id, run_id) replaces the old one (what ``fresh=True`` asks for)."""
    return write_many(store, [new])[0]


def write_many(store: AnyStore, news: Sequence[NewScores]) -> list[pd.DataFrame]:
    """:func:`write_scores` of several scorers' scores, in one transaction."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    if not any(new.run_ids for new in news):
        return [new.frame() for new in news]
    rows: list[tuple[Any, ...]] = []
    for new in sorted(news, key=lambda new: new.scorer_id):
        rows += _rows(new)
    store.put_scores(rows)  # one transaction for every scorer's rows
    frames = []
    known = _known(store)
    for new in news:
        added = new.frame()
        frames.append(added)
        with known.lock:
            before = known.frames.get(new.scorer_id)
            if before is not None:
                ids = known.ids[new.scorer_id]
                replaced = ids.intersection(new.run_ids)
                if replaced:
                    before = before[~before["run_id"].isin(replaced)]
                frame = pd.concat([before, added], ignore_index=True)
                known.frames[new.scorer_id] = frame
                ids.update(new.run_ids)
                count, newest = known.seen.get(new.scorer_id, (0, None))
                # As the table now stands if nobody else wrote; if somebody did, the next
                # check finds another count or time and reads the scores again.
                latest = new.created_at if newest is None else max(newest, new.created_at)
                known.seen[new.scorer_id] = (len(frame), latest)
    return frames


def _rows(new: NewScores) -> list[tuple[Any, ...]]:
    """``new`` as score rows (``SCORE_COLUMNS`` order), in (scorer_id, run_id) key order.

    In key order each row lands after the last in the B-tree instead of at a random
    leaf: shuffled run ids took ~50 % more CPU to write than sorted ones
    (bench/scoring.py). Run ids sort by creation, so they are most often in order
    already: checked (~5 ms) rather than sorted (~35 ms)."""
    if not new.run_ids:
        return []
    sizes = {len(new.run_ids), len(new.values), len(new.passed), len(new.reasons),
             len(new.judge_run_ids)}
    if len(sizes) != 1:  # zip would drop the tail silently
        raise ValueError(f"scores of {new.scorer!r} have columns of unequal length {sizes}")
    # Flags are 0/1 integers in both databases (PostgreSQL refuses a boolean there);
    # values plain floats (psycopg cannot send numpy's integers), NaN as NULL as SQLite
    # keeps it (PostgreSQL would keep a NaN that "value IS NOT NULL" lets through).
    passed = [None if p is None else int(bool(p)) for p in new.passed]
    values = [None if v is None or v != v else float(v) for v in new.values]
    rows = list(
        zip(
            new.run_ids,
            repeat(new.scorer),
            repeat(new.scorer_id),
            values,
            passed,
            new.reasons,
            new.judge_run_ids,
            repeat(new.created_at),
            strict=False,
        )
    )
    in_order = all(map(le, new.run_ids, islice(new.run_ids, 1, None)))
    return rows if in_order else sorted(rows, key=itemgetter(0))


def read_scores(store: AnyStore, *, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Every score (of the given runs), oldest first."""
    frame = scores_frame(store.score_rows())
    if run_ids is not None:
        frame = frame[frame["run_id"].isin(set(run_ids))].reset_index(drop=True)
    return frame


def scores_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Score rows as typed columns: value float64, passed boolean, created_at UTC."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    columns = list(zip(*rows, strict=True)) if rows else [()] * len(SCORE_COLUMNS)
    data = dict(zip(SCORE_COLUMNS, columns, strict=True))
    stamps = pd.Series(data["created_at"], dtype=object)
    # Scores written together share one timestamp: parse each distinct one once.
    unique = pd.unique(stamps)
    parsed = pd.to_datetime(pd.Series(unique, dtype=object), utc=True, format="ISO8601")
    return pd.DataFrame(
        {
            "run_id": _objects(data["run_id"]),
            "scorer": _objects(data["scorer"]),
            "scorer_id": _objects(data["scorer_id"]),
            "value": pd.Series(data["value"], dtype="float64"),
            "passed": pd.Series(
                pd.array([None if p is None else bool(p) for p in data["passed"]],
                         dtype="boolean")
            ),
            "reason": _objects(data["reason"]),
            "judge_run_id": _objects(data["judge_run_id"]),
            "created_at": stamps.map(dict(zip(unique, parsed, strict=True)))
            .astype("datetime64[us, UTC]"),
        }
    )


def _objects(values: Sequence[Any]) -> pd.Series:
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    column = np.fromiter(values, dtype=object, count=len(values))
    return pd.Series(column, dtype=object, copy=False)


def latest_ids(store: AnyStore) -> dict[str, str]:
    """Each scorer name's latest definition: name -> the scorer_id scored most recently."""
    latest: dict[str, tuple[str, str]] = {}
    for name, scorer_id, at in store.scorer_ids():
        if name not in latest or at > latest[name][1]:
            latest[name] = (scorer_id, at)
    return {name: scorer_id for name, (scorer_id, _) in latest.items()}
