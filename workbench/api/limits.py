"""The one limits layer around the client: every call (a single chat, a sweep's runs, a
judge's calls, an embedding) takes its place here before it goes on the wire.

:class:`Limits` lives in the session: one :class:`~workbench.api.pacing.Pacer` per (provider,
model), shared by every caller, paced by the server's announced limits as OpenAI documents
them (per minute, maybe enforced per second, see :mod:`workbench.api.pacing`). A call asks it
for a :class:`CallLimits` (:meth:`Limits.call`, or :meth:`SweepLimits.slot` inside a
sweep, which adds a concurrency limit per sweep and per model), waits its turn, and hands
the client :meth:`CallLimits.on_retry`: the one place a 429 is heard. A wait the server
announces beyond the call's deadline (``remaining: 0`` until a daily reset) is refused
at once with :class:`LimitResetError`, one line saying when the limit resets.

The rules are pure functions of an injectable clock; :meth:`CallLimits.wait` and
:meth:`SweepLimits.slot` are what await.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

from workbench.api.headers import MAX_WAIT_S
from workbench.api.pacing import BeyondDeadline, Pacer, PacerRegistry, Ticket
from workbench.api.ratelimit import AdaptiveLimiter
from workbench.core.errors import RateLimitError

__all__ = [
    "SWEEP_RATE_LIMIT_RETRIES",
    "CallLimits",
    "LimitResetError",
    "Limits",
    "SweepLimits",
    "limit_reset_error",
]

# How many 429s a sweep's call waits out (each after its model's pause, queued behind the
# calls already waiting) before it is an error row: losing a run of a long sweep to a busy
# minute costs more than waiting. The one 429 policy: the client takes it from here
# (:attr:`CallLimits.rate_limit_retries`); 11 retries are the 12 attempts a sweep's call
# had before, when the dispatcher gave the client's 3 attempts 4 goes of its own.
SWEEP_RATE_LIMIT_RETRIES = 11


class LimitResetError(RateLimitError):
    """The server's rate limit frees up only after the call's deadline: refused before
    sending. ``resets_at`` is when (UTC)."""

    def __init__(self, message: str, *, resets_at: datetime) -> None:
        super().__init__(message, status_code=429)
        self.resets_at = resets_at


def _span(seconds: float) -> str:
    seconds = round(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "under a second"


def limit_reset_error(
    model: str, beyond: BeyondDeadline, deadline_s: float, *, sweep: bool = False
) -> LimitResetError:
    """The one line for a call whose limit frees up after its deadline."""
    wait = min(max(beyond.wait_s, 0.0), MAX_WAIT_S)
    resets_at = datetime.now(timezone.utc) + timedelta(seconds=wait)
    then = "run the sweep again then to resume" if sweep else "call again then"
    return LimitResetError(
        f"Rate limit: {model}'s {beyond.kind} limit frees up at "
        f"{resets_at:%Y-%m-%d %H:%M:%S} UTC (in {_span(wait)}, as the server "
        f"announced), after the call's deadline of {deadline_s:g} s: "
        f"{then}, or pass a longer deadline",
        resets_at=resets_at,
    )


class CallLimits:
    """One call's pass through the limits: its place in the pacer's queue, and the hook
    through which the client reports 429s. Build it with :meth:`Limits.call`."""

    def __init__(
        self,
        pacer: Pacer,
        ticket: Ticket,
        model: str,
        deadline_s: float | None,
        *,
        limiter: AdaptiveLimiter | None = None,
        started: int | None = None,
        sweep: bool = False,
    ) -> None:
        self.pacer = pacer
        self.ticket = ticket
        self.model = model
        self.deadline_s = deadline_s
        self.limiter = limiter  # a sweep's AIMD limit for this model, if any
        self.started = started
        self.sweep = sweep
        self.retries_seen: list[int | None] = []

    @property
    def rate_limit_retries(self) -> int | None:
        """How many 429s the client retries for this call (None: its ``max_retries``)."""
        return SWEEP_RATE_LIMIT_RETRIES if self.sweep else None

    def _refused(self, beyond: BeyondDeadline) -> LimitResetError:
        return limit_reset_error(self.model, beyond, self.deadline_s or 0.0, sweep=self.sweep)

    def owed_s(self) -> float:
        """Seconds more to wait before sending: the queue was pushed back meanwhile."""
        return max(self.pacer.pause_left(), self.pacer.owed(self.ticket))

    async def wait(self) -> None:
        """Wait for this call's turn (asynchronously)."""
        await asyncio.sleep(self.ticket.wait_s)
        while (pause := self.owed_s()) > 0:
            await asyncio.sleep(pause)

    def wait_blocking(self) -> None:
        """Wait for this call's turn on this thread (single synchronous calls)."""
        time.sleep(self.ticket.wait_s)
        while (pause := self.owed_s()) > 0:
            time.sleep(pause)

    def sending(self) -> None:
        """The call is about to go on the wire (see :meth:`Pacer.sending`)."""
        self.pacer.sending(self.ticket)

    @property
    def extensions(self) -> dict[str, Any]:
        """httpx request extensions: a trace that stamps when the request is on the wire."""
        return {"trace": self._trace}

    async def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        # httpcore's "http11.send_request_body.complete" (or http2's): the request has
        # been written, after its connection was opened. (The sync client is not traced.)
        if event.endswith("send_request_body.complete"):
            self.pacer.written(self.ticket)

    def on_retry(self, status: int | None, headers: Mapping[str, str], delay: float) -> float:
        """The client's retry hook (:data:`workbench.api.client.RetryHook`): the one place a
        429 is heard. Returns how long the retry must wait, at least ``delay``; a wait
        the server announces beyond the deadline raises :class:`LimitResetError`."""
        self.retries_seen.append(status)
        if status != 429:
            return delay
        if self.limiter is not None:
            self.limiter.note_rate_limited(delay, self.started, headers)
        try:
            self.ticket, wait = self.pacer.retry(self.ticket, delay, headers, self.deadline_s)
        except BeyondDeadline as beyond:
            raise self._refused(beyond) from None
        return wait

    def on_success(self, headers: Mapping[str, str]) -> None:
        """Take in the response's ``x-ratelimit-*`` headers (lower-case names)."""
        if self.limiter is not None:
            self.limiter.on_success(headers, self.ticket)
        else:
            self.pacer.observe(self.ticket, headers)


