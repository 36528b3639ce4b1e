"""Clients for OpenAI-compatible APIs (OpenAI, vLLM, llama.cpp, ...): chat, embeddings, models.

Sync and async flavours share everything but their I/O loops: request bodies and results
(:mod:`workbench.api.wire`), the retry rule (:mod:`workbench.api.retry`) and stream assembly
(:mod:`workbench.api.streaming`). Every failure leaves as one of :mod:`workbench.core.errors`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import EventSource

from workbench.api.chat_api import ChatRoute, chat_route
from workbench.api.credentials import ApiKey, SecretHeaders, request_auth
from workbench.api.deadline import Deadline, DeadlinePassed
from workbench.api.logguard import guard_logs
from workbench.api.retry import Attempts
from workbench.api.retrywait import (
    RetryHook,
    retry_after_status,
    retry_after_transport,
    undecodable,
)
from workbench.api.streaming import StreamAttempt
from workbench.api.wire import (
    ChatResult,
    EmbeddingResult,
    Endpoint,
    Reply,
    embedding_result,
    embeddings_body,
    event_stream_error,
    is_event_stream,
    model_ids,
    read_reply,
)
from workbench.core.errors import APIStatusError, ConfigurationError, mask_url

if TYPE_CHECKING:
    from workbench.api.limits import CallLimits

__all__ = ["ChatResult", "EmbeddingResult", "OpenAIClient", "AsyncOpenAIClient"]


class _Target:
    """What both flavours know before any I/O: where to go, how to authenticate, limits."""

    def __init__(
        self,
        base_url: str,
        api_key: str | ApiKey | None,
        max_retries: int,
        default_headers: Mapping[str, str] | None,
        clock: Callable[[], float],
        deadline: float | None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"base_url must start with http:// or https:// and end in the API version "
                f"(e.g. https://api.openai.com/v1), got {mask_url(base_url)!r}"
            )
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        if deadline is not None and not deadline > 0:
            raise ValueError(f"deadline must be a number of seconds above 0, got {deadline}")
        self.max_retries = max_retries
        self.clock = clock
        self.deadline = deadline
        # Headers and secrets repr masked: verbose tracebacks print every frame's locals.
        self._headers, self._secrets, self._send_url = request_auth(
            self.base_url, api_key, default_headers
        )
        guard_logs(self._secrets)  # a server may echo them into headers httpcore logs

    def endpoint(self, method: str, path: str) -> Endpoint:
        return Endpoint(method, f"{self.base_url}{path}", self._secrets, f"{self._send_url}{path}")

    def deadline_from(self, start: float, seconds: float | None = None) -> Deadline:
        """The deadline of a call started at ``start``: ``seconds``, or the client's."""
        return Deadline(self.deadline if seconds is None else seconds, start, self.clock)

    def request_headers(self, *, stream: bool) -> SecretHeaders:
        accept = "text/event-stream" if stream else "application/json"
        return SecretHeaders({"Accept": accept, **self._headers})


