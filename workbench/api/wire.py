"""The OpenAI wire format without I/O: request bodies, results, and our errors for replies.

Shared by the sync and async clients, which only differ in how they wait for the network.
Every message built here passes through :func:`workbench.core.errors.redact`.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from workbench.api.credentials import MaskedUrl, scrub_chain
from workbench.core.errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    DeadlineExceededError,
    TruncatedStreamError,
    redact,
    status_error_class,
)
from workbench.core.notes import Notes, kind_of
from workbench.core.usage import Usage

__all__ = [
    "ChatResult",
    "EmbeddingResult",
    "Endpoint",
    "Reply",
    "chat_body",
    "chat_result",
    "embedding_result",
    "embeddings_body",
    "event_stream_error",
    "is_event_stream",
    "lower_headers",
    "model_ids",
    "read_reply",
    "server_message",
    "unusable_answer",
]

EXCERPT_CHARS = 300


@dataclass
class ChatResult:
    text: str
    finish_reason: str | None
    tool_calls: list[dict[str, Any]]
    usage: Usage | None
    model: str | None  # the model that answered, as the server names it
    system_fingerprint: str | None
    id: str | None
    latency_s: float
    ttft_s: float | None  # streaming only: until the first content or tool-call delta
    retries: int
    headers: dict[str, str] = field(repr=False)  # lower-case names
    raw: dict[str, Any] = field(repr=False)  # for streams: assembled like chat.completion
    # Reply values the table could not hold, each dropped with one note (see notes.py).
    notes: list[str] = field(default_factory=list)
    refusal: str | None = None  # message.refusal: why the model declined to answer
    logprobs: list[dict[str, Any]] | None = None  # choices[0].logprobs.content, as returned
    service_tier: str | None = None
    reasoning_summary: str | None = None  # Responses API: the reasoning items' summaries


@dataclass
class EmbeddingResult:
    vectors: list[list[float]]
    model: str | None
    usage: Usage | None
    latency_s: float
    retries: int
    headers: dict[str, str] = field(repr=False)
    raw: dict[str, Any] = field(repr=False)
    notes: list[str] = field(default_factory=list)


def chat_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body to send: the caller's, plus ``include_usage`` on streams unless they chose."""
    sent = dict(body)
    if sent.get("stream") and "stream_options" not in sent:
        sent["stream_options"] = {"include_usage": True}
    return sent


def embeddings_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body to send: the caller's, asking for plain floats unless they chose."""
    sent = dict(body)
    sent.setdefault("encoding_format", "float")
    return sent


