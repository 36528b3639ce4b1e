"""Pacing to the limits a server announces: a token bucket per limit, shared by the session.

OpenAI-style servers send ``x-ratelimit-limit-requests`` / ``-tokens`` (the bucket's size),
``-remaining-*`` (what is left) and ``-reset-*`` (how long until it is full again). From
those a :class:`Pacer` models each limit as a continuous token bucket and hands every call
a start time at which the bucket will hold what it needs, so a sweep runs at the limit
instead of finding it by 429s (which, on OpenAI, count against the limit too). Servers that
announce nothing are left to :mod:`workbench.ratelimit`'s AIMD and retry-after handling.

The rules are pure functions of an injectable clock, as in ``ratelimit``; one pacer per
(provider, model) lives in the session, so two sweeps at once split one limit. A lock, not
the event loop, guards it: sweeps run on their own loops and single calls on the caller's
thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Announced", "TokenBucket", "Ticket", "Pacer", "PacerRegistry", "announced_limits"]

# What a bucket's refill rate is taken to be before the server's reset times tell it:
# OpenAI's limits are per minute.
_DEFAULT_WINDOW_S = 60.0
# Weight of a new refill-rate reading against the running estimate: the reset header is
# rounded (to the millisecond, or to whole seconds in "6m0s"), so one reading is noisy.
_RATE_SMOOTHING = 0.2


@dataclass(frozen=True)
class Announced:
    """One limit as a response announced it."""

    limit: int
    remaining: int
    reset_s: float | None


def announced_limits(headers: Mapping[str, str], kind: str) -> Announced | None:
    """The ``requests`` or ``tokens`` limit in ``headers`` (lower-case names), if any."""
    from .ratelimit import parse_reset

    limit = _count(headers.get(f"x-ratelimit-limit-{kind}"))
    remaining = _count(headers.get(f"x-ratelimit-remaining-{kind}"))
    if limit is None or remaining is None or limit <= 0:
        return None
    reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
    return Announced(limit, min(remaining, limit), reset)


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number >= 0 else None


class TokenBucket:
    """A continuous token bucket: ``capacity`` at most, refilled at ``rate`` per second.

    :meth:`reserve` never refuses: it takes what a call needs, letting the level go below
    zero, and says how long until the level was enough, so callers queue in the order they
    asked and each sleeps once (a herd of waiters re-checking a shared level cost ~64
    wake-ups a call at concurrency 64).
    """

    def __init__(self, capacity: float, rate: float, now: float, level: float | None = None):
        self.capacity = float(capacity)
        self.rate = float(rate)
        self.level = self.capacity if level is None else float(level)
        self.updated_at = now

    def refill(self, now: float) -> None:
        if now > self.updated_at:
            self.level = min(self.capacity, self.level + (now - self.updated_at) * self.rate)
        self.updated_at = max(self.updated_at, now)

    def reserve(self, amount: float, now: float) -> float:
        """Take ``amount``; seconds to wait before using it (0: go now)."""
        self.refill(now)
        # More than the whole bucket can never be "available": wait for a full bucket.
        amount = min(amount, self.capacity)
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def cap(self, level: float, now: float) -> None:
        """Lower the level to what the server says (never raise it: in-flight calls the
        server has not counted yet are already taken here)."""
        self.refill(now)
        self.level = min(self.level, level)


class _Limit:
    """One announced limit (requests or tokens) of one (provider, model)."""

    def __init__(self) -> None:
        self.bucket: TokenBucket | None = None
        self.taken = 0.0  # all ever reserved: a response has not seen what came after it

    def reserve(self, amount: float, now: float) -> tuple[float, float]:
        """(seconds to wait, this call's mark: ``taken`` once it is counted)."""
        self.taken += amount
        wait = 0.0 if self.bucket is None else self.bucket.reserve(amount, now)
        return wait, self.taken

    def observe(self, announced: Announced, mark: float, sent_at: float, now: float) -> None:
        """Take in what the response to a call (its ``mark``, sent at ``sent_at``) said."""
        rate = None
        if announced.reset_s and announced.reset_s > 0 and announced.remaining < announced.limit:
            # reset = time until full again = (limit - remaining) / rate.
            rate = (announced.limit - announced.remaining) / announced.reset_s
        bucket = self.bucket
        if bucket is None:
            rate = rate or announced.limit / _DEFAULT_WINDOW_S
            self.bucket = bucket = TokenBucket(announced.limit, rate, now)
        else:
            bucket.capacity = float(announced.limit)
            if rate is not None:
                bucket.rate += _RATE_SMOOTHING * (rate - bucket.rate)
        # The server counted this call and all before it when the call arrived (after
        # sent_at); calls reserved since are not in its "remaining", and the bucket has
        # refilled since at most (now - sent_at). Lower our level to that, never raise it:
        # reading a 200 ms-old "remaining" as now's would lose rate x 200 ms per answer.
        unseen = self.taken - mark
        bucket.cap(announced.remaining - unseen + (now - sent_at) * bucket.rate, now)

    def exhausted(self, now: float) -> None:
        """A 429 on this limit: whatever we thought, the server's bucket is empty."""
        if self.bucket is not None:
            self.bucket.cap(0.0, now)


@dataclass
class Ticket:
    """One call's place in its pacer's queues: hand it back with the response."""

    wait_s: float
    sent_at: float
    request_mark: float
    token_mark: float


class Pacer:
    """The announced limits of one (provider, model), and the server's pauses."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.requests = _Limit()
        self.tokens = _Limit()
        self.paused_until = 0.0

    @property
    def announced(self) -> bool:
        """Has the server announced a limit (so pacing, not AIMD, keeps the rate)?"""
        return self.requests.bucket is not None or self.tokens.bucket is not None

    def reserve(self, tokens: int = 0) -> Ticket:
        """Queue one call needing ``tokens``; its ticket says how long to wait first."""
        with self._lock:
            now = self._clock()
            request_wait, request_mark = self.requests.reserve(1, now)
            token_wait, token_mark = self.tokens.reserve(tokens, now)
            wait = max(request_wait, token_wait, self.paused_until - now, 0.0)
            return Ticket(wait, now + wait, request_mark, token_mark)

    def pause_left(self) -> float:
        """Seconds until a server-ordered pause ends (0 if none)."""
        with self._lock:
            return max(self.paused_until - self._clock(), 0.0)

    def observe(self, ticket: Ticket, headers: Mapping[str, str]) -> None:
        """Take in the ``x-ratelimit-*`` headers of the response to ``ticket``'s call."""
        requests = announced_limits(headers, "requests")
        tokens = announced_limits(headers, "tokens")
        if requests is None and tokens is None:
            return
        with self._lock:
            now = self._clock()
            if requests is not None:
                self.requests.observe(requests, ticket.request_mark, ticket.sent_at, now)
            if tokens is not None:
                self.tokens.observe(tokens, ticket.token_mark, ticket.sent_at, now)

    def rate_limited(self, delay: float, headers: Mapping[str, str] | None = None) -> None:
        """A 429: pause every call of this model for ``delay`` s; the limits are spent."""
        with self._lock:
            now = self._clock()
            self.paused_until = max(self.paused_until, now + max(delay, 0.0))
            self.requests.exhausted(now)
            self.tokens.exhausted(now)


class PacerRegistry:
    """One :class:`Pacer` per (provider, model) for the whole session."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pacers: dict[tuple[str, str], Pacer] = {}

    def pacer(self, provider: str, model: str) -> Pacer:
        with self._lock:
            key = (provider, model)
            if key not in self._pacers:
                self._pacers[key] = Pacer(self._clock)
            return self._pacers[key]
