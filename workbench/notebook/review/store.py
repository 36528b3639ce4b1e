"""The review tables: human ratings (as scores, with their history) and pairwise preferences.

A rating is an ordinary score (scorer ``human``, scorer id ``human:<rater>``) in the
``scores`` table, so ``wb.runs()`` shows it as ``score:human`` and ``wb.scores()`` lists
it. That table keeps one score per (scorer id, run): a changed rating first copies the
old row into ``score_history`` (migration m011_reviews) with the time it was replaced.
Preferences are appended to ``preferences``; the latest per (pair, rater) counts.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.core.errors import InvalidInputError
from workbench.decide.stats import wilson_interval
from workbench.scoring.table import NewScores, now_text, scores_frame, write_scores
from workbench.store.scores import PREFERENCE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["HUMAN", "WINNERS", "WinRate", "default_rater", "rate", "score_history",
           "add_preference", "read_preferences", "win_rate"]

HUMAN = "human"
WINNERS = ("baseline", "candidate", "tie")


def default_rater() -> str:
    """The OS user, who rates when ``rater=`` is not given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


def rate(
    store: AnyStore,
    run_id: str,
    *,
    rater: str,
    value: float | None,
    passed: bool | None,
    reason: str = "",
) -> pd.DataFrame:
    """Store one human rating now; a rating this rater gave the run before is kept in
    ``score_history``. Returns the stored score row."""
    scorer_id = f"{HUMAN}:{rater}"
    store.keep_score_history(scorer_id, run_id, replaced_at=now_text())
    new = NewScores(scorer=HUMAN, scorer_id=scorer_id, run_ids=[run_id], values=[value],
                    passed=[passed], reasons=[reason], judge_run_ids=[None])
    return write_scores(store, new)


def score_history(store: AnyStore, *, run_id: str | None = None) -> pd.DataFrame:
    """Replaced scores, oldest first: the score columns plus ``replaced_at``."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    rows = store.score_history_rows(run_id)
    frame = scores_frame([row[:-1] for row in rows])
    frame["replaced_at"] = pd.to_datetime(pd.Series([row[-1] for row in rows], dtype=object),
                                          utc=True, format="ISO8601")
    return frame


def add_preference(
    store: AnyStore,
    baseline_run_id: str,
    candidate_run_id: str,
    winner: str,
    *,
    rater: str,
    reason: str = "",
) -> None:
    """Store that ``rater`` preferred ``winner`` (baseline, candidate or tie) for one pair."""
    if winner not in WINNERS:
        raise InvalidInputError(f"winner must be one of {WINNERS}, not {winner!r}")
    row = (baseline_run_id, candidate_run_id, winner, rater, reason, now_text())
    store.put_preference(row)


def read_preferences(store: AnyStore, *, latest: bool = True) -> pd.DataFrame:
    """The preferences, oldest first; ``latest`` keeps the last one per pair and rater."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    rows = store.preference_rows()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(PREFERENCE_COLUMNS),
                         dtype=object)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    if latest and not frame.empty:
        frame = frame.drop_duplicates(["baseline_run_id", "candidate_run_id", "rater"],
                                      keep="last").reset_index(drop=True)
    return frame


@dataclass(frozen=True)
class WinRate:
    """The candidate's win rate over the baseline, a tie counted as half a win, with its
    95 % Wilson interval (on wins + ties / 2 out of all judged pairs)."""

    wins: int
    losses: int
    ties: int
    rate: float
    low: float
    high: float

    @property
    def pairs(self) -> int:
        return self.wins + self.losses + self.ties

    def __str__(self) -> str:
        if self.pairs == 0:
            return "no preferences yet"
        return (f"candidate win rate {self.rate:.0%} (95 % CI {self.low:.0%}–{self.high:.0%}; "
                f"{_count(self.wins, 'win')}, {_count(self.losses, 'loss', 'losses')}, "
                f"{_count(self.ties, 'tie')}, ties count half)")


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def win_rate(preferences: pd.DataFrame) -> WinRate:
    """The win rate of the candidate in ``preferences`` (rows of read_preferences)."""
    winners = preferences["winner"].tolist() if not preferences.empty else []
    wins, losses, ties = (winners.count(w) for w in ("candidate", "baseline", "tie"))
    n = wins + losses + ties
    interval = wilson_interval(wins + ties / 2, n)  # type: ignore[arg-type]  # a half win
    return WinRate(wins, losses, ties, interval.estimate, interval.low, interval.high)
