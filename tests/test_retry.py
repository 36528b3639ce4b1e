"""The retry rule (openai-python's), as pure functions and as the client applies it."""

from __future__ import annotations

import email.utils
import math
import random
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fake_openai import BASE_URL, FakeOpenAI, completion, json_response

from workbench.api.client import OpenAIClient
from workbench.api.retry import (
    MAX_RETRY_AFTER,
    Attempts,
    parse_retry_after,
    retry_delay,
    should_retry_status,
)
from workbench.core.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
)

NOW = 1_700_000_000.0


def http_date(t: float) -> str:
    return email.utils.formatdate(t, usegmt=True)


# -- parse_retry_after ----------------------------------------------------------------


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5


def test_retry_after_seconds_may_be_a_float() -> None:
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5


def test_retry_after_http_date_is_measured_from_now() -> None:
    assert parse_retry_after({"retry-after": http_date(NOW + 30)}, now=NOW) == 30.0


def test_retry_after_header_names_are_case_insensitive() -> None:
    assert parse_retry_after({"Retry-After-Ms": "200"}) == 0.2
    assert parse_retry_after(httpx.Headers({"Retry-After": "4"})) == 4.0


def test_unparseable_retry_after_ms_falls_back_to_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "3"}) == 3.0


@pytest.mark.parametrize("headers", [{}, {"retry-after": "whenever"}, {"x-other": "1"}])
def test_no_usable_retry_after(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers) is None


# -- retry_delay ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": http_date(NOW + 45)}, 45.0),
    ],
)
def test_server_delay_is_obeyed_within_limits(headers: dict[str, str], expected: float) -> None:
    assert retry_delay(0, headers, now=NOW, jitter=1.0) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "0"},
        {"retry-after": "-1"},
        {"retry-after": "121"},
        {"retry-after-ms": "600000"},
        {"retry-after": http_date(NOW - 10)},  # a date in the past
        {"retry-after": http_date(NOW + 3600)},
    ],
)
def test_out_of_range_server_delay_falls_back_to_backoff(headers: dict[str, str]) -> None:
    assert retry_delay(1, headers, now=NOW, jitter=1.0) == 1.0


@pytest.mark.parametrize(
    ("retries_done", "expected"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]
)
def test_backoff_doubles_up_to_eight_seconds(retries_done: int, expected: float) -> None:
    assert retry_delay(retries_done, jitter=1.0) == expected
    assert retry_delay(retries_done, jitter=0.75) == expected * 0.75


def test_backoff_survives_absurd_retry_counts() -> None:
    assert retry_delay(10_000, jitter=1.0) == 8.0


def test_random_jitter_stays_within_three_quarters_and_one() -> None:
    random.seed(7)
    delays = [retry_delay(2) for _ in range(2000)]
    assert all(1.5 <= d <= 2.0 for d in delays)
    # The jitter really varies and covers most of its range.
    assert min(delays) < 1.55 and max(delays) > 1.95


# -- should_retry_status and Attempts -------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status: int) -> None:
    assert should_retry_status(status, {})


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_final_statuses(status: int) -> None:
    assert not should_retry_status(status, {})


def test_x_should_retry_overrides_the_status() -> None:
    assert should_retry_status(400, {"x-should-retry": "true"})
    assert not should_retry_status(500, {"X-Should-Retry": "false"})


def test_attempts_spend_the_budget_then_give_up() -> None:
    attempts = Attempts(2)
    assert attempts.after_status(503, {"retry-after": "1"}) == 1.0
    assert attempts.after_transport_error() is not None
    assert attempts.retries == 2
    assert attempts.after_status(503, {"retry-after": "1"}) is None
    assert attempts.after_transport_error() is None
    assert attempts.retries == 2


def test_attempts_do_not_spend_the_budget_on_final_statuses() -> None:
    attempts = Attempts(2)
    assert attempts.after_status(400, {}) is None
    assert attempts.retries == 0


