"""What the two stream readers share: one SSE event's ``data`` parsed into a dict, the
answer's text and refusal deltas, whether output has reached the caller, and the end.

:class:`~workbench.api.streaming.StreamAccumulator` (Chat Completions chunks) and
:class:`~workbench.api.responses_stream.ResponsesAccumulator` (Responses API events)
each map only their own wire events onto this state; the stream attempt
(:class:`~workbench.api.streaming.StreamAttempt`) reads it the same way for both.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from workbench.api.wire import ChatResult, Reply

__all__ = ["DONE", "DeltaAccumulator", "StreamProtocolError", "StreamRoute", "error_message"]

DONE = "[DONE]"


class StreamProtocolError(ValueError):
    """An event we cannot use; the client turns it into a ``TruncatedStreamError``."""


def error_message(error: Any) -> Any:
    """The message of an ``error`` field: an object's ``message``, else the value itself."""
    return error.get("message") if isinstance(error, dict) else error


class DeltaAccumulator:
    """The state every stream reader fills: text and refusal pieces, ``has_output`` and
    ``done``. A subclass maps one parsed event in :meth:`feed` and assembles the
    non-streamed answer in :meth:`completion`."""

    end_words = DONE  # what a stream cut short never sent
    event_word = "event"  # how an unusable event is named in the error ("chunk" for chat)

    def __init__(self) -> None:
        self.text_parts: list[str] = []
        self.refusal_parts: list[str] = []
        self.done = False
        # True from the first output delta: from then on the caller has seen output, so
        # the stream must not be retried, and ttft is measured to here.
        self.has_output = False

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def feed_data(self, data: str) -> str:
        """Feed one SSE event's ``data``; return its text delta ("" if none)."""
        stripped = data.strip()
        if stripped == DONE:
            self.done = True
            return ""
        if not stripped:
            return ""  # a data-less event (e.g. ``event: ping``) carries nothing
        try:
            event = json.loads(data)
        except json.JSONDecodeError as exc:
            raise StreamProtocolError(f"malformed event JSON ({exc}): {data[:200]!r}") from exc
        if not isinstance(event, dict):
            raise StreamProtocolError(f"event is not a JSON object: {data[:200]!r}")
        try:
            return self.feed(event)
        except StreamProtocolError:
            raise  # already says what was wrong (an error event, a failed response)
        except (AttributeError, TypeError, ValueError) as exc:  # ValueError: int("a")
            raise StreamProtocolError(
                f"unexpected {self.event_word} shape ({exc}): {data[:200]!r}"
            ) from exc

    def feed(self, event: dict[str, Any]) -> str:
        """Feed one parsed event; return its text delta ("" if none)."""
        raise NotImplementedError

    def completion(self) -> dict[str, Any]:
        """The assembled answer, shaped as a non-streamed call would have returned it."""
        raise NotImplementedError

    def add_text(self, delta: str) -> str:
        """Keep a text delta (an empty one is not output); return it."""
        if delta:
            self.text_parts.append(delta)
            self.has_output = True
        return delta

    def add_refusal(self, delta: str) -> None:
        """Keep a refusal delta: a refusal streams in pieces, like text, and is output."""
        self.refusal_parts.append(delta)
        self.has_output = True

    @staticmethod
    def server_error(message: Any) -> StreamProtocolError:
        """The error for an error event the server sent mid-stream."""
        return StreamProtocolError(f"the server sent an error event: {message}")


class StreamRoute(Protocol):
    """What a stream attempt asks of the call's route (:class:`~.chat_api.ChatRoute`):
    which reader its events need and how the assembled answer is read. A protocol here,
    so the stream reader need not import the route that chooses it."""

    def accumulator(self) -> DeltaAccumulator: ...

    def result(
        self, reply: Reply, *, latency_s: float, ttft_s: float | None = None
    ) -> ChatResult: ...
