"""The async client: the core cases of the sync tests, run with asyncio.run."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from fake_openai import (
    BASE_URL,
    FakeClock,
    FakeOpenAI,
    chunk,
    completion,
    event,
    json_response,
    llama_stream,
    sse_response,
)

from workbench.api.client import AsyncOpenAIClient, ChatResult
from workbench.core.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    TruncatedStreamError,
)
from workbench.core.usage import Usage

KEY = "sk-SENTINEL-async-0123456789"
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
T = TypeVar("T")


def make_client(
    fake: FakeOpenAI, sleeps: list[float] | None = None, **kw: Any
) -> AsyncOpenAIClient:
    recorded = sleeps if sleeps is not None else []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    return AsyncOpenAIClient(BASE_URL, KEY, transport=fake.transport, sleep=sleep, **kw)


def call(fake: FakeOpenAI, use: Callable[[AsyncOpenAIClient], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        async with make_client(fake, **kw) as client:
            return await use(client)

    return asyncio.run(main())


def test_chat() -> None:
    fake = FakeOpenAI(json_response(completion("async hello"), headers={"X-Request-Id": "r1"}))
    result = call(fake, lambda client: client.chat(BODY))
    assert isinstance(result, ChatResult)
    assert (result.text, result.finish_reason, result.model) == (
        "async hello",
        "stop",
        "gpt-test-0001",
    )
    assert result.usage == Usage(prompt_tokens=9, completion_tokens=3, total_tokens=12)
    assert result.headers["x-request-id"] == "r1"
    assert fake.body() == BODY
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_stream_split_across_chunks() -> None:
    clock = FakeClock()
    whole = b"".join(llama_stream("as", "ync"))
    pieces: list[Any] = [
        whole[:40],
        clock.at(0.2),
        *[whole[i : i + 5] for i in range(40, len(whole), 5)],
    ]
    fake = FakeOpenAI(sse_response(*pieces))
    deltas: list[str] = []
    result = call(
        fake, lambda c: c.chat({**BODY, "stream": True}, on_delta=deltas.append), clock=clock
    )
    assert (result.text, deltas) == ("async", ["as", "ync"])
    assert result.ttft_s == pytest.approx(0.2)
    assert result.usage is not None and result.usage.prompt_tokens == 5
    assert fake.body()["stream_options"] == {"include_usage": True}


def test_stream_cut_before_done() -> None:
    fake = FakeOpenAI(sse_response(event(chunk("partial")), httpx.ReadError("reset")))
    with pytest.raises(TruncatedStreamError) as info:
        call(fake, lambda c: c.chat({**BODY, "stream": True}))
    assert info.value.partial_text == "partial"
    assert len(fake.requests) == 1


def test_stream_retried_after_a_status_error() -> None:
    sleeps: list[float] = []
    fake = FakeOpenAI(json_response({}, 502), sse_response(*llama_stream("again")))
    result = call(fake, lambda c: c.chat({**BODY, "stream": True}), sleeps=sleeps)
    assert (result.text, result.retries) == ("again", 1)
    assert len(sleeps) == 1


def test_retries_then_success_with_awaited_sleep() -> None:
    sleeps: list[float] = []
    fake = FakeOpenAI(
        json_response({}, 503, {"retry-after-ms": "300"}),
        httpx.ConnectTimeout("timed out"),
        json_response(completion()),
    )
    result = call(fake, lambda c: c.chat(BODY), sleeps=sleeps)
    assert result.retries == 2
    assert sleeps[0] == 0.3
    assert 0.75 <= sleeps[1] <= 1.0  # second backoff step: 1 s times jitter


def test_gives_up_with_the_retry_count() -> None:
    fake = FakeOpenAI(*(httpx.ConnectError("refused") for _ in range(3)))
    with pytest.raises(APIConnectionError) as info:
        call(fake, lambda c: c.models())
    assert info.value.retries == 2
    assert len(fake.requests) == 3


def test_status_errors() -> None:
    fake = FakeOpenAI(
        json_response({"error": {"message": "bad"}}, 400),
        json_response({}, 500, {"x-should-retry": "false"}),
    )

    async def use(client: AsyncOpenAIClient) -> None:
        with pytest.raises(BadRequestError, match=r"HTTP 400 from POST .*/chat/completions: bad$"):
            await client.chat(BODY)
        with pytest.raises(InternalServerError):
            await client.chat(BODY)

    call(fake, use)
    assert len(fake.requests) == 2


def test_key_echo_is_redacted() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        message = f"bad key {request.headers['authorization']}"
        return json_response({"error": {"message": message}, "echo": dict(request.headers)}, 401)

    with pytest.raises(AuthenticationError) as info:
        call(FakeOpenAI(echo), lambda c: c.chat({**BODY, "stream": True}))
    exc = info.value
    said = [str(exc), repr(exc), str(exc.body), "".join(traceback.format_exception(exc))]
    assert not any(KEY in text for text in said)
    assert "bad key Bearer [redacted]" in str(exc)


def test_embeddings_and_models() -> None:
    fake = FakeOpenAI(
        json_response(
            {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]}
        ),
        json_response({"data": [{"id": "m"}]}),
    )

    async def use(client: AsyncOpenAIClient) -> tuple[list[list[float]], list[str]]:
        return (
            await client.embeddings({"model": "e", "input": ["a", "b"]})
        ).vectors, await client.models()

    assert call(fake, use) == ([[1.0], [2.0]], ["m"])
    assert fake.body(0)["encoding_format"] == "float"


def test_injected_client_stays_open_own_client_closes() -> None:
    async def main() -> tuple[bool, bool]:
        http = httpx.AsyncClient(transport=FakeOpenAI(json_response(completion())).transport)
        async with AsyncOpenAIClient(BASE_URL, http_client=http) as client:
            await client.chat(BODY)
        injected_open = not http.is_closed
        await http.aclose()
        own = AsyncOpenAIClient(BASE_URL, transport=FakeOpenAI().transport)
        await own.close()
        return injected_open, own._http.is_closed

    assert asyncio.run(main()) == (True, True)
