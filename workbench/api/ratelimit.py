"""How many of a sweep's calls to one model may be in flight, and when to wait.

Part of the limits layer (:mod:`workbench.api.limits`, which every call goes through).
Per (provider, model) an AIMD limit (halve on a 429, grow by about one per window of
successes), the server's ``retry-after`` as a pause for every call of that model, and its
``x-ratelimit-*`` headers: paced to where it announces its limits (:mod:`workbench.api.pacing`),
else used to slow down before a limit is hit. The timing rules are pure
functions of an injectable clock; only :meth:`AdaptiveLimiter.acquire` awaits.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass

from workbench.api.headers import parse_count, parse_reset
from workbench.api.pacing import BeyondDeadline, Pacer, Ticket

__all__ = ["AdaptiveLimiter", "parse_reset"]


@dataclass
class _Quota:
    """What the server said is left of one of its limits, and when the window resets."""

    remaining: int | None = None
    reset_at: float | None = None

    def update(self, remaining: int | None, reset_s: float | None, now: float) -> None:
        if remaining is not None:
            self.remaining = remaining
            self.reset_at = None if reset_s is None else now + reset_s

    def expire(self, now: float) -> None:
        # After the reset the old count says nothing; the next response says what is left.
        if self.reset_at is not None and now >= self.reset_at:
            self.remaining, self.reset_at = None, None

    def wait(self, needed: int, now: float) -> float:
        if self.remaining is None or needed <= self.remaining or self.reset_at is None:
            # Without a reset time there is nothing sound to wait for: go, and let a 429
            # (with its retry-after) correct us.
            return 0.0
        return self.reset_at - now

    def spend(self, amount: int) -> None:
        if self.remaining is not None:
            self.remaining -= amount

    def blocks(self, now: float) -> bool:
        return self.wait(1, now) > 0


class AdaptiveLimiter:
    """The calls of one (provider, model) in one sweep: an AIMD concurrency limit, the
    session's :class:`~workbench.api.pacing.Pacer` for that model, and the server's quotas.

    ``limit`` starts at ``max_concurrency``. Where the server announces its limits the
    pacer keeps the rate and a 429 only pauses; where it announces nothing a 429 halves
    ``limit``, once per flight of calls (a 429 of a call sent before the last halving is
    news of the same overload) and once per retry-after window; each success adds
    ``1/limit``, so a full window of successes adds one.
    """

    def __init__(
        self,
        max_concurrency: int,
        *,
        min_concurrency: int = 1,
        clock: Callable[[], float] = time.monotonic,
        pacer: Pacer | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"concurrency must be 1 or more, not {max_concurrency}")
        self.max_concurrency = max_concurrency
        self.min_concurrency = min(min_concurrency, max_concurrency)
        self.limit = float(max_concurrency)
        self.in_flight = 0
        self.started = 0  # calls ever started: a 429's call is "before" or "after" a halving
        self.rate_limited = 0  # 429s seen
        self.pacer = pacer if pacer is not None else Pacer(clock)
        self._no_decrease_until = 0.0
        self._decreased_at_start = -1
        self._requests = _Quota()
        self._tokens = _Quota()
        self._clock = clock
        self._changed: asyncio.Event | None = None

    @property
    def paused_until(self) -> float:
        return self.pacer.paused_until

    # -- the rules (pure, clock-driven) --------------------------------------------

    def wait_time(self, tokens: int = 0) -> float:
        """0 to start a call now, ``math.inf`` to wait for one to finish, else seconds.

        (The pacer's queue is not in here: a call joins it once it may start, see
        :meth:`acquire`.)"""
        now = self._clock()
        timed = self.pacer.pause_left()
        if not self.pacer.announced:
            # With the limits announced the pacer models the server's bucket, refilling
            # continuously; "remaining 0, full again in 1 s" read as a window held every
            # call for the whole reset (1 s stalls, ~15 % of a 10 s sweep).
            self._requests.expire(now)
            self._tokens.expire(now)
            timed = max(timed, self._requests.wait(1, now), self._tokens.wait(tokens, now))
        if timed > 0:
            return timed
        return math.inf if self.in_flight >= int(self.limit) else 0.0

    def start(self, tokens: int = 0) -> int:
        """Count a call as sent (and spend from the server's quotas until it says more);
        returns the call's start number."""
        self.in_flight += 1
        self.started += 1
        self._requests.spend(1)
        self._tokens.spend(tokens)
        return self.started

    def finish(self) -> None:
        self.in_flight -= 1
        self._notify()

    def on_success(self, headers: Mapping[str, str], ticket: Ticket | None = None) -> None:
        self.limit = min(float(self.max_concurrency), self.limit + 1.0 / self.limit)
        self.observe(headers)
        if ticket is not None:
            self.pacer.observe(ticket, headers)
        self._notify()

    def on_rate_limited(
        self,
        delay: float,
        headers: Mapping[str, str] | None = None,
        started: int | None = None,
        ticket: Ticket | None = None,
    ) -> None:
        """A 429 (or a call that gave up on one) of the call ``started`` (its start number;
        None: the latest; ``ticket``: its place in the pacer): back off and pause for
        ``delay`` seconds."""
        self.note_rate_limited(delay, started, headers)
        self.pacer.rate_limited(delay, headers, ticket)

    def note_rate_limited(
        self, delay: float, started: int | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """The AIMD half of :meth:`on_rate_limited` (the pacer hears of the 429 from the
        caller, see :meth:`workbench.api.pacing.Pacer.retry`)."""
        now = self._clock()
        self.rate_limited += 1
        started = self.started if started is None else started
        # With announced limits the pacer keeps the rate; halving concurrency on top would
        # only idle the sweep (scattered 429s with tiny retry-after-ms values held a
        # 64-wide sweep at 1-6 calls in flight).
        if (
            not self.pacer.announced
            and now >= self._no_decrease_until
            and started > self._decreased_at_start
        ):
            self.limit = max(float(self.min_concurrency), self.limit / 2)
            self._no_decrease_until = now + max(delay, 0.0)
            self._decreased_at_start = self.started
        if headers:
            self.observe(headers)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take in ``x-ratelimit-remaining-*`` / ``x-ratelimit-reset-*`` (lower-case names)."""
        now = self._clock()
        self._requests.update(
            parse_count(headers.get("x-ratelimit-remaining-requests")),
            parse_reset(headers.get("x-ratelimit-reset-requests")),
            now,
        )
        self._tokens.update(
            parse_count(headers.get("x-ratelimit-remaining-tokens")),
            parse_reset(headers.get("x-ratelimit-reset-tokens")),
            now,
        )

    # -- waiting ---------------------------------------------------------------------

    def _notify(self) -> None:
        # Wake every waiter to re-check the rules; an Event per generation needs no lock,
        # and everything runs on one event loop.
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def acquire(self, tokens: int = 0, within: float | None = None) -> tuple[int, Ticket]:
        """Wait until the rules allow one more call and the pacer's queue reaches it, then
        count it as started; returns its start number and pacing ticket. A server-announced
        wait longer than ``within`` seconds raises :class:`BeyondDeadline` at once."""
        while (wait := self.wait_time(tokens)) > 0:
            if within is not None and not math.isinf(wait) and wait > within:
                raise BeyondDeadline(
                    "requests" if self._requests.blocks(now=self._clock()) else "tokens", wait
                )
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            if math.isinf(wait):
                await changed.wait()
            else:
                with suppress(asyncio.TimeoutError):  # the time to re-check has come
                    await asyncio.wait_for(changed.wait(), wait)
        started = self.start(tokens)
        try:
            ticket = self.pacer.reserve(tokens, within)
            await asyncio.sleep(ticket.wait_s)
            # A 429 heard while this call waited its turn pauses it too, and a level found
            # lower than the pacer's pushes its turn back.
            while (pause := max(self.pacer.pause_left(), self.pacer.owed(ticket))) > 0:
                await asyncio.sleep(pause)
        except BaseException:
            self.finish()
            raise
        return started, ticket
