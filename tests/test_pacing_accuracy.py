"""Pacing at the limit without 429s (issue 15's bench targets): the rules behind it, each
with a clock driven by hand. See bench/RESULTS.md, "rate_limited", for the profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from pacing_helpers import Clock, headers

from workbench.api.pacing import Pacer, TokenBucket
from workbench.api.ratelimit import AdaptiveLimiter


def paced(clock: Clock, limit: int = 100, remaining: int = 99, reset: str = "10ms") -> Pacer:
    pacer = Pacer(clock)
    pacer.observe(pacer.reserve(), headers(limit, remaining, reset))
    return pacer


def test_announced_limits_replace_the_remaining_until_reset_wait() -> None:
    # "0 left, full again in 1 s" is a continuous bucket refilling at 100 a second, not a
    # window: holding every call for the whole reset stalled sweeps for 1 s at a time.
    clock = Clock()
    limiter = AdaptiveLimiter(64, clock=clock)
    ticket = limiter.pacer.reserve()
    limiter.on_success(headers(100, 0, "1s"), ticket)
    assert limiter.pacer.announced
    assert limiter.wait_time() == 0  # the pacer's queue, not a 1 s wait, spaces the calls
    # Without a limit header there is no bucket to model: the window rule still holds.
    bare = AdaptiveLimiter(64, clock=clock)
    bare.on_success({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"})
    assert bare.wait_time() == pytest.approx(1.0)


def test_the_bucket_keeps_a_margin_of_its_refill() -> None:
    bucket = TokenBucket(capacity=100, rate=100, now=0.0, margin_s=0.03)
    assert bucket.margin == pytest.approx(3)
    waits = [bucket.reserve(1, now=0.0) for _ in range(100)]
    assert sum(1 for w in waits if w == 0) == 97  # three kept in hand
    assert waits[-1] == pytest.approx(0.03)
    # At most a tenth of a small bucket.
    assert TokenBucket(capacity=10, rate=1000, now=0.0, margin_s=0.03).margin == 1
    # A call bigger than the bucket still waits for a full one (less the margin).
    assert TokenBucket(capacity=5, rate=1, now=0, level=0, margin_s=0.1).reserve(50, 0) == 5


def test_a_reading_near_a_full_bucket_barely_moves_the_rate() -> None:
    clock = Clock()
    pacer = paced(clock, 6000, 5900, "1s")  # 100 used, full in 1 s: 100 a second
    bucket = pacer.requests.bucket
    assert bucket is not None and bucket.rate == pytest.approx(100)
    # "1 used, full in 3 ms" (a level of 5999.7 shown as 5999): 333 a second on its own;
    # it weighs 3 ms against 1 s. (Averaged at 0.2 a reading it made the rate 146.)
    pacer.observe(pacer.reserve(), headers(6000, 5999, "3ms"))
    assert bucket.rate == pytest.approx(100.5, abs=0.5)


def test_the_first_answer_credits_no_refill_before_it() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    tickets = [pacer.reserve() for _ in range(64)]  # the sweep's first calls, unpaced
    clock.now += 0.9  # planned at once; opening their connections took long
    pacer.observe(tickets[0], headers(100, 99, "10ms"))
    bucket = pacer.requests.bucket
    assert bucket is not None
    # What the server said, less the 63 calls it had not counted yet; crediting the 0.9 s
    # since the plan as refill would have believed 90 more were free.
    assert bucket.level == pytest.approx(99 - 63)


def test_the_first_answer_credits_refill_since_its_request_was_written() -> None:
    # The server counted the call when it read it, no earlier than it was written to its
    # connection (httpx's trace): the refill since then is the server's too. Crediting
    # none lost a whole answer's latency of the limit (0.2 s of a 9.2 s sweep).
    clock = Clock()
    pacer = Pacer(clock)
    tickets = [pacer.reserve() for _ in range(64)]
    clock.now += 0.9  # opening the first calls' connections took long...
    pacer.written(tickets[0])  # ...then the request went out,
    clock.now += 0.2  # and its answer came 0.2 s later
    pacer.observe(tickets[0], headers(100, 99, "10ms"))
    bucket = pacer.requests.bucket
    assert bucket is not None and bucket.rate == pytest.approx(100)
    assert bucket.level == pytest.approx(99 - 63 + 0.2 * 100)  # not the 0.9 s before


def test_a_call_is_dated_from_when_it_goes_not_when_it_was_planned() -> None:
    clock = Clock()
    pacer = paced(clock, 6000, 5900, "1s")
    ticket = pacer.reserve()
    clock.now += 0.5  # waited for a connection
    pacer.sending(ticket)
    assert ticket.sent_at == clock.now
    pacer.sending(ticket, delay=0.25)  # a retry goes after its wait
    assert ticket.sent_at == clock.now + 0.25
    pacer.sending(ticket)
    assert ticket.sent_at == clock.now + 0.25  # never earlier than said


def test_a_429_finds_the_level_below_empty_from_its_reset() -> None:
    clock = Clock()
    # 6,000 a minute enforced as 100 a second: the server shows at most 100 at once.
    pacer = paced(clock, 6000, 99, "10ms")
    bucket = pacer.requests.bucket
    assert bucket is not None and (bucket.capacity, bucket.rate) == (100, 100)
    ticket = pacer.reserve()
    for _ in range(5):
        pacer.reserve()  # queued behind it
    # Refused calls count: full again in 1.3 s at 100 a second is a level of -30.
    pacer.rate_limited(0.3, headers(6000, 0, "1.3s"), ticket)
    assert bucket.level == pytest.approx(-30 - 5)
    # Left at "empty" (0), the level stayed a refused call's worth above the server's.


def test_a_lower_level_pushes_back_calls_already_placed() -> None:
    clock = Clock()
    pacer = paced(clock, 6000, 99, "10ms")  # 100 a second (see above)
    bucket = pacer.requests.bucket
    assert bucket is not None
    bucket.level = 20.0
    first = pacer.reserve()
    waiting = pacer.reserve()  # placed: 18 left after it
    pacer.sending(first)
    # The answer to `first` says 8 left after it (someone else spends from the limit too):
    # with `waiting` not yet counted, 7, not 18. Calls placed on 18 would spend 11 that
    # are not there.
    pacer.observe(first, headers(6000, 8, "920ms"))
    assert bucket.level == pytest.approx(7)
    assert pacer.owed(waiting) == pytest.approx(0.11)  # 11 calls' worth at 100 a second
    assert pacer.owed(waiting) == 0  # owed once
    assert pacer.owed(pacer.reserve()) == 0  # placed after the correction: no debt


def test_acquire_waits_what_its_ticket_owes() -> None:
    import asyncio

    limiter = AdaptiveLimiter(4, clock=Clock())
    pacer = limiter.pacer
    slept: list[float] = []
    place = pacer.reserve

    def reserve_then_fall_behind(  # type: ignore[no-untyped-def]
        tokens: int = 0, within: float | None = None
    ):
        ticket = place(tokens, within)
        pacer.shift_s += 0.2  # a correction heard while the call waits its turn
        return ticket

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def main() -> None:
        real_sleep = asyncio.sleep
        pacer.reserve = reserve_then_fall_behind  # type: ignore[method-assign]
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            await limiter.acquire()
        finally:
            asyncio.sleep = real_sleep

    asyncio.run(main())
    assert slept == pytest.approx([0.0, 0.2])


def test_a_single_call_waits_what_it_owes_and_is_dated_when_sent(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: object
) -> None:
    from loopback import LoopbackAPI, Received, Reply, chat_reply

    import workbench as wb
    from workbench.api.pacing import Ticket
    from workbench.calls import session as session_module

    def route(request: Received) -> Reply:
        return chat_reply("ok", model="gpt-4o-mini")

    slept: list[float] = []
    stamped: list[float] = []
    with LoopbackAPI(route) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000")
        session = session_module.get_session()
        pacer = session.pacers.pacer(
            session.prepare_chat("x", model="gpt-4o-mini").provider.identity, "gpt-4o-mini"
        )
        place, send = pacer.reserve, pacer.sending

        def reserve_then_fall_behind(tokens: int = 0, within: float | None = None) -> Ticket:
            ticket = place(tokens, within)
            pacer.shift_s += 0.25  # a sweep's 429 pushes the queue back meanwhile
            return ticket

        def sending(ticket: Ticket, delay: float = 0.0) -> None:
            stamped.append(delay)
            send(ticket, delay)

        monkeypatch.setattr(pacer, "reserve", reserve_then_fall_behind)
        monkeypatch.setattr(pacer, "sending", sending)
        monkeypatch.setattr(session_module.time, "sleep", slept.append)
        wb.chat("hello", model="gpt-4o-mini")
    assert slept[:2] == pytest.approx([0.0, 0.25])
    assert stamped == [0.0]


def test_a_sweep_without_a_budget_reserves_tokens_without_pricing_its_calls(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    # Pricing 1,000 prompts of different lengths (genai-prices, per distinct token count)
    # took 1-2 s before the first call; only a budget needs the price before sending.
    from loopback import LoopbackAPI, Received, Reply, chat_reply

    import workbench as wb
    from workbench.calls import dispatch
    from workbench.calls.budget.estimate import estimate_messages
    from workbench.sweeps.sweep import Sweep

    def route(request: Received) -> Reply:
        return chat_reply("ok", model="gpt-4o-mini")

    reserved: list[int] = []
    send = dispatch.Dispatcher._send

    async def recording(self: dispatch.Dispatcher, job: dispatch.Job, client: object) -> bool:
        reserved.append(job.tokens)
        return await send(self, job, client)  # type: ignore[arg-type]

    priced: list[int] = []
    estimates = Sweep._estimates

    def counting(self: Sweep, prepared: list[object]) -> object:
        priced.append(len(prepared))
        return estimates(self, prepared)  # type: ignore[arg-type]

    monkeypatch.setattr(dispatch.Dispatcher, "_send", recording)
    monkeypatch.setattr(Sweep, "_estimates", counting)
    prompts = ["short", "a much longer prompt than the first one, " * 5]
    with LoopbackAPI(route) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000")
        s = wb.sweep("{{p}}", vars={"p": prompts}, model="gpt-4o-mini", max_tokens=16)
        s.run(progress=False)
        assert priced == []
        session = s.session
        expected = sorted(
            estimate_messages(
                p.body["messages"],
                model="gpt-4o-mini",
                provider=p.provider,
                session=session,
                max_tokens=16,
            ).prompt_tokens
            + 16
            for p in (plan.prepared for plan in s._plan)
        )
        assert sorted(reserved) == expected  # what the estimate would have reserved
        # With a budget, the sweep is priced first (and refused if it is over).
        reserved.clear()
        wb.sweep("{{p}}", vars={"p": ["other"]}, model="gpt-4o-mini", budget=1).run(progress=False)
        assert priced == [1]


def test_a_tokens_limit_is_read_from_the_first_answer() -> None:
    # Every call is counted before it is placed, so the first answer's "remaining" is read
    # at once, as what is left after that call.
    clock = Clock()
    pacer = Pacer(clock)
    ticket = pacer.reserve(40)
    pacer.observe(ticket, headers(20_000, 200, "1s", "tokens"))
    assert pacer.tokens.bucket is not None and pacer.tokens.bucket.level == pytest.approx(200)