# -- the client follows the rule ------------------------------------------------------


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jitter factor 1 and a fixed 'now', so backoffs and HTTP dates are exact."""
    monkeypatch.setattr("workbench.api.retry.random", SimpleNamespace(random=lambda: 0.0))
    monkeypatch.setattr("workbench.api.retry.time", SimpleNamespace(time=lambda: NOW))


def make_client(fake: FakeOpenAI, sleeps: list[float], **kwargs: Any) -> OpenAIClient:
    return OpenAIClient(
        BASE_URL, "sk-test", transport=fake.transport, sleep=sleeps.append, **kwargs
    )


BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("headers", "expected_sleep"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": http_date(NOW + 7)}, 7.0),
        ({"retry-after": "600"}, 0.5),  # too long to obey: our own backoff instead
        ({}, 0.5),
    ],
)
def test_429_is_retried_after_the_delay_the_rule_gives(
    no_jitter: None, headers: dict[str, str], expected_sleep: float
) -> None:
    fake = FakeOpenAI(
        json_response({"error": {"message": "slow down"}}, 429, headers),
        json_response(completion()),
    )
    sleeps: list[float] = []
    result = make_client(fake, sleeps).chat(BODY)
    assert result.text == "Hello!"
    assert result.retries == 1
    assert sleeps == [expected_sleep]
    assert len(fake.requests) == 2
    assert fake.body(0) == fake.body(1) == BODY


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503])
def test_transient_statuses_are_retried(no_jitter: None, status: int) -> None:
    fake = FakeOpenAI(
        json_response({"error": {"message": "busy"}}, status), json_response(completion())
    )
    sleeps: list[float] = []
    result = make_client(fake, sleeps).chat(BODY)
    assert (result.text, result.retries, sleeps) == ("Hello!", 1, [0.5])


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
def test_timeouts_and_connection_errors_are_retried(no_jitter: None, exc: Exception) -> None:
    fake = FakeOpenAI(exc, exc, json_response(completion()))
    sleeps: list[float] = []
    result = make_client(fake, sleeps).chat(BODY)
    assert (result.text, result.retries, sleeps) == ("Hello!", 2, [0.5, 1.0])


def test_x_should_retry_true_retries_a_400(no_jitter: None) -> None:
    refused = json_response({"error": {"message": "try again"}}, 400, {"x-should-retry": "true"})
    fake = FakeOpenAI(refused, json_response(completion()))
    sleeps: list[float] = []
    assert make_client(fake, sleeps).chat(BODY).retries == 1
    assert sleeps == [0.5]


def test_x_should_retry_false_stops_a_500(no_jitter: None) -> None:
    fake = FakeOpenAI(json_response({"error": {"message": "no"}}, 500, {"x-should-retry": "false"}))
    sleeps: list[float] = []
    with pytest.raises(InternalServerError) as info:
        make_client(fake, sleeps).chat(BODY)
    assert (info.value.retries, sleeps, len(fake.requests)) == (0, [], 1)


def test_gives_up_after_max_retries_and_says_so(no_jitter: None) -> None:
    fake = FakeOpenAI(*(json_response({"error": {"message": "overloaded"}}, 503) for _ in range(4)))
    sleeps: list[float] = []
    with pytest.raises(InternalServerError) as info:
        make_client(fake, sleeps, max_retries=3).chat(BODY)
    assert info.value.retries == 3
    assert info.value.status_code == 503
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.requests) == 4
    assert str(info.value) == (
        f"HTTP 503 from POST {BASE_URL}/chat/completions: overloaded (gave up after 3 retries)"
    )


def test_rate_limit_gives_up_with_a_rate_limit_error(no_jitter: None) -> None:
    fake = FakeOpenAI(*(json_response({"error": {"message": "quota"}}, 429) for _ in range(3)))
    with pytest.raises(RateLimitError) as info:
        make_client(fake, []).chat(BODY)
    assert info.value.retries == 2


def test_timeouts_give_up_with_a_timeout_error(no_jitter: None) -> None:
    fake = FakeOpenAI(*(httpx.ReadTimeout("timed out") for _ in range(3)))
    sleeps: list[float] = []
    with pytest.raises(APITimeoutError) as info:
        make_client(fake, sleeps).chat(BODY)
    assert isinstance(info.value, APIConnectionError)
    assert info.value.retries == 2
    assert sleeps == [0.5, 1.0]
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_max_retries_zero_tries_once(no_jitter: None) -> None:
    fake = FakeOpenAI(httpx.ConnectError("refused"))
    sleeps: list[float] = []
    with pytest.raises(APIConnectionError) as info:
        make_client(fake, sleeps, max_retries=0).chat(BODY)
    assert (info.value.retries, sleeps, len(fake.requests)) == (0, [], 1)


@pytest.mark.parametrize(
    ("status", "error_class"), [(400, BadRequestError), (401, AuthenticationError)]
)
def test_client_errors_are_not_retried(status: int, error_class: type[Exception]) -> None:
    fake = FakeOpenAI(json_response({"error": {"message": "no"}}, status))
    sleeps: list[float] = []
    with pytest.raises(error_class):
        make_client(fake, sleeps).chat(BODY)
    assert (sleeps, len(fake.requests)) == ([], 1)


def test_embeddings_and_models_are_retried_too(no_jitter: None) -> None:
    fake = FakeOpenAI(
        httpx.ConnectError("refused"),
        json_response({"data": [{"index": 0, "embedding": [1.0]}], "model": "e"}),
        json_response({}, 502),
        json_response({"data": [{"id": "m1"}]}),
    )
    sleeps: list[float] = []
    client = make_client(fake, sleeps)
    assert client.embeddings({"model": "e", "input": "x"}).retries == 1
    assert client.models() == ["m1"]
    assert sleeps == [0.5, 0.5]


@pytest.mark.parametrize(
    "value",
    [
        "nan",
        "inf",
        "-inf",
        "1e308",
        "-5",
        "Mon, 01 Jan 999999999999999999999 00:00:00 GMT",
        "Mon, 01 Jan 0000 00:00:00 GMT",
        "x" * 100_000,
        "1e-400",
    ],
)
def test_no_retry_after_value_can_raise(value: str) -> None:
    # Issue 20, item 4: every header value from a server is parsed and clamped; an HTTP
    # date in the year 10**20 raised OverflowError before.
    for name in ("retry-after", "retry-after-ms"):
        asked = parse_retry_after({name: value}, now=0.0)
        assert asked is None or (math.isfinite(asked) and asked >= 0)
        assert 0 < retry_delay(0, {name: value}, jitter=1.0) <= MAX_RETRY_AFTER
