"""The ``scores`` table of the store (migration m007_scores): writing and reading scores.

Kept beside the scoring code rather than in store.py: it is the scoring package's own
table, reached through the store's serialised connection (``_query``/``_write``).

Each process keeps the scores it has written or read, per store and scorer id, so that a
re-score of 100,000 runs reads nothing back (reading 300,000 rows took ~2.5 s,
bench/scoring.py). ``PRAGMA data_version`` says whether another connection has written
since; only then is a COUNT per scorer asked, and scores are never deleted, so equal
counts mean the same set.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice, repeat
from operator import itemgetter, le
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ..store import ExperimentStore

__all__ = ["SCORE_COLUMNS", "NewScores", "known_scores", "write_scores", "write_many",
           "read_scores", "latest_ids", "scores_frame"]

SCORE_COLUMNS = (
    "run_id",
    "scorer",
    "scorer_id",
    "value",
    "passed",
    "reason",
    "judge_run_id",
    "created_at",
)
_INSERT = (
    f"INSERT OR REPLACE INTO scores ({', '.join(SCORE_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(SCORE_COLUMNS))})"
)


def _literal(text: str) -> str | None:
    """``text`` as an SQL string literal; None when it cannot be one (a NUL character)."""
    return None if "\0" in text else "'" + text.replace("'", "''") + "'"


def _insert_for(new: NewScores) -> tuple[str, Any] | None:
    """The statement and rows that write ``new`` binding only what varies per score.

    The scorer's name and id and the time are the same in every row: written once into
    the statement as literals, not bound 100,000 times. A yes/no scorer's rows bind the
    run id and the verdict only; value and reason follow from it in SQL. Binding 2
    parameters a row instead of 8 took ~25 % off the CPU of writing 300,000 scores
    (bench/scoring.py). None: a text that cannot be a literal; bind everything.
    """
    scorer, scorer_id, created_at = (
        _literal(new.scorer), _literal(new.scorer_id), _literal(new.created_at)
    )
    if scorer is None or scorer_id is None or created_at is None:
        return None
    columns = ", ".join(SCORE_COLUMNS)
    # In key order (run ids are unique within one scorer): each row lands after the last
    # in the (scorer_id, run_id) B-tree instead of at a random leaf. Shuffled run ids
    # took ~50 % more CPU to write than sorted ones. Run ids sort by creation, so they
    # are most often in order already: checked (~5 ms) rather than sorted (~35 ms).
    in_order = all(map(le, new.run_ids, islice(new.run_ids, 1, None)))

    def order(rows: Iterable[tuple[Any, ...]]) -> Iterable[tuple[Any, ...]]:
        return rows if in_order else sorted(rows, key=itemgetter(0))

    if new.yes_no is not None:
        yes, no = (_literal(reason) for reason in new.yes_no)
        if yes is not None and no is not None:
            return (
                f"INSERT OR REPLACE INTO scores ({columns}) VALUES (?1, {scorer}, {scorer_id},"
                f" ?2, ?2, CASE WHEN ?2 THEN {yes} ELSE {no} END, NULL, {created_at})",
                order(zip(new.run_ids, new.passed, strict=True)),
            )
    return (
        f"INSERT OR REPLACE INTO scores ({columns}) VALUES (?, {scorer}, {scorer_id},"
        f" ?, ?, ?, ?, {created_at})",
        order(zip(new.run_ids, new.values, new.passed, new.reasons, new.judge_run_ids,
                  strict=True)),
    )


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
        import numpy as np
        import pandas as pd

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
        self.lock = threading.Lock()


_KNOWN: weakref.WeakKeyDictionary[ExperimentStore, _Known] = weakref.WeakKeyDictionary()
_KNOWN_LOCK = threading.Lock()


def _known(store: ExperimentStore) -> _Known:
    with _KNOWN_LOCK:
        known = _KNOWN.get(store)
        if known is None:
            known = _KNOWN[store] = _Known()
        return known


def known_scores(store: ExperimentStore, scorer_id: str) -> tuple[pd.DataFrame, set[str]]:
    """Every stored score of ``scorer_id`` (frame, run ids): from memory when this
    process has seen them all, else read again."""
    known = _known(store)
    # data_version changes only when another connection commits: our own writes keep it.
    ((version,),) = store._query("PRAGMA data_version")
    with known.lock:
        frame = known.frames.get(scorer_id)
        if frame is not None and known.checked.get(scorer_id) == version:
            return frame, known.ids[scorer_id]
    ((count,),) = store._query("SELECT COUNT(*) FROM scores WHERE scorer_id = ?", (scorer_id,))
    with known.lock:
        frame = known.frames.get(scorer_id)
        known.checked[scorer_id] = version
        if frame is None or len(frame) != count:
            rows = store._query(
                f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores WHERE scorer_id = ?"
                " ORDER BY created_at",
                (scorer_id,),
            )
            frame = scores_frame(rows)
            known.frames[scorer_id] = frame
            known.ids[scorer_id] = set(frame["run_id"].tolist())
        return frame, known.ids[scorer_id]


def write_scores(store: ExperimentStore, new: NewScores) -> pd.DataFrame:
    """Store ``new`` in one transaction and return it as a frame. A score for the same
    (scorer_id, run_id) replaces the old one (what ``fresh=True`` asks for)."""
    return write_many(store, [new])[0]


def write_many(store: ExperimentStore, news: Sequence[NewScores]) -> list[pd.DataFrame]:
    """:func:`write_scores` of several scorers' scores, in one transaction."""
    import pandas as pd

    if not any(new.run_ids for new in news):
        return [new.frame() for new in news]

    def insert(conn: sqlite3.Connection) -> None:  # rows made again if a busy file is retried
        for new in news:
            if not new.run_ids:
                continue
            fast = _insert_for(new)
            if fast is None:
                conn.executemany(_INSERT, _rows(new))
            else:
                conn.executemany(*fast)

    store._write(insert)
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
                known.frames[new.scorer_id] = pd.concat([before, added], ignore_index=True)
                ids.update(new.run_ids)
    return frames


def _rows(new: NewScores) -> Iterable[tuple[Any, ...]]:
    # bools are ints to sqlite3: passed is stored as 1 and 0
    return zip(
        new.run_ids,
        repeat(new.scorer),
        repeat(new.scorer_id),
        new.values,
        new.passed,
        new.reasons,
        new.judge_run_ids,
        repeat(new.created_at),
    )


def read_scores(store: ExperimentStore, *, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Every score (of the given runs), oldest first."""
    rows = store._query(f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores ORDER BY created_at")
    frame = scores_frame(rows)
    if run_ids is not None:
        frame = frame[frame["run_id"].isin(set(run_ids))].reset_index(drop=True)
    return frame


def scores_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Score rows as typed columns: value float64, passed boolean, created_at UTC."""
    import pandas as pd

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
    import numpy as np
    import pandas as pd

    column = np.fromiter(values, dtype=object, count=len(values))
    return pd.Series(column, dtype=object, copy=False)


def latest_ids(store: ExperimentStore) -> dict[str, str]:
    """Each scorer name's latest definition: name -> the scorer_id scored most recently."""
    rows = store._query(
        "SELECT scorer, scorer_id, MAX(created_at) FROM scores GROUP BY scorer_id"
    )
    latest: dict[str, tuple[str, str]] = {}
    for name, scorer_id, at in rows:
        if name not in latest or at > latest[name][1]:
            latest[name] = (scorer_id, at)
    return {name: scorer_id for name, (scorer_id, _) in latest.items()}
