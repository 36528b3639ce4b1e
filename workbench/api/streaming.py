"""Assembling a streamed chat completion from its ``chat.completion.chunk`` events.

Shared by the sync and async clients, which only read the events: the accumulator builds
the dict a non-streamed call would have returned; an attempt adds timing and our errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import httpx

from workbench.api.stream_events import (
    DeltaAccumulator,
    StreamProtocolError,
    StreamRoute,
    error_message,
)
from workbench.api.wire import ChatResult, Endpoint, Reply, chat_result, lower_headers

__all__ = ["StreamAccumulator", "StreamAttempt", "StreamProtocolError"]


class StreamAccumulator(DeltaAccumulator):
    """Collects text, tool calls, finish reason, usage and ids from chunk dicts.

    Only choice 0 is assembled: the workbench asks for one completion per request.
    """

    end_words = "data: [DONE]"  # what a stream cut short never sent
    event_word = "chunk"

    def __init__(self) -> None:
        super().__init__()
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.meta: dict[str, Any] = {}
        self._role = "assistant"
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self.logprobs: list[dict[str, Any]] | None = None  # None: the server sent none

    def feed(self, chunk: dict[str, Any]) -> str:
        """Feed one parsed chunk; return its content delta ("" if none)."""
        if "error" in chunk:
            raise self.server_error(error_message(chunk["error"]))
        for key in ("id", "model", "system_fingerprint", "created", "service_tier"):
            if chunk.get(key) is not None:
                self.meta[key] = chunk[key]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        delta_text = ""
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason") is not None:
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta") or {}
            if delta.get("role"):
                self._role = delta["role"]
            # llama.cpp opens with {role: assistant, content: null}: not output yet.
            if delta.get("content"):
                delta_text += delta["content"]
            for call in delta.get("tool_calls") or []:
                self._merge_tool_call(call)
                self.has_output = True
            if delta.get("refusal"):
                self.add_refusal(delta["refusal"])
            logprobs = choice.get("logprobs") or {}
            if isinstance(logprobs.get("content"), list):
                if self.logprobs is None:
                    self.logprobs = []
                self.logprobs.extend(logprobs["content"])
        return self.add_text(delta_text)

    def _merge_tool_call(self, call: dict[str, Any]) -> None:
        # Fragments of one call share an index; id and type come once (some servers
        # repeat them), name and arguments arrive in pieces and are concatenated.
        index = int(call.get("index", len(self._tool_calls)))
        merged = self._tool_calls.setdefault(
            index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        for key in ("id", "type"):
            if call.get(key):
                merged[key] = call[key]
        function = call.get("function") or {}
        for key in ("name", "arguments"):
            if function.get(key):
                merged["function"][key] += function[key]

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [self._tool_calls[index] for index in sorted(self._tool_calls)]

    def completion(self) -> dict[str, Any]:
        """The assembled response, shaped like a non-streamed ``chat.completion``."""
        message: dict[str, Any] = {"role": self._role, "content": self.text or None}
        if self._tool_calls:
            message["tool_calls"] = self.tool_calls
        if self.refusal_parts:
            message["refusal"] = "".join(self.refusal_parts)
        choice: dict[str, Any] = {
            "index": 0, "message": message, "finish_reason": self.finish_reason
        }
        if self.logprobs is not None:
            choice["logprobs"] = {"content": self.logprobs}
        completion: dict[str, Any] = {
            "id": self.meta.get("id"),
            "object": "chat.completion",
            "created": self.meta.get("created"),
            "model": self.meta.get("model"),
            "system_fingerprint": self.meta.get("system_fingerprint"),
            "choices": [choice],
        }
        if "service_tier" in self.meta:
            completion["service_tier"] = self.meta["service_tier"]
        if self.usage is not None:
            completion["usage"] = self.usage
        return completion


class StreamAttempt:
    """One streamed attempt: feeds events to the accumulator, times the first output.

    ``route`` (Chat Completions when None) says which events these are and how the
    assembled answer is read (:mod:`workbench.api.chat_api`).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        retries: int,
        start: float,
        clock: Callable[[], float],
        on_delta: Callable[[str], None] | None,
        route: StreamRoute | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.retries = retries
        self.start = start
        self.clock = clock
        self.on_delta = on_delta
        self.route = route
        self.accumulator: DeltaAccumulator = (
            StreamAccumulator() if route is None else route.accumulator()
        )
        self.ttft_s: float | None = None

    def feed(self, data: str) -> bool:
        """Feed one event's data; return True once the stream says ``[DONE]``."""
        acc = self.accumulator
        try:
            delta = acc.feed_data(data)
        except StreamProtocolError as exc:
            self.endpoint.scrub(exc)
            raise self.endpoint.truncated_error(str(exc), acc.text, self.retries) from exc
        if self.ttft_s is None and acc.has_output:
            self.ttft_s = self.clock() - self.start
        if delta and self.on_delta is not None:
            self.on_delta(delta)
        return acc.done

    def raise_if_delivered(self, exc: httpx.TransportError) -> None:
        """A network failure after output reached the caller is final: no retry."""
        if self.accumulator.has_output:
            raise self.endpoint.broken_stream_error(
                exc, self.accumulator.text, self.retries
            ) from exc

    def undecodable(self, exc: httpx.DecodingError) -> NoReturn:
        problem = f"the body could not be decoded ({exc})"
        raise self.endpoint.truncated_error(problem, self.accumulator.text, self.retries) from exc

    def result(self, response: httpx.Response) -> ChatResult:
        acc = self.accumulator
        if not acc.done:
            raise self.endpoint.truncated_error(
                f"the stream ended without {acc.end_words}", acc.text, self.retries
            )
        reply = Reply(
            self.endpoint, acc.completion(), lower_headers(response.headers), self.retries
        )
        latency_s = self.clock() - self.start
        if self.route is not None:
            return self.route.result(reply, latency_s=latency_s, ttft_s=self.ttft_s)
        return chat_result(reply, latency_s=latency_s, ttft_s=self.ttft_s)
