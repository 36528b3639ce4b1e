"""Sending a sweep's runs: one pooled httpx client, at most N calls at once, rate limits
respected, each finished call logged as one row the moment it ends.

Used by :mod:`workbench.sweeps.sweep` inside the event loop that runs the sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx

from workbench.api.client import AsyncOpenAIClient
from workbench.api.limits import LimitResetError
from workbench.api.slots import SlotTransport
from workbench.calls.budget import Spend
from workbench.calls.progress import SharedProgress, SweepProgress
from workbench.calls.session import PreparedChat
from workbench.core.errors import StoreError, WorkbenchError
from workbench.core.record import new_run_id

if TYPE_CHECKING:
    from workbench.api.client import (
        ChatResult,
    )
    from workbench.api.providers import Provider
    from workbench.calls.session import (
        Session,
    )
    from workbench.core.record import RunRecord
    from workbench.store.unsaved import UnsavedRun

__all__ = ["Job", "Dispatcher", "reserved_tokens"]


class Job:
    """One run to send; :attr:`tokens` (prompt + most completion tokens) feeds token quotas.

    Counted when first asked for, by the worker about to send it, unless the plan knew it
    (a priced sweep): counting 1,000 prompts before the first call took 0.07 s of a
    sweep's start, and a server that turns out to announce no tokens limit needs none.
    A job made with :meth:`later` builds its call (body and row) the same way: building
    1,000 calls before the first was sent took 0.3-0.7 s of a cold sweep's start."""

    __slots__ = ("_prepared", "_build", "provider", "model", "known_tokens")

    def __init__(self, prepared: PreparedChat, known_tokens: int | None = None) -> None:
        self._prepared: PreparedChat | None = prepared
        self._build: Callable[[], PreparedChat] | None = None
        self.provider: Provider = prepared.provider
        self.model: str = prepared.record.model
        self.known_tokens = known_tokens

    @classmethod
    def later(cls, build: Callable[[], PreparedChat], provider: Provider, model: str) -> Job:
        """A job whose call ``build()`` makes when it is first needed; ``provider`` and
        ``model`` are the call's (what the dispatcher groups jobs by before sending)."""
        job = cls.__new__(cls)
        job._prepared, job._build = None, build
        job.provider, job.model, job.known_tokens = provider, model, None
        return job

    @property
    def prepared(self) -> PreparedChat:
        if self._prepared is None:
            assert self._build is not None  # one of the two constructors set it
            self._prepared = self._build()
        return self._prepared

    @property
    def tokens(self) -> int:
        if self.known_tokens is None:
            self.known_tokens = reserved_tokens(self.prepared)
        return self.known_tokens


def reserved_tokens(prepared: PreparedChat) -> int:
    """What a call may spend of a token limit: its prompt and the most it may answer
    (as its estimate counts them)."""
    from workbench.calls.budget.estimate import DEFAULT_MAX_TOKENS  # the estimate's rule, in step
    from workbench.core.tokens import count_chat_tokens  # tiktoken: not on `import workbench`

    record = prepared.record
    worst = record.max_tokens if record.max_tokens is not None else DEFAULT_MAX_TOKENS
    return count_chat_tokens(list(prepared.body["messages"]), record.model) + worst


def attempt_of(prepared: PreparedChat) -> PreparedChat:
    """A copy with a new run_id and timestamp: a row is stamped when its call is made."""
    record = replace(prepared.record, run_id=new_run_id(), created_at=datetime.now(timezone.utc))
    return PreparedChat(provider=prepared.provider, body=prepared.body, record=record)


