"""Scoring while a sweep or a cell runs: each run is scored as soon as its row lands.

Scorers run on worker threads, never on the sweep's event loop. Scorers that call no
model score each run as it lands, up to the sweep's concurrency at once (a slow scorer
does not hold the others). A judge scores the runs that have landed in batches, and its
calls join the sweep's own dispatch on the sweep's event loop: they share its rate
limits and its concurrency instead of queueing behind the generations. When the sweep
ends, one more pass scores what the workers did not see (runs answered before, in an
earlier run of the sweep) and retries the scores that failed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from workbench.calls.budget.estimate import DEFAULT_MAX_TOKENS
from workbench.scoring.base import Item, Scorer, as_scorers
from workbench.scoring.columns import PREFIX

# The engine (and through it the dispatcher, httpx, pandas) is imported where it is used:
# ``import workbench`` loads this module for compact_row (compare.py) and must stay light.
if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.budget.charge import SweepSpend
    from workbench.calls.budget.estimate import Estimate
    from workbench.calls.progress import SharedProgress
    from workbench.calls.session import PreparedChat, Session
    from workbench.core.record import RunRecord
    from workbench.scoring.calls import ModelCalls

__all__ = ["LiveScoring", "estimate_planned", "compact", "compact_row"]


class LiveScoring:
    """Scores runs handed to :meth:`add` on worker threads; :meth:`finish` waits.
    With ``spend`` (set by the sweep for each of its runs), model calls count against
    the sweep's budget. ``concurrency``: the sweep's."""

    def __init__(self, scorers: Any, session: Session, *, concurrency: int = 8) -> None:
        self.scorers: list[Scorer] = as_scorers(scorers)
        self.session = session
        self.concurrency = concurrency
        self.spend: SweepSpend | None = None
        self.progress: SharedProgress | None = None  # the sweep's: counts the judge's calls
        self._free = [s for s in self.scorers if not s.uses_model]
        self._paid = [s for s in self.scorers if s.uses_model]
        self._pool: ThreadPoolExecutor | None = None  # scorers that call no model
        self._batches: ThreadPoolExecutor | None = None  # one worker for model scorers
        self._batching: Future[Any] | None = None
        self._waiting: list[RunRecord] = []  # runs landed, not yet taken by a batch
        self._futures: list[Future[Any]] = []
        self._calls: ModelCalls | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._lock = threading.Lock()

    def calls(self) -> ModelCalls:
        """The model calls of this run of the sweep (its loop, spend and concurrency)."""
        from workbench.scoring.calls import ModelCalls  # light import workbench: see the top

        with self._lock:
            if self._calls is None:
                self._calls = ModelCalls(self.session, concurrency=self.concurrency,
                                         sweep=self.spend, loop=self._loop,
                                         progress=self.progress)
            return self._calls

    def estimate(self, planned: Sequence[PreparedChat]) -> Estimate | None:
        """What the scorers' model calls would cost for the runs ``planned``."""
        return estimate_planned(self.scorers, planned, self.calls())

    def add(self, record: RunRecord) -> None:
        """Score one finished run, in the background; a failed run is not scored."""
        if record.status != "ok" or record.output is None:
            return
        try:  # called on the sweep's event loop: the judge's calls are sent there too
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            if self._stopping:
                return
            if loop is not None and self._loop is not loop:
                self._loop, self._calls = loop, None
            if self._free:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.concurrency, "scoring")
                self._futures.append(self._pool.submit(self._score, [record], self._free))
            if self._paid:
                self._waiting.append(record)
                if self._batching is None:
                    if self._batches is None:
                        self._batches = ThreadPoolExecutor(1, "judging")
                    self._batching = self._batches.submit(self._score_batches)
                    self._futures.append(self._batching)

    def _score(self, data: Any, scorers: Sequence[Scorer]) -> pd.DataFrame:
        from workbench.scoring.engine import score_within  # light import workbench: see the top

        return score_within(data, scorers, calls=self.calls())

    def _score_batches(self) -> None:
        """Every run waiting, as one batch (its judge calls go out together, at the
        sweep's concurrency), until none waits."""
        while True:
            with self._lock:
                records, self._waiting = self._waiting, []
                if not records or self._stopping:
                    self._batching = None
                    return
            try:
                self._score(records, self._paid)
            except BaseException:
                with self._lock:
                    self._batching = None
                raise

    def finish(self, runs: pd.DataFrame | None = None) -> None:
        """Wait for the scores in flight (raising what stopped them, e.g. a budget), then
        score whatever of ``runs`` is still unscored, or failed."""
        try:
            while True:
                with self._lock:
                    futures, self._futures = self._futures, []
                if not futures:
                    break
                for future in futures:
                    future.result()
        finally:
            self._shutdown(wait=True)
        if runs is not None and not runs.empty:
            self._score(runs, self.scorers)
        with self._lock:
            self._calls = self._loop = None

    def settle(self) -> None:
        """After the sweep stopped: let the scoring under way end (a judge's answer in
        flight was paid for, and its score is kept), drop the runs not yet scored, and
        raise nothing: the sweep raises why it stopped."""
        with self._lock:
            self._stopping, self._waiting, self._futures = True, [], []
        self._shutdown(wait=True)
        with self._lock:
            self._stopping, self._calls, self._loop = False, None, None

    def cancel(self) -> None:
        with self._lock:
            self._stopping, self._waiting, self._futures = True, [], []
            if self._calls is not None:
                self._calls.cancel()
        self._shutdown(wait=False)
        with self._lock:
            self._stopping, self._calls, self._loop = False, None, None

    def _shutdown(self, *, wait: bool) -> None:
        with self._lock:
            pools = [p for p in (self._pool, self._batches) if p is not None]
            self._pool = self._batches = self._batching = None
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=True)


def estimate_planned(
    scorers: Sequence[Scorer], planned: Sequence[PreparedChat], calls: ModelCalls
) -> Estimate | None:
    """What the scorers' model calls would cost for runs not yet made: each output is
    taken at its worst-case length (max_tokens), as the runs' own estimate does."""
    from workbench.scoring.engine import estimate_scoring  # light import workbench: see the top

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
    total: Estimate = estimate_scoring(paid, items, calls)
    return total


def _compact(name: str, value: Any, passed: Any) -> str:
    if passed is True or passed is False:
        return f"{name} {'✓' if passed else '✗'}"
    if value is None or value != value:  # None or NaN: the scorer had no answer
        return f"{name} ?"
    return f"{name} {float(value):.3g}"


def compact(scores: pd.DataFrame) -> list[str]:
    """Scores of one run as short labels: ``contains ✓``, ``judge 4``, ``similar 0.91``."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

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
    labels = [
        _compact(str(key).removeprefix(PREFIX), value, None)
        for key, value in run.items()
        if str(key).startswith(PREFIX) and value is not None and value == value
    ]
    return " · ".join(labels)
