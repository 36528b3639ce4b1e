"""A scripted fake of the OpenAI API for client tests, served through httpx.MockTransport.

Replies are served in order and every request is logged; event streams are byte
iterators, so tests choose exactly where chunks split and what breaks mid-stream.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

BASE_URL = "http://fake.test/v1"

# A reply is a response, an exception to raise, or a function of the request.
Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
# A stream piece is bytes to send, an exception to raise, or a callable run in between
# (to move a fake clock forward).
Piece = bytes | Exception | Callable[[], None]


class FakeOpenAI:
    def __init__(self, *replies: Reply) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        reply = self.replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def at(self, t: float) -> Callable[[], None]:
        """A stream piece that sets the clock to ``100 + t``."""

        def move() -> None:
            self.now = 100.0 + t

        return move


class Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, pieces: list[Piece]) -> None:
        self.pieces = pieces

    def _next(self) -> Iterator[bytes]:
        for piece in self.pieces:
            if isinstance(piece, Exception):
                raise piece
            if callable(piece):
                piece()
            else:
                yield piece

    def __iter__(self) -> Iterator[bytes]:
        yield from self._next()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._next():
            yield chunk


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=data, headers=headers)


def sse_response(*pieces: Piece, headers: dict[str, str] | None = None) -> httpx.Response:
    all_headers = {"content-type": "text/event-stream; charset=utf-8", **(headers or {})}
    return httpx.Response(200, headers=all_headers, stream=Pieces(list(pieces)))


def event(data: dict[str, Any] | str, newline: str = "\n") -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return f"data: {text}{newline}{newline}".encode()


DONE = b"data: [DONE]\n\n"


def completion(text: str | None = "Hello!", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-test-0001",
        "system_fingerprint": "fp_123",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
    data.update(overrides)
    return data


def chunk(
    content: str | None = None,
    *,
    finish_reason: str | None = None,
    role: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
        delta["content"] = content
    elif content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-s1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "smol-test",
        "system_fingerprint": "b0-unknown",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt: int = 5, completion: int = 2) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "smol-test",
        "system_fingerprint": "b0-unknown",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def llama_stream(*texts: str) -> list[bytes]:
    """The events llama.cpp sends for ``texts`` with include_usage, as separate chunks."""
    return [
        event(chunk(role="assistant")),
        *(event(chunk(text)) for text in texts),
        event(chunk(finish_reason="stop")),
        event(usage_chunk()),
        DONE,
    ]