class Dispatcher:
    """Sends jobs concurrently and logs them; stops early on a budget or a dead provider.

    Calls that fail are logged as error rows and the sweep goes on, unless
    ``max(5, concurrency)`` fail in a row (a wrong URL or key fails every call the same
    way: better one clear error than a thousand rows of it). Spending past ``budget``
    (USD, this sweep; with ``spend``, its scorers' model calls count too) or the session's
    budget stops new calls with BudgetExceededError.
    A row the store refuses stops new calls with StoreError: that row, and those of calls
    already in flight, are kept in the fallback file (see :mod:`workbench.store.unsaved`).
    """

    def __init__(
        self,
        session: Session,
        progress: SharedProgress,
        *,
        concurrency: int,
        budget: Decimal | None = None,
        on_progress: Callable[[SweepProgress], None] | None = None,
        deadline: float | None = None,
        claims: bool = True,
        on_row: Callable[[RunRecord], None] | None = None,
        spend: Spend | None = None,
    ) -> None:
        self.session = session
        self.progress = progress
        self.concurrency = concurrency
        self.budget = budget
        self.on_progress = on_progress
        self.deadline = session.deadline if deadline is None else deadline
        # Claim each point in the store before sending it (False: a fresh sweep resends).
        self.claims = claims
        self.on_row = on_row  # each ok run's record, once its row is written
        # The session's one limits layer, with this sweep's concurrency and deadline.
        self.limits = session.limits.sweep(concurrency, self.deadline)
        # Shared with the sweep's scorers, whose model calls count against ``budget`` too.
        self.spend = spend if spend is not None else Spend("Sweep", budget, session.spend)
        self._failures_in_a_row = 0
        self._failure_limit = max(5, concurrency)
        self._unsaved: UnsavedRun | None = None  # the first row the store refused

    async def run(self, jobs: Sequence[Job]) -> None:
        """Send every job; returns when all have ended, raises what stopped the sweep."""
        if not jobs:
            return
        # One connection per call in flight, for every provider of the sweep: httpcore's
        # shared pool costs more CPU than the calls at high concurrency (see slots.py).
        slots = SlotTransport(self.concurrency)
        async with httpx.AsyncClient(timeout=self.session.timeout, transport=slots) as http:
            clients: dict[Provider, AsyncOpenAIClient] = {}
            for job in jobs:
                provider = job.provider
                if provider not in clients:
                    clients[provider] = await self._client(provider, http)
            # Per (provider, model), a worker per slot taking the next job of that model:
            # with a task per job, every finished call woke every job still waiting for
            # the rate limiter (~1 ms of CPU a run at 2,000 runs). Each model has workers
            # of its own, so a model paused by a 429 holds up none of another's calls.
            by_model: dict[tuple[str, str], list[Job]] = {}
            for job in jobs:
                model = (job.provider.identity, job.model)
                by_model.setdefault(model, []).append(job)

            # A limit that frees up only after the deadline stops the sweep gently: no new
            # call starts, and calls in flight finish and keep their (paid) answers.
            limit_reached: list[LimitResetError] = []

            async def worker(queue: Iterator[Job]) -> None:
                for job in queue:  # next() never awaits: no two workers take one job
                    if limit_reached:
                        return
                    try:
                        await self._one(job, clients[job.provider])
                    except LimitResetError as exc:
                        limit_reached.append(exc)
                        return

            tasks = []
            for group in by_model.values():
                queue = iter(group)
                workers = min(self.concurrency, len(group))
                tasks += [asyncio.create_task(worker(queue)) for _ in range(workers)]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    failure = None if task.cancelled() else task.exception()
                    if failure is not None:
                        raise failure
                if limit_reached:
                    raise limit_reached[0]
            finally:
                # On a stop (cancellation) or a failure, nothing more is sent; calls in
                # flight are abandoned and leave no row: they did not finish.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, provider: Provider, http: httpx.AsyncClient) -> AsyncOpenAIClient:
        # The local model starts on first use (~0.5 s): not on the event loop's thread.
        base_url = await asyncio.to_thread(provider.chat_base_url)
        return AsyncOpenAIClient(
            base_url,
            provider.key(),
            max_retries=self.session.max_retries,
            http_client=http,
            deadline=self.deadline,  # each go of a run (after a 429) has all of it
        )

    def _check_budget(self) -> None:
        self._check_saving()
        self.spend.check()  # the sweep's own budget, then the session's (calls/budget.py)

    async def _claimed(self, job: Job) -> bool:
        """Claim the point in the store; while someone else (another kernel, a colleague
        on a shared store) holds it, wait for their answer and replay it instead. The
        store's unique (request_hash, sample_index) key decides, so each point is sent once
        however many sweeps run it at once. A claim older than a call's deadline is stale
        (its kernel died) and is taken over."""
        store = self.session.store
        # Only a shared (PostgreSQL) store claims: on a local SQLite file it would cost a
        # second write transaction per call, for kernels that rarely sweep one grid twice.
        if not self.claims or not store.shared:
            return True
        record = job.prepared.record
        stale_s = self.deadline + 60.0
        while True:
            self._check_budget()
            try:
                got = await asyncio.to_thread(
                    store.claim, record.request_hash, record.sample_index, record.run_id, stale_s
                )
            except BaseException:
                # Stopped while the claim was being written: it may still land (the thread
                # runs on); this waits for it under the store's lock and gives it back.
                self._release(job.prepared)
                raise
            if got:
                return True
            if await asyncio.to_thread(self.session.cached, attempt_of(job.prepared)):
                self._report(done=1, ok=1, replayed=1)
                return False
            await asyncio.sleep(0.25)  # their call is in flight; its row is coming

    def _release(self, prepared: PreparedChat) -> None:
        """Give the claim back after a failure, so a later or parallel sweep may retry it."""
        if self.claims and self.session.store.shared:
            record = prepared.record
            with contextlib.suppress(Exception):  # the error row says what went wrong
                self.session.store.release(record.request_hash, record.sample_index, record.run_id)

    async def _one(self, job: Job, client: AsyncOpenAIClient) -> None:
        if not await self._claimed(job):
            return
        try:
            sent = await self._send(job, client)
        except BaseException:
            self._release(job.prepared)
            raise
        if not sent:
            self._release(job.prepared)

    async def _send(self, job: Job, client: AsyncOpenAIClient) -> bool:
        """Send the job; True when its answer was logged, False when it failed. Its 429s
        are the limits layer's: paced, paused and retried there (``limited``), once."""
        provider, model = job.provider.identity, job.model
        current = attempt_of(job.prepared)
        tokens = job.tokens if self.limits.counts_tokens(provider, model) else 0
        async with self.limits.slot(provider, model, tokens) as limited:
            self._check_budget()
            started = time.perf_counter()
            self._report(in_flight=1, sent=1)
            try:
                limited.sending()
                result = await client.chat(current.body, limits=limited)
            except LimitResetError as exc:
                # The limit frees up after the deadline: this call is a row with that
                # line, and the sweep stops with it (a later run resumes).
                self._failed(current, exc, started)
                raise
            except WorkbenchError as exc:
                self._failed(current, exc, started)
                return False
            finally:
                self._report(in_flight=-1)
            limited.on_success(result.headers)
            # Logged before anything else is awaited: a stop cannot come between an
            # answer and its row.
            self._succeeded(current, result)
            return True

    def _succeeded(self, prepared: PreparedChat, result: ChatResult) -> None:
        response = self.session.finish_ok(prepared, result, warn=False)
        if self.on_row is not None:
            self.on_row(response.record)
        cost = response.cost_usd
        self.spend.add(cost)
        self._failures_in_a_row = 0
        # An unknown cost is counted as unknown, never as $0.
        self._report(done=1, ok=1, spent_usd=cost or 0.0, unpriced=int(cost is None))
        self._check_saving(response.unsaved)

    def _failed(self, prepared: PreparedChat, exc: WorkbenchError, started: float) -> None:
        unsaved = self.session.finish_error(prepared.record, exc, started, warn=False)
        self._failures_in_a_row += 1
        self._report(done=1, errors=1)
        self._check_saving(unsaved)
        if self._failures_in_a_row >= self._failure_limit:
            self.progress.update(message=f"{self._failures_in_a_row} calls failed in a row")
            raise exc

    def _check_saving(self, unsaved: UnsavedRun | None = None) -> None:
        """Stop sending once the store has refused a row: every answer after that would
        only add to the fallback file. Raised by each worker, so all of them stop."""
        if self._unsaved is None:
            self._unsaved = unsaved
        if self._unsaved is not None:
            where = self._unsaved.kept_in or "nowhere: the fallback file failed too"
            raise StoreError(
                f"Sweep stopped: the store refused a row ({self._unsaved.reason}); the "
                f"answers that arrived are kept in {where} (wb.import_runs of that file "
                "brings them back; then run the sweep again to resume)"
            )

    def _report(self, **deltas: float) -> None:
        self.progress.add(**deltas)
        snapshot = self.progress.update(rate_limited=self.limits.rate_limited)
        if self.on_progress is not None and ("done" in deltas or "sent" in deltas):
            self.on_progress(snapshot)
