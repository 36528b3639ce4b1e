"""Pacing to the limits a server announces: a token bucket per limit, shared by the session.

OpenAI-style servers send ``x-ratelimit-limit-requests`` / ``-tokens`` (the bucket's size),
``-remaining-*`` (what is left) and ``-reset-*`` (how long until it is full again). From
those a :class:`Pacer` models each limit as a continuous token bucket and hands every call
a start time at which the bucket will hold what it needs, so a sweep runs at the limit
instead of finding it by 429s (which, on OpenAI, count against the limit too). Servers that
announce nothing are left to :mod:`workbench.api.ratelimit`'s AIMD and retry-after handling.

The rules are pure functions of an injectable clock, as in ``ratelimit``; one pacer per
(provider, model) lives in the session, so two sweeps at once split one limit. A lock, not
the event loop, guards it: sweeps run on their own loops and single calls on the caller's
thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from workbench.api.headers import Announced, announced_limits

__all__ = [
    "Announced",
    "BeyondDeadline",
    "TokenBucket",
    "Ticket",
    "Pacer",
    "PacerRegistry",
    "announced_limits",
]

# OpenAI's limits are per minute ("x-ratelimit-limit-requests: 60000" is 1,000 a second
# sustained): a sixtieth of the limit a second is the refill rate before the reset times
# tell it, and the fastest believed unless the server shows more at once.
_DEFAULT_WINDOW_S = 60.0
# The longest reset a per-minute bucket can announce: a minute to refill it from empty,
# and as long again where refused requests count and have driven it a bucket below empty
# (the debt believed is capped there). A longer reset with nothing left is another window.
_LONGEST_REFILL_S = 2 * _DEFAULT_WINDOW_S
# How fast older refill-rate readings fade: each reading weighs by the time span it
# measures (its reset), so a reading near a full bucket ("1 used, full in 3 ms", where the
# whole-number "remaining" and the rounded reset make the rate anything from 50 to 300 a
# second) counts for little against one over the whole bucket.
_RATE_MEMORY = 0.8
# Headroom kept in every bucket, in seconds of its refill: what the model can be off by
# (the server's whole-number "remaining", a reset rounded to the millisecond, a call that
# overtakes another on the way) is met by a level kept this much above empty, not by a
# 429. Costs this much time once per sweep.
_MARGIN_S = 0.03


class BeyondDeadline(Exception):
    """A call would have to wait longer than its deadline for its limit (``kind``:
    "requests" or "tokens"): nothing was reserved. :mod:`workbench.api.limits` words it."""

    def __init__(self, kind: str, wait_s: float) -> None:
        super().__init__(f"{kind} limit frees up in {wait_s:.0f} s")
        self.kind = kind
        self.wait_s = wait_s


class TokenBucket:
    """A continuous token bucket: ``capacity`` at most, refilled at ``rate`` per second.

    :meth:`reserve` never refuses: it takes what a call needs, letting the level go below
    zero, and says how long until the level was enough, so callers queue in the order they
    asked and each sleeps once (a herd of waiters re-checking a shared level cost ~64
    wake-ups a call at concurrency 64).
    """

    def __init__(
        self,
        capacity: float,
        rate: float,
        now: float,
        level: float | None = None,
        margin_s: float = 0.0,
    ):
        self.capacity = float(capacity)
        self.rate = float(rate)
        self.level = self.capacity if level is None else float(level)
        self.updated_at = now
        self.margin_s = margin_s  # keep rate x this in the bucket (at most a tenth of it)

    @property
    def margin(self) -> float:
        return min(self.rate * self.margin_s, self.capacity / 10)

    def refill(self, now: float) -> None:
        if now > self.updated_at:
            self.level = min(self.capacity, self.level + (now - self.updated_at) * self.rate)
        self.updated_at = max(self.updated_at, now)

    def reserve(self, amount: float, now: float) -> float:
        """Take ``amount``; seconds to wait before using it (0: go now)."""
        self.refill(now)
        # More than the whole bucket can never be "available": wait for a full bucket.
        amount = min(amount, self.capacity - self.margin)
        self.level -= amount
        short = self.margin - self.level
        return 0.0 if short <= 0 else short / self.rate

    def cap(self, level: float, now: float) -> float:
        """Lower the level to what the server says (never raise it: in-flight calls the
        server has not counted yet are already taken here); returns by how much."""
        self.refill(now)
        lowered = max(self.level - level, 0.0)
        self.level -= lowered
        return lowered


class _Limit:
    """One announced limit (requests or tokens) of one (provider, model).

    Read by OpenAI's documented semantics: ``limit`` is per minute and may be enforced
    quantized over shorter periods ("60,000 requests/minute may be enforced as 1,000
    requests/second"). So the bucket never holds more than the server has shown it holds
    at once (its ``remaining``), and its refill is never believed faster than limit/60 a
    second, unless the server's own ``remaining`` has shown more than that at once (a
    server announcing a one-second bucket): a reset that says "full again in 10 ms" of
    a 6,000-a-minute limit read as 590,100 a second before, and 12-38 % of a sweep was
    refused. A reset longer than two minutes with nothing left is another window (a daily
    limit): it blocks until then, and it is not a refill rate.
    """

    def __init__(self) -> None:
        self.bucket: TokenBucket | None = None
        self.taken = 0.0  # all ever reserved: a response has not seen what came after it
        self._used_sum = 0.0  # the rate readings: (limit - remaining) over reset, summed
        self._reset_sum = 0.0
        self.peak = 0.0  # the most the server has shown it holds at once
        self.blocked_until = 0.0  # nothing left until then (a window beyond a minute)

    def reserve(self, amount: float, now: float) -> tuple[float, float]:
        """(seconds to wait, this call's mark: ``taken`` once it is counted)."""
        self.taken += amount
        wait = 0.0 if self.bucket is None else self.bucket.reserve(amount, now)
        return max(wait, self.blocked_until - now), self.taken

    def unreserve(self, amount: float) -> None:
        """Give back a reservation that will not be used (see :meth:`Pacer.reserve`)."""
        self.taken -= amount
        if self.bucket is not None:
            self.bucket.level += amount

    def _read_rate(self, announced: Announced) -> float | None:
        """The refill rate, from this reading and the earlier ones."""
        reset = announced.reset_s
        if reset and 0 < reset <= _LONGEST_REFILL_S and announced.remaining < announced.limit:
            # reset = time until full again = (limit - level) / rate.
            used = announced.limit - announced.remaining
            self._used_sum = _RATE_MEMORY * self._used_sum + used
            self._reset_sum = _RATE_MEMORY * self._reset_sum + reset
        return self._used_sum / self._reset_sum if self._used_sum > 0 else None

    def _believed(
        self, announced: Announced, rate: float | None, own: float
    ) -> tuple[float, float]:
        """(capacity, refill rate per second) to pace by, from what the server said of a
        call that needed ``own``."""
        # "remaining" counts after this call: the server held its need more on arrival.
        held = float(min(announced.remaining + own, announced.limit))
        self.peak = max(self.peak, held)
        per_minute = announced.limit / _DEFAULT_WINDOW_S
        ceiling = max(per_minute, self.peak)  # a second's worth, at most what was shown
        rate = min(rate or per_minute, ceiling)
        capacity = min(float(announced.limit), max(self.peak, rate))
        return capacity, rate

    def _note_window(self, announced: Announced, now: float) -> None:
        reset = announced.reset_s
        if announced.remaining > 0:
            self.blocked_until = 0.0
        elif reset is not None and reset > _LONGEST_REFILL_S:
            self.blocked_until = max(self.blocked_until, now + reset)

    def observe(
        self,
        announced: Announced,
        mark: float,
        sent_at: float,
        now: float,
        own: float = 1.0,
        written_at: float | None = None,
    ) -> float:
        """Take in what the response to a call (its ``mark``, sent at ``sent_at``, written
        to its connection at ``written_at`` if known, needing ``own``) said; returns the
        seconds of refill by which the level was found too high."""
        self._note_window(announced, now)
        capacity, rate = self._believed(announced, self._read_rate(announced), own)
        bucket = self.bucket
        # The server counted this call and all before it when the call arrived (after
        # sent_at); calls reserved since are not in its "remaining".
        unseen = self.taken - mark
        if bucket is None:
            # The first answer: refill is credited only since the call's request was
            # written to its connection (known from httpx's trace), for the server counted
            # it no earlier. Not since it was planned: the first calls of a sweep open
            # their connections first, and crediting from the plan took 0.7 s of a loaded
            # machine's delays for refill and started the sweep with a storm of 429s.
            # Crediting nothing lost a whole answer's latency of the limit (0.2 s of a
            # 9.2 s sweep in bench/rate_limited.py).
            since = 0.0 if written_at is None else max(now - written_at, 0.0)
            level = min(announced.remaining - unseen + since * rate, capacity)
            self.bucket = TokenBucket(capacity, rate, now, level, _MARGIN_S)
            return 0.0
        bucket.capacity = capacity
        bucket.rate = rate
        # The bucket has refilled since at most (now - sent_at). Lower our level to that,
        # never raise it: reading a 200 ms-old "remaining" as now's would lose rate x
        # 200 ms per answer.
        lowered = bucket.cap(announced.remaining - unseen + (now - sent_at) * bucket.rate, now)
        return lowered / bucket.rate

    def exhausted(self, announced: Announced | None, mark: float | None, now: float) -> float:
        """A 429 on this limit (the call ``mark``; its headers, if any): the server's
        bucket is empty, or below empty where refused calls count and the reset says so.
        Returns the seconds of refill by which the level was found too high."""
        if announced is not None:
            self._note_window(announced, now)
        bucket = self.bucket
        if bucket is None:
            return 0.0
        level = 0.0
        if announced is not None:
            # (The limit that refused says little is left; the other one, if any, says
            # what it has.)
            level = float(announced.remaining)
            reset = announced.reset_s
            if reset is not None and reset <= _LONGEST_REFILL_S:
                # "Full again in 1.3 s" at a 100-a-second limit of 100: the level is -30,
                # which "remaining" (never below 0) does not say. Left at 0, the level
                # stayed a refused call's worth above the server's: the next call was
                # refused too. (Never more than a bucket in debt: the rest is a window.)
                # (Of the bucket believed: on a server enforcing its per-minute limit per
                # second, the reset is that second's bucket's.)
                below = max(bucket.capacity - reset * bucket.rate, -bucket.capacity)
                level = min(level, below)
        unseen = 0.0 if mark is None else self.taken - mark
        return bucket.cap(level - unseen, now) / bucket.rate


@dataclass
class Ticket:
    """One call's place in its pacer's queues: hand it back with the response."""

    wait_s: float
    sent_at: float
    request_mark: float
    token_mark: float
    shift_s: float = 0.0  # the pacer's queue shift when this call was placed (see owed)
    tokens: float = 0.0  # what the call needs of the tokens limit
    written_at: float | None = None  # when its request was written to the connection


class Pacer:
    """The announced limits of one (provider, model), and the server's pauses."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.requests = _Limit()
        self.tokens = _Limit()
        self.paused_until = 0.0
        # Seconds the whole queue has been pushed back by: when a response or a 429 shows
        # a level lower than the bucket's, calls already given a start time would still
        # go at it, spending what is not there; each owes the shift since it was placed.
        self.shift_s = 0.0

    @property
    def announced(self) -> bool:
        """Has the server announced a limit (so pacing, not AIMD, keeps the rate)?"""
        return self.requests.bucket is not None or self.tokens.bucket is not None

    def reserve(self, tokens: int = 0, within: float | None = None) -> Ticket:
        """Queue one call needing ``tokens``; its ticket says how long to wait first.

        With ``within`` (seconds), a call that would wait longer is not queued: raises
        :class:`BeyondDeadline` naming the limit that holds it."""
        with self._lock:
            now = self._clock()
            request_wait, request_mark = self.requests.reserve(1, now)
            token_wait, token_mark = self.tokens.reserve(tokens, now)
            wait = max(request_wait, token_wait, self.paused_until - now, 0.0)
            if within is not None and wait > within:
                self.requests.unreserve(1)
                self.tokens.unreserve(tokens)
                raise BeyondDeadline("tokens" if token_wait > request_wait else "requests", wait)
            return Ticket(wait, now + wait, request_mark, token_mark, self.shift_s, tokens)

    def retry(
        self,
        ticket: Ticket,
        delay: float,
        headers: Mapping[str, str] | None,
        within: float | None = None,
    ) -> tuple[Ticket, float]:
        """A 429 of ``ticket``'s call, to be retried after ``delay`` s: the pacer hears of
        it and the retry takes its place in the queue like any request (it counts against
        the limit, and must not jump ahead of calls already waiting). Returns the retry's
        ticket and its wait, at least ``delay``. The one rule for every caller's 429s."""
        self.rate_limited(delay, headers, ticket)
        again = self.reserve(int(ticket.tokens), within)
        return again, max(delay, again.wait_s)

    def owed(self, ticket: Ticket) -> float:
        """Seconds ``ticket``'s call must wait beyond its start time, for the queue was
        pushed back since it was placed (and from now on it owes nothing more of that)."""
        with self._lock:
            owed = self.shift_s - ticket.shift_s
            ticket.shift_s = self.shift_s
            return max(owed, 0.0)

    def sending(self, ticket: Ticket, delay: float = 0.0) -> None:
        """The call of ``ticket`` goes out now (or after ``delay`` s): stamp it so.

        :meth:`observe` credits the server's refill since a call was sent; dating it from
        the pacer's planned time instead credited every delay between the plan and the
        wire (64 first calls opening connections on a loaded machine: ~0.7 s, 14,000
        tokens of a 20,000-token bucket believed free, and a storm of 429s)."""
        with self._lock:
            ticket.sent_at = max(ticket.sent_at, self._clock() + delay)

    def written(self, ticket: Ticket) -> None:
        """The request of ``ticket``'s call has been written to its connection (an httpx
        trace event, see :attr:`workbench.api.limits.CallLimits.extensions`)."""
        with self._lock:
            ticket.written_at = self._clock()

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
            late = 0.0
            if requests is not None:
                late = self.requests.observe(
                    requests, ticket.request_mark, ticket.sent_at, now, 1.0, ticket.written_at
                )
            if tokens is not None:
                own = max(ticket.tokens, 1.0)
                late = max(
                    late,
                    self.tokens.observe(
                        tokens, ticket.token_mark, ticket.sent_at, now, own, ticket.written_at
                    ),
                )
            self.shift_s += late

    def rate_limited(
        self,
        delay: float,
        headers: Mapping[str, str] | None = None,
        ticket: Ticket | None = None,
    ) -> None:
        """A 429 (of ``ticket``'s call, if known): pause every call of this model for
        ``delay`` s; the limits are spent, and calls already placed wait for them."""
        requests = tokens = None
        if headers:
            requests = announced_limits(headers, "requests")
            tokens = announced_limits(headers, "tokens")
        with self._lock:
            now = self._clock()
            self.paused_until = max(self.paused_until, now + max(delay, 0.0))
            request_mark = None if ticket is None else ticket.request_mark
            token_mark = None if ticket is None else ticket.token_mark
            self.shift_s += max(
                self.requests.exhausted(requests, request_mark, now),
                self.tokens.exhausted(tokens, token_mark, now),
            )


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