class Limits:
    """The session's limits: one pacer per (provider, model), shared by every caller."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.pacers = PacerRegistry(clock)

    def pacer(self, provider: str, model: str) -> Pacer:
        return self.pacers.pacer(provider, model)

    def needs_tokens(self, provider: str, model: str) -> bool:
        """Whether a token count is worth making: only a tokens limit needs it."""
        return self.pacer(provider, model).tokens.bucket is not None

    def call(
        self, provider: str, model: str, tokens: int = 0, deadline_s: float | None = None
    ) -> CallLimits:
        """A single call's place in its model's queue; raises :class:`LimitResetError` at
        once when the server's announced limit frees up only after ``deadline_s``."""
        pacer = self.pacer(provider, model)
        try:
            ticket = pacer.reserve(tokens, deadline_s)
        except BeyondDeadline as beyond:
            raise limit_reset_error(model, beyond, deadline_s or 0.0) from None
        return CallLimits(pacer, ticket, model, deadline_s)

    def sweep(self, concurrency: int, deadline_s: float | None = None) -> SweepLimits:
        """The limits of one sweep (or a batch of judge calls): at most ``concurrency``
        calls in flight in all and per model, paced by this session's pacers."""
        return SweepLimits(self, concurrency, deadline_s)


class SweepLimits:
    """Every limiter of one sweep: at most ``concurrency`` calls in all, and per model
    (an AIMD limit where the server announces nothing); the pacers are the session's."""

    def __init__(self, limits: Limits, concurrency: int, deadline_s: float | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be 1 or more, not {concurrency}")
        self.concurrency = concurrency
        self.deadline_s = deadline_s
        self._limits = limits
        self._limiters: dict[tuple[str, str], AdaptiveLimiter] = {}
        self._total: asyncio.Semaphore | None = None

    def limiter(self, provider: str, model: str) -> AdaptiveLimiter:
        key = (provider, model)
        if key not in self._limiters:
            self._limiters[key] = AdaptiveLimiter(
                self.concurrency,
                clock=self._limits.clock,
                pacer=self._limits.pacer(provider, model),
            )
        return self._limiters[key]

    def counts_tokens(self, provider: str, model: str) -> bool:
        """Whether a call's token count is worth making: a tokens limit is announced, or
        nothing is known yet (the first calls' tokens must be reserved, or the first
        answer's ``remaining`` would be read without the calls in flight)."""
        pacer = self._limits.pacer(provider, model)
        return not pacer.announced or pacer.tokens.bucket is not None

    @property
    def rate_limited(self) -> int:
        """How many 429s the sweep has met, over every model."""
        return sum(limiter.rate_limited for limiter in self._limiters.values())

    @asynccontextmanager
    async def slot(self, provider: str, model: str, tokens: int = 0) -> AsyncIterator[CallLimits]:
        """``async with limits.slot(p, m, tokens) as call:`` around one call; raises
        :class:`LimitResetError` when the model's limit frees up after the deadline."""
        if self._total is None:
            self._total = asyncio.Semaphore(self.concurrency)
        limiter = self.limiter(provider, model)
        # The model's own limit first: a call waiting out its model's pause must not
        # hold one of the sweep's slots that another model's call could use.
        try:
            started, ticket = await limiter.acquire(tokens, self.deadline_s)
        except BeyondDeadline as beyond:
            raise limit_reset_error(model, beyond, self.deadline_s or 0.0, sweep=True) from None
        try:
            async with self._total:
                yield CallLimits(
                    limiter.pacer,
                    ticket,
                    model,
                    self.deadline_s,
                    limiter=limiter,
                    started=started,
                    sweep=True,
                )
        finally:
            limiter.finish()
