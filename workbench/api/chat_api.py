"""Where a chat body is sent and how its answer is read: Chat Completions, or the
Responses API for a body that names it (``"api": "responses"``, see
:mod:`workbench.api.responses`). The clients ask :func:`chat_route` once per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.api.responses import API_FIELD, RESPONSES, responses_body, responses_result
from workbench.api.responses_stream import ResponsesAccumulator
from workbench.api.stream_events import DeltaAccumulator
from workbench.api.streaming import StreamAccumulator
from workbench.api.wire import ChatResult, Reply, chat_body, chat_result
from workbench.core.errors import APIStatusError, NotFoundError

__all__ = ["ChatRoute", "chat_route"]


@dataclass(frozen=True)
class ChatRoute:
    """One call's path, the body sent there, and how to read its answer."""

    path: str
    body: dict[str, Any]
    responses: bool = False
    notes: tuple[str, ...] = field(default=())  # what the body could not carry (a seed)

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def accumulator(self) -> DeltaAccumulator:
        return ResponsesAccumulator() if self.responses else StreamAccumulator()

    def result(self, reply: Reply, *, latency_s: float, ttft_s: float | None = None
               ) -> ChatResult:
        if not self.responses:
            return chat_result(reply, latency_s=latency_s, ttft_s=ttft_s)
        return responses_result(
            reply, latency_s=latency_s, ttft_s=ttft_s,
            limit=self.body.get("max_output_tokens"), notes_before=self.notes,
        )

    def not_found(self, exc: APIStatusError) -> APIStatusError:
        """A 404 from ``/responses`` as one line saying what to do (others unchanged)."""
        if not self.responses or not isinstance(exc, NotFoundError):
            return exc
        message = (
            f"{exc} — if this server has no Responses API (POST /responses), use Chat "
            'Completions: api="chat" (%%chat --api chat)'
        )
        return NotFoundError(message, url=exc.url, status_code=exc.status_code,
                             body=exc.body, retries=exc.retries)


def chat_route(body: Mapping[str, Any]) -> ChatRoute:
    """The route of a chat ``body`` as the workbench builds it."""
    if body.get(API_FIELD) == RESPONSES:
        sent, notes = responses_body(body)
        return ChatRoute("/responses", sent, responses=True, notes=tuple(notes))
    chat = {k: v for k, v in body.items() if k != API_FIELD}
    return ChatRoute("/chat/completions", chat_body(chat))
