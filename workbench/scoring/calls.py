"""How scorers that call a model send their calls: given by the caller, never looked up.

A :class:`ModelCalls` is built by the top floor (``wb.score``, a sweep, a cell) from the
session it holds, and carries what scoring needs: the store, the default experiment, the
budget to keep, how many calls may be in flight, and the path calls take. Judge calls go
through the sweep's path (:class:`workbench.calls.dispatch.Dispatcher`: its limits, pacing,
429 handling, one row per call), on the sweep's own event loop when a sweep is running,
so that they share its rate limits instead of queueing behind it.

Each judge call is claimed in the store before it is sent (on SQLite and PostgreSQL
alike): two processes scoring the same runs pay each call once; the second waits for the
first's answer and replays it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from workbench.calls.budget.charge import Spend
from workbench.calls.dispatch import Dispatcher, Job
from workbench.calls.progress import SharedProgress
from workbench.calls.results import ChatResponse
from workbench.core.errors import BudgetExceededError, StoreError, WorkbenchError

if TYPE_CHECKING:
    from workbench.calls.budget.charge import SweepSpend
    from workbench.calls.budget.estimate import Estimate
    from workbench.calls.budget.session_budget import Budget
    from workbench.calls.results import EmbedResponse
    from workbench.calls.session import Message, PreparedChat, Session
    from workbench.core.record import RunRecord
    from workbench.store import AnyStore

__all__ = ["ModelCalls", "Outcome", "Spending"]

# A claimed call whose row has not come is polled this often (as sweeps do).
_POLL_S = 0.25


# Scoring's model calls against its budget and, inside a sweep, the sweep's: the one
# budget's Spend (calls/budget.py), under the name scorers have used.
Spending = Spend


@dataclass
class Outcome:
    """One call's end: its response, or why there is none (``error``; ``exc`` the error)."""

    response: ChatResponse | None = None
    error: str = ""
    exc: BaseException | None = None


