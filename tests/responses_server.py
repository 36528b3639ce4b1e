"""A Responses API (``POST /v1/responses``) played by tests/loopback.py, built from the
official OpenAPI spec kept in tests/data/openai_responses_spec.json.

Every ``Response`` object and stream event this fake sends is first validated against
the spec's own ``Response`` / ``ResponseStreamEvent`` schemas, and :func:`check_request`
validates what the workbench sends against ``CreateResponse``: the fake cannot drift
from the documentation without a test failing.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from loopback import Received, Reply

SPEC_FILE = Path(__file__).parent / "data" / "openai_responses_spec.json"


@functools.cache
def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_FILE.read_text())
    return data


def _any_of(value: Any) -> Any:
    if isinstance(value, dict):
        return {("anyOf" if k == "oneOf" else k): _any_of(v) for k, v in value.items()}
    return [_any_of(v) for v in value] if isinstance(value, list) else value


@functools.cache
def validator(schema: str) -> Draft202012Validator:
    """The spec's ``schema``, with each ``oneOf`` read as ``anyOf``: its lists overlap
    (a user message with content parts matches both EasyInputMessage and InputMessage, so
    the spec's own "Image input" example fails a strict oneOf), and the ``discriminator``
    on ``type`` cannot tell those two apart either (both are "message")."""
    document = {"$ref": f"#/components/schemas/{schema}", "components": spec()["components"]}
    return Draft202012Validator(_any_of(document))


def problems(schema: str, value: Any) -> list[str]:
    """Why ``value`` is not a valid ``schema`` of the spec (empty: it is)."""
    found = []
    for error in validator(schema).iter_errors(value):
        deepest = max(error.context or [error], key=lambda e: len(list(e.absolute_path)))
        found.append(f"{list(error.absolute_path)}: {deepest.message[:200]}")
    return found


def check_request(body: Any) -> None:
    assert not problems("CreateResponse", body), (problems("CreateResponse", body), body)


def example_requests() -> dict[str, dict[str, Any]]:
    """The spec's example request bodies (from its curl commands), by title."""
    bodies = {}
    for example in spec()["examples"]:
        match = re.search(r"-d '(.*)'", example["curl"], re.S)
        assert match is not None
        bodies[example["title"]] = json.loads(match.group(1))
    return bodies


def message(text: str = "", *, refusal: str | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if refusal is not None:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": content}


def reasoning(*summaries: str) -> dict[str, Any]:
    return {"id": "rs_1", "type": "reasoning",
            "summary": [{"type": "summary_text", "text": s} for s in summaries]}


def function_call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": f"fc_{call_id}", "type": "function_call", "call_id": call_id, "name": name,
            "arguments": arguments, "status": "completed"}


def usage(input_tokens: int = 19, output_tokens: int = 10, *, cached: int = 3,
          reasoning_tokens: int = 0) -> dict[str, Any]:
    details = {"cached_tokens": cached, "cache_write_tokens": 0}
    return {"input_tokens": input_tokens, "input_tokens_details": details,
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output_tokens}


def response(output: list[dict[str, Any]], *, model: str = "gpt-4o-mini-2024-07-18",
             status: str = "completed", incomplete: str | None = None,
             used: dict[str, Any] | None = None, error: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """A ``Response`` object as the spec's schema has it (checked here)."""
    made = {
        "id": "resp_1", "object": "response", "created_at": 1_741_476_542, "status": status,
        "error": error, "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": None, "model": model, "output": output, "parallel_tool_calls": True,
        "metadata": {}, "tool_choice": "auto", "tools": [], "temperature": 1.0, "top_p": 1.0,
        "usage": used if used is not None else usage(), "store": False,
    }
    assert not problems("Response", made), problems("Response", made)
    return made


def events(answer: dict[str, Any], *, cut_after: int | None = None,
           error: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``answer`` as the typed events the spec documents, text in pieces of 4 characters.

    ``cut_after``: stop after that many text deltas and send ``error`` (an ``error`` event
    when it has ``code``, else ``response.failed`` with it as the response's error).
    """
    sent: list[dict[str, Any]] = []
    start = {k: v for k, v in answer.items() if k != "usage"}  # usage: an object, or absent
    start.update(status="in_progress", output=[])
    sent.append({"type": "response.created", "response": start})
    deltas = 0
    for index, item in enumerate(answer["output"]):
        sent.append({"type": "response.output_item.added", "output_index": index,
                     "item": {**item, "status": "in_progress"} if "status" in item else item})
        if item["type"] == "reasoning":
            for s_index, summary in enumerate(item["summary"]):
                sent.append({"type": "response.reasoning_summary_text.delta",
                             "item_id": item["id"], "output_index": index,
                             "summary_index": s_index, "delta": summary["text"]})
        for c_index, part in enumerate(item.get("content") or []):
            kind = "output_text" if part["type"] == "output_text" else "refusal"
            whole = part["text"] if kind == "output_text" else part["refusal"]
            for at in range(0, len(whole), 4):
                delta = {"type": f"response.{kind}.delta", "item_id": item["id"],
                         "output_index": index, "content_index": c_index,
                         "delta": whole[at:at + 4]}
                if kind == "output_text":
                    delta["logprobs"] = []
                sent.append(delta)
                deltas += 1
                if cut_after is not None and deltas >= cut_after:
                    return _numbered([*sent, _failure(answer, error or {})])
        if item["type"] == "function_call":
            sent.append({"type": "response.function_call_arguments.delta",
                         "item_id": item["id"], "output_index": index,
                         "delta": item["arguments"]})
        sent.append({"type": "response.output_item.done", "output_index": index, "item": item})
    end = "response.completed" if answer["status"] == "completed" else "response.incomplete"
    sent.append({"type": end, "response": answer})
    return _numbered(sent)


def _failure(answer: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    if "code" in error and "param" in error:
        return {"type": "error", **error}
    failed = {**answer, "status": "failed", "error": error}
    return {"type": "response.failed", "response": failed}


def _numbered(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for number, event in enumerate(sent):
        event["sequence_number"] = number
        assert not problems("ResponseStreamEvent", event), problems("ResponseStreamEvent", event)
    return sent


def sse(sent: list[dict[str, Any]]) -> Reply:
    """The events as OpenAI sends them: ``event: TYPE`` and ``data: JSON``, no [DONE]."""
    text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in sent)
    return Reply(body=text.encode(), headers={"content-type": "text/event-stream"})


def serving(make: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Received], Reply]:
    """A handler answering /responses with ``make(body)`` (streamed when asked), after
    checking the body against ``CreateResponse`` (a 400 naming what is wrong if not);
    /models lists gpt-4o-mini; 404 for any other path."""

    def handle(request: Received) -> Reply:
        if request.path.endswith("/models"):
            return Reply(body={"object": "list", "data": [{"id": "gpt-4o-mini"}]})
        if not request.path.endswith("/responses"):
            return Reply(404, {"error": {"message": "Not found", "type": "invalid_request_error"}})
        wrong = problems("CreateResponse", request.body)
        if wrong:
            return Reply(400, {"error": {"message": f"not a CreateResponse: {wrong}"}})
        answer = make(request.body)
        return sse(events(answer)) if request.body.get("stream") else Reply(body=answer)

    return handle
