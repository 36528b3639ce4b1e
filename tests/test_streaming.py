"""Streamed chat: chunk assembly on its own, then SSE edge cases through the sync client."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fake_openai import (
    BASE_URL,
    DONE,
    FakeClock,
    FakeOpenAI,
    chunk,
    event,
    json_response,
    llama_stream,
    sse_response,
    usage_chunk,
)

from workbench.api.client import OpenAIClient
from workbench.api.streaming import StreamAccumulator, StreamProtocolError
from workbench.core.errors import (
    APIResponseError,
    RateLimitError,
    TruncatedStreamError,
)
from workbench.core.usage import Usage

KEY = "sk-test-streaming-key"
BODY = {"model": "smol", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def tool_delta(index: int, **fields: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index}
    function = {k: fields.pop(k) for k in ("name", "arguments") if k in fields}
    call.update(fields)
    if function:
        call["function"] = function
    return call


# -- StreamAccumulator ----------------------------------------------------------------


def test_accumulator_assembles_a_completion() -> None:
    acc = StreamAccumulator()
    assert acc.feed(chunk(role="assistant")) == ""  # llama.cpp: content null
    assert not acc.has_output
    assert acc.feed(chunk("Hel")) == "Hel"
    assert acc.has_output
    assert acc.feed(chunk("lo")) == "lo"
    acc.feed(chunk(finish_reason="length"))
    acc.feed(usage_chunk(5, 2))
    assert acc.feed_data("[DONE]") == ""
    assert acc.done
    assert acc.completion() == {
        "id": "chatcmpl-s1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "smol-test",
        "system_fingerprint": "b0-unknown",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello"},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def test_accumulator_merges_tool_call_fragments_by_index() -> None:
    acc = StreamAccumulator()
    acc.feed(chunk(role="assistant"))
    assert not acc.has_output
    acc.feed(
        chunk(tool_calls=[tool_delta(0, id="call_a", type="function", name="get_", arguments="")])
    )
    assert acc.has_output
    acc.feed(chunk(tool_calls=[tool_delta(0, name="weather", arguments='{"city":')]))
    acc.feed(chunk(tool_calls=[tool_delta(1, id="call_b", type="function", name="time")]))
    acc.feed(chunk(tool_calls=[tool_delta(0, arguments=' "Oslo"}')]))
    acc.feed(chunk(tool_calls=[tool_delta(1, id="call_b", arguments="{}")]))  # id repeated
    acc.feed(chunk(finish_reason="tool_calls"))
    assert acc.tool_calls == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{}"}},
    ]
    message = acc.completion()["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == acc.tool_calls


def test_accumulator_ignores_other_choices_and_empty_events() -> None:
    acc = StreamAccumulator()
    other = chunk("not me")
    other["choices"][0]["index"] = 1
    assert acc.feed(other) == ""
    assert acc.feed_data("") == ""
    assert acc.text == ""


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ('{"choices": [', "malformed event JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"choices": ["oops"]}', "unexpected chunk shape"),
        ('{"error": {"message": "context overflow"}}', "error event: context overflow"),
    ],
)
def test_accumulator_rejects_unusable_events(data: str, problem: str) -> None:
    with pytest.raises(StreamProtocolError, match=problem):
        StreamAccumulator().feed_data(data)


# -- through the client ---------------------------------------------------------------


def make_client(fake: FakeOpenAI, **kwargs: Any) -> OpenAIClient:
    kwargs.setdefault("sleep", lambda seconds: None)
    return OpenAIClient(BASE_URL, KEY, transport=fake.transport, **kwargs)


def run(fake: FakeOpenAI, **kwargs: Any) -> tuple[Any, list[str]]:
    deltas: list[str] = []
    result = make_client(fake, **kwargs).chat(BODY, on_delta=deltas.append)
    return result, deltas


def test_stream_result_and_deltas() -> None:
    clock = FakeClock()
    fake = FakeOpenAI(
        sse_response(
            event(chunk(role="assistant")),
            clock.at(0.4),
            event(chunk("The ")),
            clock.at(0.9),
            event(chunk("answer")),
            event(chunk(finish_reason="stop")),
            event(usage_chunk(11, 2)),
            clock.at(1.5),
            DONE,
            headers={"x-ratelimit-remaining-tokens": "5000"},
        )
    )
    result, deltas = run(fake, clock=clock)
    assert deltas == ["The ", "answer"]
    assert result.text == "The answer"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(prompt_tokens=11, completion_tokens=2, total_tokens=13)
    assert (result.model, result.system_fingerprint, result.id) == (
        "smol-test",
        "b0-unknown",
        "chatcmpl-s1",
    )
    assert result.ttft_s == pytest.approx(0.4)
    assert result.latency_s == pytest.approx(1.5)
    assert result.retries == 0
    assert result.tool_calls == []
    assert result.headers["x-ratelimit-remaining-tokens"] == "5000"
    assert result.raw["object"] == "chat.completion"
    assert result.raw["choices"][0]["message"] == {"role": "assistant", "content": "The answer"}
    assert result.raw["usage"]["total_tokens"] == 13


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 3, 7, 50])
def test_events_split_across_chunks(size: int) -> None:
    whole = b"".join(llama_stream("Split ", "me ", "up ✓"))  # ✓ is 3 bytes: split mid-char
    result, deltas = run(FakeOpenAI(sse_response(*split_every(whole, size))))
    assert result.text == "Split me up ✓"
    assert deltas == ["Split ", "me ", "up ✓"]
    assert result.usage is not None and result.usage.total_tokens == 7


def test_crlf_line_endings_split_between_cr_and_lf() -> None:
    whole = b"".join(
        [
            event(chunk(role="assistant"), "\r\n"),
            event(chunk("one"), "\r\n"),
            event(chunk(" two"), "\r\n"),
            b"data: [DONE]\r\n\r\n",
        ]
    )
    pieces = whole.replace(b"\r\n", b"\r|\n").split(b"|")  # every CR ends a chunk
    result, deltas = run(FakeOpenAI(sse_response(*pieces)))
    assert (result.text, deltas) == ("one two", ["one", " two"])


def test_comments_and_data_less_events_are_skipped() -> None:
    fake = FakeOpenAI(
        sse_response(
            b": ping\n\n",
            event(chunk("a")),
            b": keep-alive\n",
            b"event: ping\n\n",
            event(chunk("b")),
            b"id: 7\nretry: 1000\n\n",
            DONE,
        )
    )
    result, deltas = run(fake)
    assert (result.text, deltas) == ("ab", ["a", "b"])


def test_multi_line_data_is_joined_as_the_spec_says() -> None:
    payload = json.dumps(chunk("multi"), indent=1).replace("\n", "\ndata: ")
    result, _ = run(FakeOpenAI(sse_response(f"data: {payload}\n\n".encode(), DONE)))
    assert result.text == "multi"


def test_stream_without_usage_chunk_has_no_usage() -> None:
    fake = FakeOpenAI(sse_response(event(chunk("x")), event(chunk(finish_reason="stop")), DONE))
    result, _ = run(fake)
    assert result.usage is None
    assert "usage" not in result.raw


def test_tool_call_stream() -> None:
    clock = FakeClock()
    fake = FakeOpenAI(
        sse_response(
            event(chunk(role="assistant")),
            clock.at(0.3),
            event(chunk(tool_calls=[tool_delta(0, id="call_1", type="function", name="add")])),
            clock.at(0.6),
            event(chunk(tool_calls=[tool_delta(0, arguments='{"a": 1, ')])),
            event(chunk(tool_calls=[tool_delta(0, arguments='"b": 2}')])),
            event(chunk(finish_reason="tool_calls")),
            DONE,
        )
    )
    result, deltas = run(fake, clock=clock)
    assert deltas == []
    assert result.text == ""
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
        }
    ]
    assert result.ttft_s == pytest.approx(0.3)


def test_stream_cut_before_done_keeps_the_partial_text() -> None:
    fake = FakeOpenAI(sse_response(event(chunk("Once upon")), event(chunk(" a time"))))
    with pytest.raises(TruncatedStreamError) as info:
        run(fake)
    assert info.value.partial_text == "Once upon a time"
    assert "ended without data: [DONE]" in str(info.value)
    assert len(fake.requests) == 1  # a malformed 2xx answer is not retried


def test_connection_broken_after_content_is_not_retried() -> None:
    fake = FakeOpenAI(
        sse_response(event(chunk("Half")), httpx.ReadError("connection reset")),
        sse_response(*llama_stream("never sent")),
    )
    deltas: list[str] = []
    with pytest.raises(TruncatedStreamError) as info:
        make_client(fake).chat(BODY, on_delta=deltas.append)
    assert info.value.partial_text == "Half"
    assert deltas == ["Half"]
    assert "the connection broke (ReadError: connection reset)" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.ReadError)
    assert len(fake.requests) == 1


def test_connection_broken_before_content_is_retried() -> None:
    sleeps: list[float] = []
    fake = FakeOpenAI(
        sse_response(event(chunk(role="assistant")), httpx.RemoteProtocolError("peer closed")),
        sse_response(*llama_stream("Fine")),
    )
    result, deltas = run(fake, sleep=sleeps.append)
    assert (result.text, deltas, result.retries) == ("Fine", ["Fine"], 1)
    assert len(sleeps) == 1 and 0.375 <= sleeps[0] <= 0.5


def test_read_timeout_mid_stream_after_content() -> None:
    fake = FakeOpenAI(sse_response(event(chunk("slow")), httpx.ReadTimeout("timed out")))
    with pytest.raises(TruncatedStreamError) as info:
        run(fake)
    assert info.value.partial_text == "slow"


def test_malformed_event_json_raises_truncated_with_partial_text() -> None:
    fake = FakeOpenAI(sse_response(event(chunk("Good")), b'data: {"choices": [{"delta"\n\n', DONE))
    with pytest.raises(TruncatedStreamError, match="malformed event JSON") as info:
        run(fake)
    assert info.value.partial_text == "Good"
    assert len(fake.requests) == 1


def test_error_event_mid_stream() -> None:
    fake = FakeOpenAI(
        sse_response(event(chunk("Par")), event({"error": {"message": "server overloaded"}}), DONE)
    )
    with pytest.raises(TruncatedStreamError, match="error event: server overloaded") as info:
        run(fake)
    assert info.value.partial_text == "Par"


def test_status_error_on_a_stream_is_read_and_retried() -> None:
    sleeps: list[float] = []
    limited = json_response({"error": {"message": "Rate limit reached"}}, 429, {"retry-after": "3"})
    fake = FakeOpenAI(limited, limited, limited)
    with pytest.raises(RateLimitError) as info:
        run(fake, sleep=sleeps.append)
    assert str(info.value).startswith(
        f"HTTP 429 from POST {BASE_URL}/chat/completions: Rate limit reached"
    )
    assert info.value.retries == 2
    assert sleeps == [3.0, 3.0]


def test_status_error_then_stream_succeeds() -> None:
    fake = FakeOpenAI(json_response({}, 503), sse_response(*llama_stream("ok")))
    result, deltas = run(fake)
    assert (result.text, deltas, result.retries) == ("ok", ["ok"], 1)


def test_json_answer_to_a_stream_request_is_a_response_error() -> None:
    fake = FakeOpenAI(json_response({"error": {"message": "streaming unsupported"}}))
    with pytest.raises(APIResponseError, match="expected text/event-stream.*streaming unsupported"):
        run(fake)
    assert len(fake.requests) == 1


def test_events_after_done_are_ignored() -> None:
    fake = FakeOpenAI(sse_response(event(chunk("x")), DONE, b"data: garbage\n\n"))
    assert run(fake)[0].text == "x"