def lower_headers(headers: httpx.Headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    if not flat:
        return "(empty body)"
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def server_message(body_text: str) -> str:
    """The server's own explanation from an error body, or an excerpt of the body."""
    try:
        data = json.loads(body_text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, str) and error:
            return _excerpt(error)
        if isinstance(error, dict):
            # OpenAI and llama.cpp use error.message; FastAPI-based servers use detail.
            for key in ("message", "detail", "msg"):
                value = error.get(key)
                if isinstance(value, str) and value:
                    return _excerpt(value)
    return _excerpt(body_text)


def _gave_up(retries: int) -> str:
    return f" (gave up after {retries} retries)" if retries else ""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _redirect(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        return f"a redirect without a Location header: {server_message(response.text)}"
    # Not followed: a redirect may point anywhere, and the key would go along. (The
    # message is redacted like every other, so credentials in the target are masked.)
    target = str(response.url.join(location))
    return (
        f"it redirects to {target}, which the workbench does not follow: "
        "set the base URL to where it points"
    )


@dataclass(frozen=True)
class Endpoint:
    """One method and URL, and the secrets to keep out of any message about calling it."""

    method: str
    url: str
    secrets: tuple[str, ...] = ()
    # Where requests go: ``url`` without credentials (they travel in a header instead).
    send_url: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "send_url", self.send_url or str(self.url))
        object.__setattr__(self, "url", MaskedUrl(self.url))

    def __repr__(self) -> str:
        # The URL may carry a password: shown as every message shows it.
        return f"Endpoint({self.method} {redact(self.url, self.secrets)})"

    def _redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def _where(self) -> str:
        return f"{self.method} {self.url}"

    def scrub(self, exc: BaseException) -> BaseException:
        """Make a low-level exception safe to become our ``__cause__``.

        Tracebacks print the whole chain, so a key echoed into a cause's message, or held
        by a local variable of one of its frames, would leak even when our own message is
        clean.
        """
        return scrub_chain(exc, self.secrets)

    def status_error(self, response: httpx.Response, retries: int) -> APIStatusError:
        """The error for a non-2xx response whose body has been read."""
        status = response.status_code
        detail = _redirect(response) if 300 <= status < 400 else server_message(response.text)
        message = f"HTTP {status} from {self._where()}: {detail}"
        message += _gave_up(retries)
        return status_error_class(status)(
            self._redact(message),
            url=self._redact(self.url),
            status_code=status,
            body=self._redact(response.text),
            retries=retries,
        )

    def transport_error(self, exc: httpx.TransportError, retries: int) -> APIConnectionError:
        """The error for a timeout or a connection that failed or broke."""
        detail = _describe(self.scrub(exc))
        if isinstance(exc, httpx.TimeoutException):
            cls: type[APIConnectionError] = APITimeoutError
            message = (
                f"Timed out on {self._where()} ({detail}): check that the server is up, "
                "or pass a larger timeout for slow models"
            )
        else:
            cls = APIConnectionError
            message = (
                f"Could not talk to {self._where()} ({detail}): check the base URL, "
                "that the server is running, and any proxy or network in between"
            )
        message += _gave_up(retries)
        return cls(self._redact(message), url=self._redact(self.url), retries=retries)

    def response_error(
        self, problem: str, *, body: str, retries: int, status_code: int | None = None
    ) -> APIResponseError:
        """The error for a 2xx answer that we cannot use."""
        return APIResponseError(
            self._redact(f"Unusable answer from {self._where()}: {problem}"),
            url=self._redact(self.url),
            status_code=status_code,
            body=self._redact(body),
            retries=retries,
        )

    def truncated_error(
        self, problem: str, partial_text: str, retries: int
    ) -> TruncatedStreamError:
        """The error for a stream that stopped before ``data: [DONE]``."""
        message = (
            f"Stream from {self._where()} stopped after {len(partial_text)} characters: {problem}"
        )
        return TruncatedStreamError(
            self._redact(message),
            partial_text=partial_text,
            url=self._redact(self.url),
            status_code=200,
            retries=retries,
        )

    def broken_stream_error(
        self, exc: httpx.TransportError, partial_text: str, retries: int
    ) -> TruncatedStreamError:
        """The error for a connection that broke or timed out after output had arrived."""
        problem = f"the connection broke ({_describe(self.scrub(exc))})"
        return self.truncated_error(problem, partial_text, retries)

    def deadline_error(
        self, seconds: float, partial_text: str, retries: int
    ) -> DeadlineExceededError:
        """The error for a call past its overall deadline (``partial_text``: what came)."""
        got = f", after {len(partial_text)} characters" if partial_text else ""
        message = (
            f"No complete answer from {self._where()} within the deadline of {seconds:g} s"
            f"{got}{_gave_up(retries)}: raise it with wb.configure(deadline=...)"
        )
        return DeadlineExceededError(
            self._redact(message),
            partial_text=partial_text,
            url=self._redact(self.url),
            retries=retries,
        )


@dataclass
class Reply:
    """A usable JSON answer and what the result types need besides it."""

    endpoint: Endpoint
    data: dict[str, Any]
    headers: dict[str, str] = field(repr=False)  # a server may echo a key into them
    retries: int


def _content_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.partition(";")[0].strip().lower()


def read_reply(endpoint: Endpoint, response: httpx.Response, retries: int) -> Reply:
    """Check that a 2xx response (body read) is a JSON object without an ``error``."""

    def unusable(problem: str) -> APIResponseError:
        return endpoint.response_error(
            problem, body=response.text, retries=retries, status_code=response.status_code
        )

    content_type = _content_type(response)
    if "json" not in content_type:
        raise unusable(
            f"content type {content_type or '(none)'!r}, not JSON: {_excerpt(response.text)}"
        )
    try:
        data = response.json()
    except ValueError as exc:
        raise unusable(f"the body is not valid JSON ({exc}): {_excerpt(response.text)}") from exc
    if not isinstance(data, dict):
        raise unusable("the body is not a JSON object")
    if data.get("error"):
        raise unusable(f"it holds an error: {server_message(response.text)}")
    return Reply(endpoint, data, lower_headers(response.headers), retries)


def is_event_stream(response: httpx.Response) -> bool:
    return _content_type(response) == "text/event-stream"


def event_stream_error(
    endpoint: Endpoint, response: httpx.Response, retries: int
) -> APIResponseError:
    """The error for a 2xx answer (body read) to a stream request that is not a stream."""
    problem = (
        f"expected text/event-stream, got {_content_type(response) or '(no content type)'!r}: "
        f"{server_message(response.text)}"
    )
    return endpoint.response_error(
        problem, body=response.text, retries=retries, status_code=response.status_code
    )


def unusable_answer(reply: Reply, problem: str) -> APIResponseError:
    """The error for a parsed 2xx answer that cannot become a result."""
    # The parsed body is all we still have; it is re-serialised for the error's body.
    return reply.endpoint.response_error(
        problem, body=json.dumps(reply.data)[:10_000], retries=reply.retries
    )


_unusable = unusable_answer


def _text(content: Any) -> str | None:
    """The text of ``message.content``; None when it is neither text nor content parts."""
    if content is None:
        return ""  # tool calls (or a refusal) come without content
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts, as some servers answer
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return None


def _usage(data: Mapping[str, Any], notes: Notes) -> Usage | None:
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, dict):
        notes.add(f"usage was a {type(usage).__name__}, not an object: ignored")
        return None
    return Usage.from_openai(usage, notes)


