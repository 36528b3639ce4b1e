"""The limits layer (workbench/api/limits.py, pacing.py) read by OpenAI's documented rate-limit
semantics, with a clock driven by hand.

OpenAI's rate-limit guide (platform.openai.com/docs/guides/rate-limits), quoted where a
test follows it:
- "x-ratelimit-limit-requests: The maximum number of requests that are permitted before
  exhausting the rate limit." The limits are given per minute (RPM, TPM).
- "Rate limits may be quantized, meaning they are enforced over shorter periods of time
  (e.g. 60,000 requests/minute may be enforced as 1,000 requests/second)."
- "x-ratelimit-reset-requests: The time until the rate limit (based on requests) resets
  to its initial state", sent as durations such as "1s" and "6m0s".
"""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from pacing_helpers import Clock, headers

from workbench.api.client import AsyncOpenAIClient
from workbench.api.headers import MAX_COUNT, MAX_WAIT_S, parse_count, parse_reset
from workbench.api.limits import LimitResetError, Limits
from workbench.api.pacing import Pacer


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
        ("999999s", 999999.0),
        ("1e308", MAX_WAIT_S),  # a server's garbage must still fit a sleep and a datetime
        ("1e999", MAX_WAIT_S),
        ("inf", MAX_WAIT_S),
        ("99999999999h", MAX_WAIT_S),
        ("nan", None),
        ("-5", None),
        ("-1s", None),
        ("soon", None),
        ("", None),
        ("1s" * 100_000, None),  # a megabyte of header is not a duration
    ],
)
def test_every_reset_value_is_read_and_clamped(text: str, seconds: float | None) -> None:
    read = parse_reset(text)
    assert read == (None if seconds is None else pytest.approx(seconds))
    assert read is None or (math.isfinite(read) and 0 <= read <= MAX_WAIT_S)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("100", 100),
        ("99.9", 99),
        ("1e308", MAX_COUNT),
        ("inf", MAX_COUNT),
        ("nan", None),
        ("-3", None),
        ("many", None),
        (None, None),
    ],
)
def test_every_count_is_read_and_clamped(text: str | None, count: int | None) -> None:
    assert parse_count(text) == count


def test_60000_a_minute_may_be_enforced_as_1000_a_second() -> None:
    # The guide's own example: the headers say 60,000 a minute; the server lets 1,000
    # through in any second, and says so in what is left ("remaining" of its one-second
    # bucket, full again in 1 ms). Read as a bucket of 60,000 refilled in 1 ms, that is
    # 59 million a second: everything at once, and 98 % refused.
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(pacer.reserve(), headers(60_000, 999, "1ms"))
    starts = [pacer.reserve().wait_s for _ in range(5000)]
    assert sum(1 for s in starts if s == 0) <= 1000  # never more than remaining at once
    for second in range(1, 4):  # never more than limit / 60 a second, sustained
        assert sum(1 for s in starts if second <= s < second + 1) <= 1000
    assert starts[-1] >= 3.9  # 5,000 calls at 1,000 a second


def test_a_remaining_that_refills_too_fast_never_raises_the_pace_above_limit_per_minute() -> None:
    # 6,000 a minute announced, 100 a second enforced: "remaining 99, full again in 10 ms"
    # (the pacer read 590,100 a second from it, and a 1,000-call sweep was refused 12-38 %
    # of the time); later readings just as implausible.
    clock = Clock()
    pacer = Pacer(clock)
    for remaining, reset in [(99, "10ms"), (40, "600ms"), (0, "1s"), (97, "30ms")]:
        pacer.observe(pacer.reserve(), headers(6000, remaining, reset))
        clock.now += 0.25
        bucket = pacer.requests.bucket
        assert bucket is not None
        assert bucket.rate <= 6000 / 60
        assert bucket.capacity <= 100  # what it showed at once, not a minute's worth


def test_a_per_minute_limit_paces_at_a_sixtieth_a_second() -> None:
    # An honest per-minute bucket: 10,000 a minute, 1 used, full again in 6 ms.
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(pacer.reserve(), headers(10_000, 9_999, "6ms"))
    bucket = pacer.requests.bucket
    assert bucket is not None
    assert bucket.rate == pytest.approx(10_000 / 60, rel=0.01)
    # What is left may go at once (it is there); after that, a sixtieth of the limit a
    # second.
    assert pacer.reserve().wait_s == 0


