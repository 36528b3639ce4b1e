"""Rate limiting: AIMD per model, retry-after pauses, x-ratelimit-* headers, the client hook."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from fake_openai import BASE_URL, FakeOpenAI, completion, json_response

from workbench.api.client import AsyncOpenAIClient, OpenAIClient
from workbench.api.limits import CallLimits, Limits
from workbench.api.ratelimit import AdaptiveLimiter, parse_reset

ANNOUNCED = {
    "x-ratelimit-limit-requests": "100",
    "x-ratelimit-remaining-requests": "99",
    "x-ratelimit-reset-requests": "10ms",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5", 0.5),
        ("2", 2.0),
        ("soon", None),
        ("-1", None),
        ("1s junk", None),
        (None, None),
    ],
)
def test_parse_reset(text: str | None, seconds: float | None) -> None:
    assert parse_reset(text) == (None if seconds is None else pytest.approx(seconds))


def test_concurrency_cap() -> None:
    limiter = AdaptiveLimiter(2, clock=Clock())
    assert limiter.wait_time() == 0
    limiter.start()
    limiter.start()
    assert math.isinf(limiter.wait_time())
    limiter.finish()
    assert limiter.wait_time() == 0


def test_429_halves_once_per_window_and_pauses() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, clock=clock)
    limiter.on_rate_limited(2.0)
    limiter.on_rate_limited(2.0)  # the same overload, heard from a second call
    assert limiter.limit == 4 and limiter.rate_limited == 2
    assert limiter.wait_time() == pytest.approx(2.0)
    clock.now += 1.5
    assert limiter.wait_time() == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.wait_time() == 0
    limiter.start()
    limiter.on_rate_limited(1.0)  # a new window and a call sent since: halve again
    assert limiter.limit == 2
    limiter.on_rate_limited(0.0)
    clock.now += 1.0
    limiter.start()
    limiter.on_rate_limited(0.0)
    limiter.start()
    limiter.on_rate_limited(0.0)
    assert limiter.limit == 1  # never below 1


def test_a_429_of_a_call_sent_before_the_last_halving_does_not_halve_again() -> None:
    # Scattered 429s with tiny retry-after-ms values: the retry-after window alone let
    # each of them halve, holding a 64-wide sweep at 1-6 calls in flight.
    clock = Clock()
    limiter = AdaptiveLimiter(64, clock=clock)
    early = [limiter.start() for _ in range(64)]
    for started in early:
        limiter.on_rate_limited(0.001, started=started)
        clock.now += 0.01  # each 429 after the last one's retry-after window
    assert limiter.limit == 32  # one flight of calls, one overload: one halving
    later = limiter.start()
    limiter.on_rate_limited(0.001, started=later)
    assert limiter.limit == 16


def test_with_announced_limits_a_429_pauses_but_keeps_concurrency() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, clock=clock)
    ticket = limiter.pacer.reserve()
    limiter.on_success(ANNOUNCED, ticket)
    limiter.start()
    limiter.on_rate_limited(0.5)
    assert limiter.limit == 8
    assert limiter.wait_time() == pytest.approx(0.5)


def test_successes_grow_the_limit_back_by_about_one_per_window() -> None:
    limiter = AdaptiveLimiter(4, clock=Clock())
    limiter.on_rate_limited(0.0)
    assert limiter.limit == 2
    limiter.on_success({})
    limiter.on_success({})
    assert limiter.limit == pytest.approx(2.9, abs=0.05)
    for _ in range(20):
        limiter.on_success({})
    assert limiter.limit == 4  # never above the sweep's concurrency


def test_remaining_requests_header_throttles_until_reset() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, clock=clock)
    limiter.on_success({"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "3s"})
    limiter.start()
    limiter.start()  # our own count of what is left: 0
    assert limiter.wait_time() == pytest.approx(3.0)
    clock.now += 3.0
    assert limiter.wait_time() == 0  # the window has reset


def test_remaining_tokens_header_throttles_big_calls_only() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, clock=clock)
    limiter.observe({"x-ratelimit-remaining-tokens": "1000", "x-ratelimit-reset-tokens": "500ms"})
    assert limiter.wait_time(tokens=800) == 0
    limiter.start(tokens=800)
    assert limiter.wait_time(tokens=100) == 0
    assert limiter.wait_time(tokens=300) == pytest.approx(0.5)


def test_headers_without_a_reset_time_do_not_block() -> None:
    limiter = AdaptiveLimiter(8, clock=Clock())
    limiter.observe({"x-ratelimit-remaining-requests": "0"})
    assert limiter.wait_time() == 0


def test_acquire_holds_at_the_limit_and_wakes_on_finish() -> None:
    async def main() -> tuple[int, int]:
        limiter = AdaptiveLimiter(3)
        inside = peak = 0
        release = asyncio.Event()

        async def call() -> None:
            nonlocal inside, peak
            await limiter.acquire()
            inside += 1
            peak = max(peak, inside)
            await release.wait()
            inside -= 1
            limiter.finish()

        tasks = [asyncio.create_task(call()) for _ in range(10)]
        for _ in range(5):
            await asyncio.sleep(0)
        at_the_gate = inside
        release.set()
        await asyncio.gather(*tasks)
        return at_the_gate, peak

    at_the_gate, peak = asyncio.run(main())
    assert at_the_gate == 3 and peak == 3


def test_rate_limits_cap_the_sweep_over_models() -> None:
    async def main() -> int:
        limits = Limits().sweep(2)
        inside = peak = 0
        release = asyncio.Event()

        async def call(model: str) -> None:
            nonlocal inside, peak
            async with limits.slot("p", model):
                inside += 1
                peak = max(peak, inside)
                await release.wait()
                inside -= 1

        tasks = [asyncio.create_task(call(m)) for m in ["a", "b", "c"] * 3]
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*tasks)
        assert limits.limiter("p", "a").in_flight == 0
        return peak

    assert asyncio.run(main()) == 2


def test_slot_feeds_429s_to_its_model() -> None:
    limiter = AdaptiveLimiter(4, clock=Clock())
    slot = CallLimits(limiter.pacer, limiter.pacer.reserve(), "m", None, limiter=limiter)
    assert slot.on_retry(503, {}, 1.0) == 1.0  # not a rate limit: no back-off
    assert limiter.limit == 4
    assert slot.on_retry(429, {"retry-after": "2"}, 2.0) == pytest.approx(2.0)
    assert limiter.limit == 2 and limiter.wait_time() == pytest.approx(2.0)
    assert slot.retries_seen == [503, 429]


def test_client_on_retry_hook_hears_each_retry() -> None:
    fake = FakeOpenAI(
        json_response(
            {"error": {"message": "slow down"}},
            status=429,
            headers={"retry-after-ms": "250", "x-ratelimit-remaining-requests": "0"},
        ),
        httpx.ConnectError("refused"),
        json_response(completion("ok")),
    )
    heard: list[tuple[int | None, dict[str, str], float]] = []
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def main() -> str:
        async with AsyncOpenAIClient(
            BASE_URL, "k", transport=fake.transport, sleep=sleep
        ) as client:
            result = await client.chat(
                {"model": "m", "messages": []},
                on_retry=lambda status, headers, delay: heard.append(
                    (status, dict(headers), delay)
                ),
            )
            return result.text

    assert asyncio.run(main()) == "ok"
    assert [(status, delay) for status, _, delay in heard] == [(429, 0.25), (None, sleeps[1])]
    assert heard[0][1]["x-ratelimit-remaining-requests"] == "0"
    assert heard[1][1] == {}
    assert sleeps[0] == 0.25


def test_sync_client_on_retry_hook() -> None:
    fake = FakeOpenAI(
        json_response({"error": {"message": "busy"}}, status=429, headers={"retry-after": "1"}),
        json_response(completion("ok")),
    )
    heard: list[int | None] = []
    client = OpenAIClient(BASE_URL, "k", transport=fake.transport, sleep=lambda s: None)
    result = client.chat(
        {"model": "m", "messages": []}, on_retry=lambda status, headers, delay: heard.append(status)
    )
    assert result.text == "ok" and result.retries == 1 and heard == [429]
