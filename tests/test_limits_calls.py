"""Rate-limit headers can never hang a call or lose an answer (issue 20, item 4): single
calls and sweeps against a loopback server whose x-ratelimit headers say a limit is
spent until a reset far away, or send values no server should.

OpenAI's rate-limit guide: "x-ratelimit-reset-requests: The time until the rate limit
(based on requests) resets to its initial state"; daily limits exist, so a reset of many
hours is a real value. A call is refused at once when the reset is past its deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.calls.dispatch import reserved_tokens
from workbench.core.errors import RateLimitError

KEY = "sk-test-0000000000000000"


class Server:
    """Answers every chat with ``headers``; counts the requests."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.requests = 0
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> Reply:
        with self._lock:
            self.requests += 1
        reply = chat_reply("ok", model="gpt-4o-mini")
        reply.headers = dict(self.headers)
        return reply


def spent_until(reset: str) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": reset,
    }


@pytest.fixture
def no_long_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    # A guard, not a timing: before, a spent daily limit slept for 11 days (or raised
    # OverflowError from time.sleep). Any wait past the 5 s deadline is that bug.
    real = time.sleep

    def sleep(seconds: float) -> None:
        assert seconds <= 5, f"asked to sleep {seconds} s past a 5 s deadline"
        real(seconds)

    monkeypatch.setattr(time, "sleep", sleep)