class ModelCalls:
    """The model-call side of scoring, handed down by the caller (see the module doc)."""

    def __init__(
        self,
        session: Session,
        *,
        concurrency: int = 4,
        budget: Decimal | None = None,
        sweep: SweepSpend | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        progress: SharedProgress | None = None,
    ) -> None:
        self._session = session
        self.progress = progress  # a sweep's: its to_score/scored count these calls
        self.concurrency = concurrency
        self.spending = session.spend.spend(  # the one budget's Spend (calls/budget)
            "Scoring", budget, within=sweep,
            kept="the scores so far are stored", again="score again",
        )
        self.loop = loop  # a running sweep's event loop: judge calls join its dispatch
        self.cancelled = threading.Event()
        self._in_flight: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop: nothing more is sent, and the dispatch under way on the sweep's loop is
        cancelled (called on that loop's thread, while it still runs)."""
        self.cancelled.set()
        with self._lock:
            in_flight = list(self._in_flight)
        for future in in_flight:
            future.cancel()

    # -- what scorers read ------------------------------------------------------------

    @property
    def store(self) -> AnyStore:
        return self._session.store

    @property
    def experiment(self) -> str:
        return self._session.experiment

    def remaining_budget(self) -> Decimal | None:
        return self._session.remaining_budget()

    @property
    def session_budget(self) -> Budget:
        """The session's budget: a refusal before sending is checked against it."""
        return self._session.spend

    def target(self, model: str | None) -> tuple[Any, str]:
        """(provider, model name) a scorer's ``model`` resolves to."""
        provider, name = self._session.resolve(model, None)
        return provider, self._session.chat_model_for(provider, name)

    def prepare(self, messages: Sequence[Message], **knobs: Any) -> PreparedChat:
        return self._session.prepare_chat(messages, **knobs)

    def cached(self, prepared: PreparedChat) -> ChatResponse | None:
        return self._session.cached(prepared)

    def estimate(self, messages: Sequence[Message], **kwargs: Any) -> Estimate:
        return self._session.spend.estimate_messages(messages, **kwargs)  # the one budget

    def embed(self, texts: Sequence[str], **kwargs: Any) -> EmbedResponse:
        from workbench.calls.embedding import (
            embed,  # numpy and the vector cache: only for embed scorers
        )

        self.spending.check()
        response = embed(self._session, texts, **kwargs)
        self.spending.add(response.cost_usd or 0.0)
        return response

    # -- sending ----------------------------------------------------------------------

    def send_claimed(self, prepared: Sequence[PreparedChat], *, claim: bool) -> list[Outcome]:
        """Send each call once across every process sharing the store: claim it first
        (``claim``), wait for and replay one that someone else has claimed."""
        outcomes: dict[int, Outcome] = {}
        todo = list(range(len(prepared)))
        # A claim older than a call's deadline is stale (its process died): taken over.
        stale_s = self._session.deadline + 60.0
        first = True
        while todo:
            mine, theirs = [], []
            for i in todo:
                record = prepared[i].record
                if not first and (hit := self.cached(prepared[i])) is not None:
                    outcomes[i] = Outcome(hit)  # their answer came: replayed, not paid
                elif not claim or self.store.claim(
                    record.request_hash, record.sample_index, record.run_id, stale_s
                ):
                    mine.append(i)
                else:
                    theirs.append(i)
            first = False
            try:
                sent = self.send([prepared[i] for i in mine])
            except PartialSend as partial:  # answered ones keep their claim: never resent
                for i, outcome in zip(mine, partial.outcomes, strict=True):
                    if outcome.response is None and claim:
                        self._release(prepared[i].record)
                raise
            except BaseException:
                if claim:
                    for i in mine:
                        self._release(prepared[i].record)
                raise
            for i, outcome in zip(mine, sent, strict=True):
                outcomes[i] = outcome
                if outcome.response is None and claim:  # failed: let another retry it
                    self._release(prepared[i].record)
            todo = theirs
            if todo:
                if self.cancelled.is_set():
                    raise asyncio.CancelledError()  # a BaseException: no score is written
                time.sleep(_POLL_S)  # their calls are in flight; their rows are coming
        return [outcomes[i] for i in range(len(prepared))]

    def _release(self, record: RunRecord) -> None:
        with contextlib.suppress(Exception):  # the error row says what went wrong
            self.store.release(record.request_hash, record.sample_index, record.run_id)

    def send(self, prepared: Sequence[PreparedChat]) -> list[Outcome]:
        """Send ``prepared`` through the sweep's dispatcher (limits, pacing, retries, a
        row per call), at most ``concurrency`` at once; one outcome each, in order."""
        if not prepared:
            return []
        answers: dict[str, ChatResponse] = {}
        errors: dict[str, BaseException] = {}
        coroutine = self._dispatch(prepared, answers, errors)
        stopped: BaseException | None = None
        failed: BaseException | None = None
        try:
            if self.loop is not None and self.loop.is_running():
                self._on_loop(coroutine)
            else:
                _run_elsewhere(coroutine)
        except (BudgetExceededError, StoreError) as exc:  # nothing more may be sent
            stopped = exc
        except WorkbenchError as exc:  # e.g. calls failing in a row: those unsent fail
            failed = exc
        outcomes = []
        for each in prepared:
            key = each.record.request_hash
            if key in answers:
                outcomes.append(Outcome(answers[key]))
            elif key in errors:
                error = errors[key]
                outcomes.append(Outcome(None, f"judge call failed: {_line(error)}", error))
            elif stopped is not None:
                what = "budget" if isinstance(stopped, BudgetExceededError) else "not sent"
                outcomes.append(Outcome(None, f"{what}: {_line(stopped)}", stopped))
            elif failed is not None:
                outcomes.append(Outcome(None, f"judge call not sent: {_line(failed)}", failed))
            else:
                outcomes.append(Outcome(None, "judge call not sent: the calls were stopped"))
        if stopped is not None:
            raise PartialSend(outcomes, stopped)
        return outcomes

    def _on_loop(self, coroutine: Any) -> None:
        loop = cast(asyncio.AbstractEventLoop, self.loop)
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        with self._lock:
            self._in_flight.add(future)
        try:
            while True:
                try:
                    future.result(timeout=0.5)
                    return
                except concurrent.futures.CancelledError:
                    # Stopped with the sweep: a BaseException, so that no score is written
                    # for calls that did not end (an Exception would be a failed score).
                    raise asyncio.CancelledError() from None
                except concurrent.futures.TimeoutError:
                    # The sweep was stopped and its loop ended: nothing will answer.
                    if self.cancelled.is_set() or not loop.is_running():
                        future.cancel()
                        raise asyncio.CancelledError() from None
        finally:
            with self._lock:
                self._in_flight.discard(future)

    async def _dispatch(
        self,
        prepared: Sequence[PreparedChat],
        answers: dict[str, ChatResponse],
        errors: dict[str, BaseException],
    ) -> None:
        def on_row(record: RunRecord) -> None:
            answers[record.request_hash] = ChatResponse(record=record)
            if self.progress is not None:
                self.progress.add(scored=1)

        # The dispatcher logs a failed call's row through the session; this records the
        # error beside it so that the score can say why.
        recording = _RecordingErrors(self._session, errors, self.progress)
        dispatcher = Dispatcher(
            cast("Session", recording),
            SharedProgress(),
            concurrency=self.concurrency,
            claims=False,  # claimed above, on every backend
            on_row=on_row,
            spend=cast("SweepSpend", self.spending),
        )
        jobs = [Job(p, _reserved_tokens(p)) for p in _unique(prepared)]
        if self.progress is not None:
            self.progress.add(to_score=len(jobs))
        await dispatcher.run(jobs)


class PartialSend(Exception):
    """Sending stopped part-way (a budget): the outcomes so far, and why it stopped."""

    def __init__(self, outcomes: list[Outcome], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.outcomes, self.cause = outcomes, cause


class _RecordingErrors:
    """The session, as the dispatcher sees it, with each failed call's error kept."""

    def __init__(self, session: Session, errors: dict[str, BaseException],
                 progress: SharedProgress | None = None) -> None:
        self._session, self._errors, self._progress = session, errors, progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def finish_error(self, record: RunRecord, exc: BaseException, *args: Any,
                     **kwargs: Any) -> Any:
        self._errors[record.request_hash] = exc
        if self._progress is not None:
            self._progress.add(scored=1)
        return self._session.finish_error(record, exc, *args, **kwargs)


def _unique(prepared: Sequence[PreparedChat]) -> list[PreparedChat]:
    """One call per request: two runs with the same output ask the judge the same thing."""
    seen: dict[str, PreparedChat] = {}
    for each in prepared:
        seen.setdefault(each.record.request_hash, each)
    return list(seen.values())


def _reserved_tokens(prepared: PreparedChat) -> int:
    """What a call may spend of a token limit: its prompt and the most it may answer."""
    from workbench.core.tokens import count_chat_tokens  # tiktoken: loaded on the first judge call

    reserved = prepared.body.get("max_completion_tokens") or prepared.record.max_tokens or 0
    return count_chat_tokens(prepared.body["messages"], prepared.record.model) + int(reserved)


def _run_elsewhere(coroutine: Any) -> None:
    """Run ``coroutine`` to its end on a loop of its own, in a thread: the caller's thread
    may already run one (Jupyter's)."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="judge") as pool:
        pool.submit(asyncio.run, coroutine).result()


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