def _tool_calls(message: Mapping[str, Any], notes: Notes) -> list[dict[str, Any]]:
    calls = message.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list) or not all(isinstance(call, dict) for call in calls):
        notes.add("message.tool_calls was not a list of objects: stored as empty")
        return []
    return calls


def chat_result(reply: Reply, *, latency_s: float, ttft_s: float | None = None) -> ChatResult:
    """Read a ``chat.completion`` (or one assembled from a stream) into a result.

    An answer without a message, or whose content is neither text nor content parts, is
    unusable (an error row, not an ok row that was charged for nothing). Any other value
    the table cannot hold is dropped with a note in ``notes``.
    """
    data = reply.data
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _unusable(reply, "no choices in the response")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        kind = "missing" if "message" not in choice else "null"
        kind = kind if message is None else kind_of(message)
        raise _unusable(reply, f"choices[0].message is {kind}, not an object")
    text = _text(message.get("content"))
    if text is None:
        kind = kind_of(message["content"])
        raise _unusable(reply, f"choices[0].message.content is {kind}, not text")
    notes = Notes()
    text = notes.text("message.content", text) or ""
    return ChatResult(
        text=text,
        finish_reason=notes.text("finish_reason", choice.get("finish_reason")),
        tool_calls=_tool_calls(message, notes),
        usage=_usage(data, notes),
        model=notes.text("model", data.get("model")),
        system_fingerprint=notes.text("system_fingerprint", data.get("system_fingerprint")),
        id=notes.text("id", data.get("id")),
        latency_s=latency_s,
        ttft_s=ttft_s,
        retries=reply.retries,
        headers=reply.headers,
        raw=data,
        notes=notes.items,
        refusal=notes.text("message.refusal", message.get("refusal")),
        logprobs=_logprobs_content(choice.get("logprobs")),
        service_tier=notes.text("service_tier", data.get("service_tier")),
    )


def _logprobs_content(logprobs: Any) -> list[dict[str, Any]] | None:
    """``choices[0].logprobs.content`` (one entry per token), or None when not asked for."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return None
    return [entry for entry in content if isinstance(entry, dict)]


def _vector(embedding: Any) -> list[float]:
    if isinstance(embedding, str):  # encoding_format="base64": little-endian float32
        packed = base64.b64decode(embedding)
        return list(struct.unpack(f"<{len(packed) // 4}f", packed))
    return [float(x) for x in embedding]


def embedding_result(reply: Reply, *, latency_s: float) -> EmbeddingResult:
    """Read an embeddings answer; vectors come back in input order (by ``index``)."""
    data = reply.data
    items = data.get("data")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _unusable(reply, "no list of embeddings in `data`")
    try:
        ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
        vectors = [_vector(item["embedding"]) for item in ordered]
    except (KeyError, TypeError, ValueError, struct.error) as exc:
        raise _unusable(reply, f"malformed embedding ({type(exc).__name__}: {exc})") from exc
    notes = Notes()
    return EmbeddingResult(
        vectors=vectors,
        model=notes.text("model", data.get("model")),
        usage=_usage(data, notes),
        latency_s=latency_s,
        retries=reply.retries,
        headers=reply.headers,
        raw=data,
        notes=notes.items,
    )


def model_ids(reply: Reply) -> list[str]:
    """The model ids of a ``/models`` answer, in the server's order."""
    items = reply.data.get("data")
    if not isinstance(items, list):
        raise _unusable(reply, "no list of models in `data`")
    return [str(item["id"]) for item in items if isinstance(item, dict) and "id" in item]