def test_never_more_than_remaining_at_once() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(pacer.reserve(), headers(6000, 5, "59s"))
    assert sum(1 for _ in range(20) if pacer.reserve().wait_s == 0) <= 5


def test_a_tokens_limit_per_minute_quantized_per_second() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    # 1,200,000 tokens a minute enforced as 20,000 a second; this call needed 500.
    pacer.observe(pacer.reserve(tokens=500), headers(1_200_000, 19_500, "25ms", kind="tokens"))
    bucket = pacer.tokens.bucket
    assert bucket is not None
    assert bucket.rate <= 20_000 and bucket.capacity <= 20_000


def test_nothing_left_until_a_daily_reset_blocks_until_then() -> None:
    clock = Clock()
    limits = Limits(clock)
    call = limits.call("openai", "m")
    call.on_success(headers(100, 0, "999999s"))
    with pytest.raises(LimitResetError) as refused:
        limits.call("openai", "m", deadline_s=5)
    message = str(refused.value)
    assert "\n" not in message and "UTC" in message and "11 d 13 h" in message
    assert "deadline of 5 s" in message
    # A deadline past the reset waits for it instead; after the reset, calls go again.
    assert limits.call("openai", "m", deadline_s=10**6).ticket.wait_s == pytest.approx(999999)
    clock.now += 999999 + 1
    assert limits.call("openai", "m", deadline_s=5).ticket.wait_s < 5


@pytest.mark.parametrize("reset", ["1e308", "inf", "999999999999s", "nan", "-1", "x", "0s"])
def test_no_reset_value_can_raise_anything_but_the_one_line(reset: str) -> None:
    clock = Clock()
    limits = Limits(clock)
    hostile = headers(100, 0, reset) | {"retry-after": reset, "retry-after-ms": reset}
    for status in (200, 429):
        try:
            call = limits.call("openai", "m", deadline_s=5)
            if status == 200:
                call.on_success(hostile)
            else:
                assert 0 <= call.on_retry(429, hostile, 0.5) <= 5
        except LimitResetError as refused:
            assert "UTC" in str(refused)
        clock.now += 1
    try:
        ticket = limits.call("openai", "m", deadline_s=5).ticket
    except LimitResetError:
        return
    assert 0 <= ticket.wait_s <= 5


def test_a_429_whose_reset_is_past_the_deadline_fails_at_once() -> None:
    clock = Clock()
    limits = Limits(clock)
    call = limits.call("openai", "m", deadline_s=5)
    call.on_success(headers(100, 50, "30s"))
    with pytest.raises(LimitResetError):
        call.on_retry(429, headers(100, 0, "999999s"), 0.5)


_ANSWER = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
    }
).encode()


async def _answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    length = int(head.split("content-length:")[1].split("\r\n")[0])
    await reader.readexactly(length)
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(_ANSWER)}\r\n\r\n".encode()
        + _ANSWER
    )
    await writer.drain()
    writer.close()


def test_a_sweeps_call_is_stamped_when_httpx_writes_its_request() -> None:
    # The first answer credits refill from the moment the request was written (pacing.py);
    # the stamp comes from httpcore's trace event, through the client's extensions (a
    # real socket: httpx.MockTransport has no httpcore and fires no trace).
    async def main() -> float | None:
        server = await asyncio.start_server(_answer_once, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        async with (
            server,
            AsyncOpenAIClient(url, "sk-test-0000000000000000") as client,
            Limits().sweep(4).slot("p", "m") as call,
        ):
            assert call.ticket.written_at is None
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            result = await client.chat(body, limits=call)
            assert result.text == "ok"
            return call.ticket.written_at

    assert asyncio.run(main()) is not None


def test_sweeps_share_one_default_tls_context() -> None:
    # Loading the CA bundle took 22-30 ms at the start of every sweep (each has its own
    # SlotTransport), before its first call: the default context is built once.
    from workbench.api.slots import SlotTransport

    first, second = SlotTransport(2), SlotTransport(2)
    first._new_slot()
    second._new_slot()
    assert first._ssl is not None and first._ssl is second._ssl
    unverified = SlotTransport(1, verify=False)
    unverified._new_slot()
    assert unverified._ssl is not first._ssl