class OpenAIClient:
    """A synchronous client for one OpenAI-compatible base URL (which includes ``/v1``).

    ``latency_s`` and ``ttft_s`` are measured from the start of the call, so they include
    the waits of any retries (``retries`` says how many there were). ``timeout`` and
    ``transport`` configure the ``httpx.Client`` this class creates; an injected
    ``http_client`` keeps its own settings and is left for its owner to close.
    ``timeout`` bounds each read; ``deadline`` (seconds, None: none) bounds a whole call,
    retries and their waits included, and raises ``DeadlineExceededError`` past it.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | ApiKey | None = None,
        *,
        timeout: float | httpx.Timeout = 600.0,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        default_headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.perf_counter,
        deadline: float | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass either http_client or transport, not both")
        self._target = _Target(base_url, api_key, max_retries, default_headers, clock, deadline)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)
        self._sleep = sleep

    @property
    def base_url(self) -> str:
        return self._target.base_url

    def chat(
        self,
        body: dict[str, Any],
        *,
        on_delta: Callable[[str], None] | None = None,
        on_retry: RetryHook | None = None,
        deadline: float | None = None,
    ) -> ChatResult:
        """POST /chat/completions (or /responses for a body that names the Responses
        API: :mod:`workbench.api.chat_api`); streams when ``body["stream"]`` is true.

        ``on_delta`` receives each piece of content text of a stream as it arrives;
        ``on_retry`` hears of each retry before its wait (see :data:`RetryHook`);
        ``deadline`` overrides the client's for this call.
        """
        start = self._target.clock()
        ends = self._target.deadline_from(start, deadline)
        route = chat_route(body)
        endpoint = self._target.endpoint("POST", route.path)
        try:
            if route.stream:
                return self._stream_chat(endpoint, route, start, ends, on_delta, on_retry)
            reply = self._request(endpoint, route.body, ends, on_retry)
        except APIStatusError as exc:
            raise route.not_found(exc) from exc.__cause__
        return route.result(reply, latency_s=self._target.clock() - start)

    def embeddings(
        self,
        body: dict[str, Any],
        *,
        deadline: float | None = None,
        on_retry: RetryHook | None = None,
    ) -> EmbeddingResult:
        """POST /embeddings; vectors in input order (``on_retry``: as for :meth:`chat`)."""
        start = self._target.clock()
        ends = self._target.deadline_from(start, deadline)
        endpoint = self._target.endpoint("POST", "/embeddings")
        reply = self._request(endpoint, embeddings_body(body), ends, on_retry)
        return embedding_result(reply, latency_s=self._target.clock() - start)

    def models(self) -> list[str]:
        """GET /models: the ids the server offers."""
        ends = self._target.deadline_from(self._target.clock())
        return model_ids(self._request(self._target.endpoint("GET", "/models"), None, ends))

    def _request(
        self,
        endpoint: Endpoint,
        body: dict[str, Any] | None,
        deadline: Deadline,
        on_retry: RetryHook | None = None,
    ) -> Reply:
        attempts = Attempts(self._target.max_retries)
        headers = self._target.request_headers(stream=False)
        while True:
            if deadline.passed:
                raise deadline.error(endpoint, attempts.retries)
            request = self._http.build_request(
                endpoint.method,
                endpoint.send_url,
                json=body,
                headers=headers,
                timeout=deadline.timeout(self._http.timeout),
            )
            try:
                # Sent as a stream so that a body dripped a byte at a time is read under
                # the deadline's watch, not in one read that could last for ever.
                response = self._http.send(request, stream=True)
                try:
                    deadline.watch(response)
                    response.read()
                finally:
                    response.close()
            except DeadlinePassed:
                raise deadline.error(endpoint, attempts.retries) from None
            except httpx.TransportError as exc:
                deadline.raise_if_cut(endpoint, attempts.retries, exc)
                delay = retry_after_transport(endpoint, attempts, exc, on_retry)
            except httpx.DecodingError as exc:
                undecodable(endpoint, exc, attempts.retries)
            else:
                if response.is_success:
                    return read_reply(endpoint, response, attempts.retries)
                delay = retry_after_status(endpoint, attempts, response, on_retry)
            self._sleep(deadline.wait(endpoint, attempts, delay))

    def _stream_chat(
        self,
        endpoint: Endpoint,
        route: ChatRoute,
        start: float,
        deadline: Deadline,
        on_delta: Callable[[str], None] | None,
        on_retry: RetryHook | None = None,
    ) -> ChatResult:
        attempts = Attempts(self._target.max_retries)
        headers = self._target.request_headers(stream=True)
        while True:
            if deadline.passed:
                raise deadline.error(endpoint, attempts.retries)
            stream = StreamAttempt(
                endpoint, attempts.retries, start, self._target.clock, on_delta, route
            )
            try:
                with self._http.stream(
                    endpoint.method,
                    endpoint.send_url,
                    json=route.body,
                    headers=headers,
                    timeout=deadline.timeout(self._http.timeout),
                ) as response:
                    # A `: ping` comment or a dripped byte is a chunk: each is checked.
                    deadline.watch(response)
                    if response.is_success:
                        if not is_event_stream(response):
                            response.read()
                            raise event_stream_error(endpoint, response, attempts.retries)
                        for event in EventSource(response).iter_sse():
                            if stream.feed(event.data):
                                break
                        return stream.result(response)
                    response.read()
                    delay = retry_after_status(endpoint, attempts, response, on_retry)
            except DeadlinePassed:
                text = stream.accumulator.text
                raise deadline.error(endpoint, attempts.retries, text) from None
            except httpx.DecodingError as exc:
                stream.undecodable(exc)
            except httpx.TransportError as exc:
                deadline.raise_if_cut(endpoint, attempts.retries, exc, stream.accumulator.text)
                stream.raise_if_delivered(exc)
                delay = retry_after_transport(endpoint, attempts, exc, on_retry)
            self._sleep(deadline.wait(endpoint, attempts, delay))

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncOpenAIClient:
    """The asynchronous twin of :class:`OpenAIClient`; ``on_delta`` stays a plain callable."""

    def __init__(
        self,
        base_url: str,
        api_key: str | ApiKey | None = None,
        *,
        timeout: float | httpx.Timeout = 600.0,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        default_headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
        deadline: float | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass either http_client or transport, not both")
        self._target = _Target(base_url, api_key, max_retries, default_headers, clock, deadline)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport)
        self._sleep = sleep

    @property
    def base_url(self) -> str:
        return self._target.base_url

    async def chat(
        self,
        body: dict[str, Any],
        *,
        on_delta: Callable[[str], None] | None = None,
        on_retry: RetryHook | None = None,
        deadline: float | None = None,
        limits: CallLimits | None = None,
    ) -> ChatResult:
        """POST /chat/completions (or /responses); streams when ``body["stream"]`` is true.
        ``limits``: the call's pass through the limits layer, which hears its 429s (instead
        of ``on_retry``), says how many it retries and when the request went out."""
        start = self._target.clock()
        ends = self._target.deadline_from(start, deadline)
        route = chat_route(body)
        endpoint = self._target.endpoint("POST", route.path)
        attempts = Attempts(self._target.max_retries)
        extensions: dict[str, Any] = {}
        if limits is not None:
            on_retry, extensions = limits.on_retry, limits.extensions
            attempts = Attempts(self._target.max_retries, limits.rate_limit_retries)
        try:
            if route.stream:
                return await self._stream_chat(
                    endpoint, route, start, ends, on_delta, on_retry, attempts, extensions
                )
            reply = await self._request(endpoint, route.body, ends, on_retry, attempts, extensions)
        except APIStatusError as exc:
            raise route.not_found(exc) from exc.__cause__
        return route.result(reply, latency_s=self._target.clock() - start)

    async def embeddings(
        self,
        body: dict[str, Any],
        *,
        deadline: float | None = None,
        on_retry: RetryHook | None = None,
    ) -> EmbeddingResult:
        """POST /embeddings; vectors in input order (``on_retry``: as for :meth:`chat`)."""
        start = self._target.clock()
        ends = self._target.deadline_from(start, deadline)
        endpoint = self._target.endpoint("POST", "/embeddings")
        reply = await self._request(endpoint, embeddings_body(body), ends, on_retry)
        return embedding_result(reply, latency_s=self._target.clock() - start)

    async def models(self) -> list[str]:
        """GET /models: the ids the server offers."""
        ends = self._target.deadline_from(self._target.clock())
        return model_ids(await self._request(self._target.endpoint("GET", "/models"), None, ends))

    async def _request(
        self,
        endpoint: Endpoint,
        body: dict[str, Any] | None,
        deadline: Deadline,
        on_retry: RetryHook | None = None,
        attempts: Attempts | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> Reply:
        attempts = attempts or Attempts(self._target.max_retries)
        headers = self._target.request_headers(stream=False)
        while True:
            if deadline.passed:
                raise deadline.error(endpoint, attempts.retries)
            request = self._http.build_request(
                endpoint.method,
                endpoint.send_url,
                json=body,
                headers=headers,
                timeout=deadline.timeout(self._http.timeout),
                extensions=extensions,
            )
            try:
                response = await self._http.send(request, stream=True)
                try:
                    deadline.watch(response)
                    await response.aread()
                finally:
                    await response.aclose()
            except DeadlinePassed:
                raise deadline.error(endpoint, attempts.retries) from None
            except httpx.TransportError as exc:
                deadline.raise_if_cut(endpoint, attempts.retries, exc)
                delay = retry_after_transport(endpoint, attempts, exc, on_retry)
            except httpx.DecodingError as exc:
                undecodable(endpoint, exc, attempts.retries)
            else:
                if response.is_success:
                    return read_reply(endpoint, response, attempts.retries)
                delay = retry_after_status(endpoint, attempts, response, on_retry)
            await self._sleep(deadline.wait(endpoint, attempts, delay))

    async def _stream_chat(
        self,
        endpoint: Endpoint,
        route: ChatRoute,
        start: float,
        deadline: Deadline,
        on_delta: Callable[[str], None] | None,
        on_retry: RetryHook | None = None,
        attempts: Attempts | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> ChatResult:
        attempts = attempts or Attempts(self._target.max_retries)
        headers = self._target.request_headers(stream=True)
        while True:
            if deadline.passed:
                raise deadline.error(endpoint, attempts.retries)
            stream = StreamAttempt(
                endpoint, attempts.retries, start, self._target.clock, on_delta, route
            )
            try:
                async with self._http.stream(
                    endpoint.method,
                    endpoint.send_url,
                    json=route.body,
                    headers=headers,
                    timeout=deadline.timeout(self._http.timeout),
                    extensions=extensions,
                ) as response:
                    deadline.watch(response)
                    if response.is_success:
                        if not is_event_stream(response):
                            await response.aread()
                            raise event_stream_error(endpoint, response, attempts.retries)
                        # aclosing: leaving early at [DONE] must not leave the generator open.
                        async with aclosing(EventSource(response).aiter_sse()) as events:
                            async for event in events:
                                if stream.feed(event.data):
                                    break
                        return stream.result(response)
                    await response.aread()
                    delay = retry_after_status(endpoint, attempts, response, on_retry)
            except DeadlinePassed:
                text = stream.accumulator.text
                raise deadline.error(endpoint, attempts.retries, text) from None
            except httpx.DecodingError as exc:
                stream.undecodable(exc)
            except httpx.TransportError as exc:
                deadline.raise_if_cut(endpoint, attempts.retries, exc, stream.accumulator.text)
                stream.raise_if_delivered(exc)
                delay = retry_after_transport(endpoint, attempts, exc, on_retry)
            await self._sleep(deadline.wait(endpoint, attempts, delay))

    async def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncOpenAIClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
