"""Pacing to announced rate limits (workbench/api/pacing.py), with a clock driven by hand."""

from __future__ import annotations

import asyncio

import pytest
from pacing_helpers import Clock, headers

from workbench.api.limits import Limits
from workbench.api.pacing import Pacer, TokenBucket, announced_limits


def test_announced_limits_are_read_from_openai_headers() -> None:
    found = announced_limits(headers(6000, 5999, "10ms"), "requests")
    assert found is not None and (found.limit, found.remaining) == (6000, 5999)
    assert found.reset_s == pytest.approx(0.01)
    assert announced_limits({"x-ratelimit-remaining-requests": "5"}, "requests") is None
    assert announced_limits(headers(0, 0, "1s"), "requests") is None
    assert announced_limits(headers(100, 1, "soon"), "requests").reset_s is None  # type: ignore[union-attr]
    garbled = {"x-ratelimit-limit-requests": "x", "x-ratelimit-remaining-requests": "1"}
    assert announced_limits(garbled, "requests") is None


def test_bucket_queues_callers_in_order_each_waiting_once() -> None:
    bucket = TokenBucket(capacity=3, rate=10, now=0.0)
    waits = [bucket.reserve(1, now=0.0) for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0.1, 0.2, 0.3])
    # After a second the bucket is full again, never fuller.
    assert bucket.reserve(1, now=1.3) == 0
    assert bucket.level == pytest.approx(2.0)
    # A call bigger than the bucket waits for a full bucket, not forever.
    assert TokenBucket(capacity=5, rate=1, now=0.0, level=0).reserve(50, now=0.0) == 5


def test_no_announced_limit_no_pacing() -> None:
    pacer = Pacer(Clock())
    assert not pacer.announced
    assert all(pacer.reserve(tokens=10_000).wait_s == 0 for _ in range(1000))


def test_paces_at_the_rate_the_reset_header_implies() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    first = pacer.reserve()
    clock.now += 0.2
    # 100 a bucket, 1 used, full again in 10 ms: 100 requests a second.
    pacer.observe(first, headers(100, 99, "10ms"))
    assert pacer.announced
    assert pacer.requests.bucket is not None
    assert pacer.requests.bucket.rate == pytest.approx(100)
    waits = [pacer.reserve().wait_s for _ in range(300)]
    started_now = sum(1 for w in waits if w == 0)
    assert 95 <= started_now <= 100  # what the server said is left (+ its refill)
    # After that, one call every 10 ms: 300 calls take ~2 s beyond the burst.
    assert waits[-1] == pytest.approx((300 - started_now) / 100, abs=0.02)
    gaps = [b - a for a, b in zip(waits[started_now:], waits[started_now + 1 :], strict=False)]
    assert all(gap == pytest.approx(0.01) for gap in gaps)


def test_a_whole_second_reset_gives_a_per_minute_rate() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(pacer.reserve(), headers(60, 59, "1s"))
    assert pacer.requests.bucket is not None
    assert pacer.requests.bucket.rate == pytest.approx(1.0)


def test_a_response_lowers_the_level_by_calls_it_has_not_seen() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(pacer.reserve(), headers(100, 99, "10ms"))
    ticket = pacer.reserve()  # this call; then 20 more before its answer comes back
    for _ in range(20):
        pacer.reserve()
    bucket = pacer.requests.bucket
    assert bucket is not None
    ours = bucket.level
    # The server says only 50 are left (someone else spends from the same limit).
    pacer.observe(ticket, headers(100, 50, "500ms"))
    assert bucket.level == pytest.approx(50 - 20)
    assert bucket.level < ours
    # It never raises our level: a stale "remaining" cannot undo calls in flight.
    pacer.observe(ticket, headers(100, 100, "0s"))
    assert bucket.level == pytest.approx(30)


def test_token_limit_paces_by_tokens_reserved() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(pacer.reserve(tokens=1000), headers(10_000, 9_000, "100ms", "tokens"))
    assert pacer.tokens.bucket is not None
    assert pacer.tokens.bucket.rate == pytest.approx(10_000)
    waits = [pacer.reserve(tokens=3_000).wait_s for _ in range(5)]
    # 9,000 left, then 10,000 a second, keeping 30 ms of refill (300 tokens) in hand.
    assert waits == pytest.approx([0, 0, 0.03, 0.33, 0.63])


def test_a_429_pauses_every_call_and_empties_the_bucket() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(pacer.reserve(), headers(100, 99, "10ms"))
    pacer.rate_limited(0.25)
    assert pacer.pause_left() == pytest.approx(0.25)
    assert pacer.reserve().wait_s == pytest.approx(0.25)
    clock.now += 0.25
    assert pacer.pause_left() == 0
    bucket = pacer.requests.bucket
    assert bucket is not None and bucket.level < 25  # refilled for 0.25 s from empty


def test_two_sweeps_of_one_session_split_one_limit() -> None:
    clock = Clock()
    limits = Limits(clock)
    registry = limits.pacers
    first, second = limits.sweep(64), limits.sweep(64)
    a, b = first.limiter("openai", "m").pacer, second.limiter("openai", "m").pacer
    assert a is b
    a.observe(a.reserve(), headers(10, 10, "0s"))  # a 10-call bucket, full
    waits = [p.reserve().wait_s for p in (a, b) * 10]
    assert sum(1 for w in waits if w == 0) <= 10  # together, not 10 each
    assert registry.pacer("openai", "other") is not a


def test_sweep_calls_wait_their_turn_in_acquire() -> None:
    async def main() -> list[float]:
        limits = Limits().sweep(8)
        limiter = limits.limiter("p", "m")
        limiter.pacer.observe(limiter.pacer.reserve(), headers(2, 2, "0s"))
        assert limiter.pacer.requests.bucket is not None
        limiter.pacer.requests.bucket.rate = 50.0  # 20 ms a call after the first two
        loop = asyncio.get_running_loop()
        start = loop.time()
        times: list[float] = []

        async def call() -> None:
            async with limits.slot("p", "m"):
                times.append(loop.time() - start)

        await asyncio.gather(*(call() for _ in range(6)))
        return sorted(times)

    times = asyncio.run(main())
    # The first two at once, then spaced by the bucket: the last no sooner than 4 x 20 ms.
    assert times[1] < 0.02
    assert times[-1] >= 0.079
