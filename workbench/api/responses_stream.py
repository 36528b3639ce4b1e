"""Assembling a streamed Responses API answer from its typed events
(``response.output_text.delta``, ``response.refusal.delta``,
``response.reasoning_summary_text.delta``, ``response.completed``, ``error``, ...).

The stream ends with ``response.completed``, ``response.incomplete`` or
``response.failed`` (no ``data: [DONE]``, neither on OpenAI nor on llama.cpp); the
accumulator then holds the ``Response`` object a non-streamed call would have returned.
"""

from __future__ import annotations

from typing import Any

from workbench.api.stream_events import DeltaAccumulator, StreamProtocolError, error_message

__all__ = ["ResponsesAccumulator", "END_EVENTS"]

END_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class ResponsesAccumulator(DeltaAccumulator):
    """Collects the text, refusal, summaries and output items of one response's events."""

    end_words = "response.completed"  # what a stream cut short never sent

    def __init__(self) -> None:
        super().__init__()
        self.summary_parts: dict[tuple[Any, Any], list[str]] = {}
        self.items: dict[int, dict[str, Any]] = {}  # output_index -> finished item
        self.response: dict[str, Any] = {}  # the latest Response object an event carried

    def feed(self, event: dict[str, Any]) -> str:
        kind = event.get("type")
        if kind == "error":  # ResponseErrorEvent: {code, message, param}
            raise self.server_error(event.get("message"))
        if isinstance(event.get("response"), dict):
            self.response = event["response"]
        if kind == "response.failed":
            message = error_message(self.response.get("error") or {})
            raise StreamProtocolError(f"the response failed: {message or 'no reason given'}")
        if kind in END_EVENTS:
            self.done = True
        elif kind == "response.output_text.delta":
            return self.add_text(str(event.get("delta") or ""))
        elif kind == "response.refusal.delta":
            self.add_refusal(str(event.get("delta") or ""))
        elif kind == "response.reasoning_summary_text.delta":
            key = (event.get("item_id"), event.get("summary_index"))
            self.summary_parts.setdefault(key, []).append(str(event.get("delta") or ""))
        elif kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            index = event.get("output_index")
            self.items[int(index) if index is not None else len(self.items)] = event["item"]
            if event["item"].get("type") == "function_call":
                self.has_output = True
        return ""

    def completion(self) -> dict[str, Any]:
        """The assembled ``Response``: the final event's, with ``output`` rebuilt from the
        events when the server's final object left it out."""
        response = dict(self.response)
        if not response.get("output"):
            response["output"] = self._output()
        response.setdefault("object", "response")
        return response

    def _output(self) -> list[dict[str, Any]]:
        if self.items:
            return [self.items[index] for index in sorted(self.items)]
        output: list[dict[str, Any]] = []
        summaries = ["".join(parts) for parts in self.summary_parts.values()]
        if summaries:
            output.append({"type": "reasoning", "summary": [
                {"type": "summary_text", "text": text} for text in summaries]})
        content = [{"type": "output_text", "text": self.text, "annotations": []}]
        if self.refusal_parts:
            content.append({"type": "refusal", "refusal": "".join(self.refusal_parts)})
        output.append({"type": "message", "role": "assistant", "content": content})
        return output