@pytest.fixture
def serving(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[Server]:
    server = Server(spent_until("999999s"))
    with LoopbackAPI(server) as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        yield server


@pytest.mark.parametrize("reset", ["999999s", "1e308", "inf", "99999999999h"])
def test_a_spent_limit_until_a_far_reset_fails_the_next_call_at_once(
    serving: Server, no_long_sleeps: None, reset: str
) -> None:
    serving.headers = spent_until(reset)
    first = wb.chat("one", model="gpt-4o-mini", deadline=5)
    assert first.text == "ok"
    with pytest.raises(RateLimitError) as refused:
        wb.chat("two", model="gpt-4o-mini", deadline=5)
    message = str(refused.value)
    assert "\n" not in message and "UTC" in message
    assert "deadline" in message
    assert serving.requests == 1  # refused before sending: nothing paid
    assert len(wb.runs()) == 1  # the paid answer is stored


@pytest.mark.parametrize("reset", ["nan", "-5", "garbage", "0s", "1e-320"])
def test_unreadable_reset_values_never_raise(serving: Server, reset: str) -> None:
    serving.headers = spent_until(reset) | {"x-ratelimit-limit-requests": "6000"}
    for i in range(3):
        assert wb.chat(f"call {i}", model="gpt-4o-mini", deadline=5).text == "ok"
    assert len(wb.runs()) == 3


def test_a_sweep_stops_with_the_reset_line_and_resumes_later(serving: Server) -> None:
    s = wb.sweep("{{p}}", vars={"p": ["a", "b", "c", "d"]}, model="gpt-4o-mini", concurrency=1)
    s.start()
    try:
        with pytest.raises(RateLimitError) as refused:
            ended = s.wait(30)  # a guard against the old hang at sent=0, not a timing
            assert ended, f"the sweep is still {s.progress.state} after 30 s"
    finally:
        s.stop()
    progress = s.progress
    assert progress.state == "failed"
    assert "UTC" in progress.message and "run the sweep again" in progress.message
    assert "UTC" in str(refused.value)
    assert serving.requests == 1 and progress.ok == 1
    # Later, once the limit has reset (the server says so, and the reset time has come):
    # running the sweep again sends only what is missing.
    serving.headers = {
        "x-ratelimit-limit-requests": "6000",
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-reset-requests": "10ms",
    }
    pacer = s.session.limits.pacer(s._plan[0].prepared.provider.identity, "gpt-4o-mini")
    pacer.requests.blocked_until = 0.0  # the announced reset has passed
    df = s.run(progress=False)
    assert (df.status == "ok").sum() == 4
    assert serving.requests == 4  # the first answer was not paid again


def test_a_sweep_keeps_every_answer_whatever_the_reset_says(serving: Server) -> None:
    # Four answers at once, each saying "nothing left for 1e308 s": before, the rate read
    # from them overflowed to 0 and a ZeroDivisionError lost three paid answers.
    serving.headers = spent_until("1e308")
    s = wb.sweep("{{p}}", vars={"p": ["a", "b", "c", "d"]}, model="gpt-4o-mini", concurrency=4)
    s.start()
    try:
        s.wait(30)
    except RateLimitError:
        pass  # stopping is fine; losing a paid answer is not
    finally:
        s.stop()
    assert len(wb.runs()) == serving.requests


def test_a_sweep_stopped_by_a_far_reset_keeps_the_answers_in_flight(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    # "fast" is answered at once and says the limit is spent for 11 days; "slow", sent
    # beside it, is answered later (and paid for): the sweep stops, but keeps that answer.
    server = Server(spent_until("999999s"))

    def route(request: Received) -> Reply:
        reply = server(request)
        if "slow" in str(request.body):
            reply.delay_s = 0.5
        return reply

    with LoopbackAPI(route) as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        points = ["fast", "slow", "c", "d", "e", "f"]
        s = wb.sweep("{{p}}", vars={"p": points}, model="gpt-4o-mini", concurrency=2)
        s.start()
        try:
            with pytest.raises(RateLimitError):
                assert s.wait(30), "still running after 30 s"  # a guard, not a timing
        finally:
            s.stop()
    assert server.requests == 2
    runs = wb.runs()
    assert sorted(runs[runs.status == "ok"].prompt) == ["fast", "slow"]


class Storm:
    """Answers every chat with a 429 (``retry-after-ms: 1``), as OpenAI words it; counts."""

    def __init__(self) -> None:
        self.requests = 0
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> Reply:
        with self._lock:
            self.requests += 1
        return Reply(
            429,
            {"error": {"message": "Rate limit reached for requests", "type": "requests"}},
            headers={"retry-after-ms": "1"},
        )


@pytest.mark.parametrize("max_retries", [0, 2, 5])
def test_a_429_storm_gets_the_limits_layers_attempts_not_a_product_of_two_loops(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path, max_retries: int
) -> None:
    # One 429 policy (issue 21, item 3): a sweep's call is retried on 429s as often as the
    # limits layer says, whatever the client's max_retries. Before, the dispatcher gave
    # the client's max_retries + 1 attempts 4 goes of its own: 4, 12 or 24 requests here.
    from workbench.api.limits import SWEEP_RATE_LIMIT_RETRIES

    storm = Storm()
    with LoopbackAPI(storm) as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        wb.configure(max_retries=max_retries)
        df = wb.sweep("one", model="gpt-4o-mini").run(progress=False)
    assert storm.requests == SWEEP_RATE_LIMIT_RETRIES + 1
    assert list(df.status) == ["error"] and "Rate limit" in df.error[0]
    assert list(df.retries) == [SWEEP_RATE_LIMIT_RETRIES]


def test_a_single_calls_429s_keep_the_clients_max_retries(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    storm = Storm()
    with LoopbackAPI(storm) as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        wb.configure(max_retries=1)
        with pytest.raises(RateLimitError):
            wb.chat("one", model="gpt-4o-mini")
    assert storm.requests == 2


def test_a_cold_sweeps_plan_builds_the_tokenizer_so_its_run_starts_warm(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    # Issue 21: a sweep's first call waited ~0.57 s for the tokenizer when s.run() came
    # right after planning. Planning now builds it (its estimate needs it anyway), so a run
    # at once starts warm. Sending the first calls while it was built instead left a cold
    # 1,000-call sweep at 1.04-1.10 x the bound in bench/rate_limited.py (1.02-1.03 x so).
    from workbench.core import tokens

    built = tokens.get_encoding
    building: list[float] = []

    def slow_build(name: str) -> object:
        if not building:  # the first build is slow: a cold o200k_base takes ~0.57 s here
            building.append(time.monotonic())
            time.sleep(0.3)
        return built(name)

    monkeypatch.setattr(tokens, "get_encoding", slow_build)
    requests: list[float] = []

    def answer(request: Received) -> Reply:
        requests.append(time.monotonic())
        reply = chat_reply("ok", model="gpt-4o-mini")
        reply.headers = {
            "x-ratelimit-limit-tokens": "1000000",
            "x-ratelimit-remaining-tokens": "999000",
            "x-ratelimit-reset-tokens": "60ms",
        }
        return reply

    with LoopbackAPI(answer) as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        s = wb.sweep("n={{n}}", vars={"n": list(range(12))}, model="gpt-4o-mini")
        assert building and s._warm.tokenizers.is_set()  # built before the plan returned
        df = s.run(progress=False)
    assert (df.status == "ok").all() and min(requests) > building[0] + 0.3
    pacer = s.session.limits.pacer(s._plan[0].prepared.provider.identity, "gpt-4o-mini")
    # Every call was placed with its tokens counted: prompt and the most it may answer.
    assert pacer.tokens.taken == sum(reserved_tokens(p.prepared) for p in s._plan)
