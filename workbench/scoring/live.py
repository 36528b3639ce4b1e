"""Scoring while a sweep or a cell runs: each run is scored as soon as its row lands.

Scorers run on a worker thread, never on the sweep's event loop: a judge's call blocks,
and the sweep's other calls must not wait for it. When the sweep ends, one more pass
scores what the worker did not see (runs answered before, in an earlier run of the sweep).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .base import Item, Scorer, as_scorers

if TYPE_CHECKING:
    import pandas as pd

    from ..estimate import Estimate
    from ..record import RunRecord
    from ..session import PreparedChat, Session
    from ..spend import SweepSpend

__all__ = ["LiveScoring", "records_frame", "estimate_planned", "compact", "compact_row"]


def records_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Run records as a runs-like DataFrame (what wb.score reads of them)."""
    import pandas as pd

    return pd.DataFrame([record.as_row() for record in records])


class LiveScoring:
    """Scores runs handed to :meth:`add` on one worker thread; :meth:`finish` waits.
    With ``spend`` (set by the sweep for each of its runs), model calls count against
    the sweep's budget."""

    def __init__(self, scorers: Any, session: Session) -> None:
        self.scorers: list[Scorer] = as_scorers(scorers)
        self.session = session
        self.spend: SweepSpend | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()

    def add(self, record: RunRecord) -> None:
        """Score one finished run, in the background; a failed run is not scored."""
        if record.status != "ok" or record.output is None:
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="scoring")
            self._futures.append(self._pool.submit(self._score, [record]))

    def _score(self, data: Any) -> pd.DataFrame:  # run records, or a runs DataFrame
        from .engine import score_within

        return score_within(data, self.scorers, session=self.session, sweep=self.spend)

    def finish(self, runs: pd.DataFrame | None = None) -> None:
        """Wait for the scores in flight (raising what stopped them, e.g. a budget), then
        score whatever of ``runs`` is still unscored."""
        with self._lock:
            futures, self._futures = self._futures, []
            pool, self._pool = self._pool, None
        try:
            for future in futures:
                future.result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if runs is not None and not runs.empty:
            self._score(runs)

    def settle(self) -> None:
        """After the sweep stopped: let the scoring under way end (a judge's answer in
        flight was paid for, and its score is kept), drop the runs not yet scored, and
        raise nothing: the sweep raises why it stopped."""
        with self._lock:
            pool, self._pool, self._futures = self._pool, None, []
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def cancel(self) -> None:
        with self._lock:
            pool, self._pool, self._futures = self._pool, None, []
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def estimate_planned(
    scorers: Sequence[Scorer], planned: Sequence[PreparedChat], session: Session
) -> Estimate | None:
    """What the scorers' model calls would cost for runs not yet made: each output is
    taken at its worst-case length (max_tokens), as the runs' own estimate does."""
    from ..estimate import DEFAULT_MAX_TOKENS
    from .engine import estimate_scoring

    paid = [s for s in scorers if s.uses_model]
    if not paid or not planned:
        return None
    items = []
    for prepared in planned:
        record = prepared.record
        words = record.max_tokens or DEFAULT_MAX_TOKENS
        try:
            variables = json.loads(record.variables) if record.variables else {}
        except ValueError:
            variables = {}
        items.append(
            Item(
                output=" ".join(["word"] * words),  # ~1 token a word
                expected=getattr(record, "expected", None),
                vars=variables if isinstance(variables, dict) else {},
                input=record.prompt or "",
                run={"experiment": record.experiment, "model": record.model},
            )
        )
    total: Estimate = estimate_scoring(paid, items, session)
    return total


def _compact(name: str, value: Any, passed: Any) -> str:
    if passed is True or passed is False:
        return f"{name} {'✓' if passed else '✗'}"
    if value is None or value != value:  # None or NaN: the scorer had no answer
        return f"{name} ?"
    return f"{name} {float(value):.3g}"


def compact(scores: pd.DataFrame) -> list[str]:
    """Scores of one run as short labels: ``contains ✓``, ``judge 4``, ``similar 0.91``."""
    import pandas as pd

    # pd.isna: a judge without a threshold has no verdict, read back as pd.NA, whose
    # truth value raises (``passed != passed`` is NA too).
    return [
        _compact(str(name), value, None if pd.isna(passed) else bool(passed))
        for name, value, passed in zip(
            scores["scorer"], scores["value"], scores["passed"].astype(object), strict=True
        )
    ]


def compact_row(run: Any) -> str:
    """The ``score:`` columns of one row of a runs table, as short labels."""
    from .columns import PREFIX

    labels = [
        _compact(str(key).removeprefix(PREFIX), value, None)
        for key, value in run.items()
        if str(key).startswith(PREFIX) and value is not None and value == value
    ]
    return " · ".join(labels)
