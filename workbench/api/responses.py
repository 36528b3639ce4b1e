"""The Responses API (``POST /v1/responses``) without I/O: which API a call uses, its body
made from the chat body every call is built as, and its answer read into a ``ChatResult``.

Every call is described once, as a Chat Completions body (messages, knobs, tools); a call
for the Responses API carries ``"api": "responses"`` in that body (so the API is part of
the run's identity: :func:`workbench.core.identity.request_hash` hashes the body), and
:func:`responses_body` turns it into what ``/v1/responses`` takes just before sending.
Shapes follow openai/openai-openapi's ``CreateResponse`` and ``Response`` schemas.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workbench.api.wire import ChatResult, Reply, unusable_answer
from workbench.core.errors import InvalidInputError
from workbench.core.notes import Notes
from workbench.core.usage import Usage

if TYPE_CHECKING:
    from workbench.api.providers import Provider

__all__ = [
    "API_FIELD", "APIS", "CHAT", "RESPONSES", "RESPONSES_ONLY_MODELS", "SEED_NOTE",
    "choose_api", "responses_body", "responses_result", "responses_usage", "answer_parts",
]

CHAT, RESPONSES = "chat", "responses"
APIS = (CHAT, RESPONSES)
API_FIELD = "api"  # the key of a chat body naming the API it goes to (never sent)

# Served only by /v1/responses (OpenAI's model pages, "Endpoints"): chosen automatically.
# A provider's ``responses_models`` in workbench.toml replaces this list.
RESPONSES_ONLY_MODELS = (
    "o1-pro", "o3-pro", "o3-deep-research", "o4-mini-deep-research", "codex-mini-latest",
    "gpt-5-codex", "gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.1-codex-max",
    "gpt-5-pro", "gpt-5.2-pro", "computer-use-preview",
)

# CreateResponse.max_output_tokens has "minimum": 16 (OpenAI refuses less with a 400).
MIN_OUTPUT_TOKENS = 16

SEED_NOTE = "seed not sent: the Responses API takes none (kept in the table, naming the sample)"

# Chat Completions parameters the Responses API has no counterpart for: refused before
# sending, naming the way out, rather than sent and refused (or silently ignored).
_CHAT_ONLY = ("stop", "presence_penalty", "frequency_penalty", "logit_bias", "n",
              "modalities", "audio", "prediction", "web_search_options", "functions",
              "function_call")
# Sent under another name, or rebuilt from the chat body, below.
_REBUILT = ("model", "messages", "max_tokens", "max_completion_tokens", "reasoning_effort",
            "reasoning_summary", "response_format", "tools", "tool_choice", "seed",
            "stream_options", "logprobs", API_FIELD)


def choose_api(explicit: Any, model: str, provider: Provider | None = None) -> str:
    """The API a call goes to: the one asked for, else the provider's ``api`` setting,
    else Responses for a model served only there, else Chat Completions."""
    if explicit is not None:
        if explicit not in APIS:
            raise InvalidInputError(
                f'api must be "chat" (Chat Completions) or "responses", got {explicit!r}'
            )
        return str(explicit)
    setting = getattr(provider, "api", None)
    if setting is not None:
        return str(setting)
    listed = getattr(provider, "responses_models", None)
    only_there = RESPONSES_ONLY_MODELS if listed is None else listed
    return RESPONSES if model.rsplit("/", 1)[-1] in only_there else CHAT


def responses_body(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The ``CreateResponse`` body for a chat ``body``, and notes on what was not sent.

    System messages before the first other message become ``instructions``; the rest of
    the thread (images, tool calls and their results included) becomes ``input`` items.
    Nothing is kept on the server (``store: false``) unless the body asks for it.
    """
    for name in _CHAT_ONLY:
        if body.get(name) is not None and not (name == "n" and body[name] == 1):
            raise InvalidInputError(
                f"{name} is a Chat Completions parameter the Responses API does not take: "
                'leave it out, or use Chat Completions (api="chat")'
            )
    notes = [SEED_NOTE] if body.get("seed") is not None else []
    instructions, items = _input(body.get("messages") or [])
    sent: dict[str, Any] = {"model": body["model"]}
    if instructions is not None:
        sent["instructions"] = instructions
    sent["input"] = items
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        if limit < MIN_OUTPUT_TOKENS:
            raise InvalidInputError(
                f"max_tokens must be at least {MIN_OUTPUT_TOKENS} on the Responses API (its "
                f'max_output_tokens minimum), got {limit}: raise it, or use api="chat"'
            )
        sent["max_output_tokens"] = limit
    reasoning = dict(body.get("reasoning") or {})
    if body.get("reasoning_effort") is not None:
        reasoning["effort"] = body["reasoning_effort"]
    if body.get("reasoning_summary") is not None:
        reasoning["summary"] = body["reasoning_summary"]
    if reasoning:
        sent["reasoning"] = reasoning
    if body.get("response_format") is not None:
        text = dict(body.get("text") or {})
        text["format"] = _text_format(body["response_format"])
        sent["text"] = text
    if body.get("tools"):
        sent["tools"] = [_function_tool(tool) for tool in body["tools"]]
    if body.get("tool_choice") is not None:
        sent["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("logprobs"):  # each token's log-probability: asked for by `include`
        sent["include"] = [*body.get("include", []), "message.output_text.logprobs"]
    for name, value in body.items():
        if name not in _REBUILT and name not in sent and value is not None:
            sent[name] = value  # temperature, top_p, top_logprobs, store, metadata, ...
    sent.setdefault("store", False)
    return sent, notes


def _input(messages: Sequence[Mapping[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    leading = 0
    while leading < len(messages) and messages[leading].get("role") in ("system", "developer") \
            and isinstance(messages[leading].get("content"), str):
        leading += 1
    instructions = "\n\n".join(str(m["content"]) for m in messages[:leading]) or None
    items: list[dict[str, Any]] = []
    for message in messages[leading:]:
        items.extend(_items(message))
    return instructions, items


def _items(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    role, content = message.get("role"), message.get("content")
    if role == "tool":
        return [{"type": "function_call_output", "call_id": message.get("tool_call_id"),
                 "output": content if isinstance(content, str) else json.dumps(content)}]
    items: list[dict[str, Any]] = []
    if role == "assistant":
        text = content if isinstance(content, str) else _joined_text(content)
        if text:  # an earlier answer, as text; llama.cpp needs its type (400 without)
            items.append({"type": "message", "role": "assistant", "content": text})
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            items.append({"type": "function_call", "call_id": call.get("id"),
                          "name": function.get("name"), "arguments": function.get("arguments")})
        return items
    if isinstance(content, str):
        parts = [{"type": "input_text", "text": content}]
    else:
        parts = [_input_part(part) for part in content or []]
    return [{"type": "message", "role": role, "content": parts}]


def _joined_text(content: Any) -> str:
    parts = content if isinstance(content, list) else []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


def _input_part(part: Mapping[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": part.get("text")}
    if kind == "image_url":
        image = part.get("image_url")
        url, detail = (image.get("url"), image.get("detail")) if isinstance(image, dict) \
            else (image, None)
        # `detail` is required by the spec's InputImageContent; "auto" is the API default.
        return {"type": "input_image", "image_url": url, "detail": detail or "auto"}
    if kind in ("input_text", "input_image", "input_file"):
        return dict(part)  # already in the Responses API's words
    raise InvalidInputError(
        f"a message part of type {kind!r} has no Responses API form here: send it with "
        'Chat Completions (api="chat")'
    )


def _text_format(response_format: Mapping[str, Any]) -> dict[str, Any]:
    if response_format.get("type") == "json_schema":
        # Chat nests the schema under json_schema; the Responses API flattens it.
        return {"type": "json_schema", **dict(response_format.get("json_schema") or {})}
    return dict(response_format)


def _function_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function" or "function" not in tool:
        return dict(tool)  # a Responses API tool given as it is (web_search, ...)
    function = tool["function"]
    return {
        "type": "function",
        "name": function["name"],
        "description": function.get("description"),
        "parameters": function.get("parameters"),
        # Required by the spec; Chat Completions' default is false, the Responses API's
        # true: the chat tool's own value, so the same tools mean the same on both.
        "strict": bool(function.get("strict", False)),
    }


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


# -- the answer ------------------------------------------------------------------------


def responses_usage(usage: Any, notes: Notes) -> Usage | None:
    """The ``ResponseUsage`` object as the table's usage (input -> prompt tokens...)."""
    if not usage:
        return None
    if not isinstance(usage, dict):
        notes.add(f"usage was {type(usage).__name__}, not an object: ignored")
        return None
    prompt = notes.count("usage.input_tokens", usage.get("input_tokens"))
    completion = notes.count("usage.output_tokens", usage.get("output_tokens"))
    inputs = notes.mapping("usage.input_tokens_details", usage.get("input_tokens_details"))
    outputs = notes.mapping("usage.output_tokens_details", usage.get("output_tokens_details"))
    total = notes.count("usage.total_tokens", usage.get("total_tokens"))
    if total is None and prompt is not None:
        total = prompt + (completion or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=notes.count(
            "usage.input_tokens_details.cached_tokens", inputs.get("cached_tokens")
        ),
        reasoning_tokens=notes.count(
            "usage.output_tokens_details.reasoning_tokens", outputs.get("reasoning_tokens")
        ),
        total_tokens=total,
    )


class AnswerParts:
    """What the ``output`` items of a Response hold, by kind."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.summaries: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.logprobs: list[dict[str, Any]] | None = None
        self.unknown: dict[str, int] = {}  # item or part type -> how many

    def note_unknown(self, notes: Notes) -> None:
        if self.unknown:
            counted = ", ".join(f"{n} {kind}" for kind, n in sorted(self.unknown.items()))
            notes.add(f"output items not read, kept in the raw response: {counted}")


def answer_parts(output: Any) -> AnswerParts:
    """Read ``output`` (a list of items); an item of a type not read here is counted."""
    parts = AnswerParts()
    for item in output if isinstance(output, list) else []:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            for part in item.get("content") or []:
                _message_part(part, parts)
        elif kind == "reasoning":
            texts = [s.get("text") for s in item.get("summary") or [] if isinstance(s, dict)]
            parts.summaries.extend(t for t in texts if isinstance(t, str) and t)
        elif kind == "function_call":
            parts.tool_calls.append({
                "id": item.get("call_id"), "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments")},
            })
        else:
            shown = str(kind) if kind is not None else "untyped"
            parts.unknown[shown] = parts.unknown.get(shown, 0) + 1
    return parts


def _message_part(part: Any, parts: AnswerParts) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "output_text" and isinstance(part.get("text"), str):
        parts.text.append(part["text"])
        if isinstance(part.get("logprobs"), list) and part["logprobs"]:
            parts.logprobs = [*(parts.logprobs or []), *part["logprobs"]]
    elif kind == "refusal" and isinstance(part.get("refusal"), str):
        parts.refusal.append(part["refusal"])
    else:
        shown = f"message part {kind if kind is not None else 'untyped'}"
        parts.unknown[shown] = parts.unknown.get(shown, 0) + 1


def finish_reason(data: Mapping[str, Any], parts: AnswerParts, usage: Usage | None,
                  limit: int | None) -> str | None:
    """The chat ``finish_reason`` a Response's status means: ``length`` when cut at the
    token limit, ``tool_calls``, ``content_filter``, else ``stop``."""
    status = data.get("status")
    if status == "incomplete":
        reason = (data.get("incomplete_details") or {}).get("reason")
        return "length" if reason == "max_output_tokens" else str(reason or "incomplete")
    # llama.cpp says "completed" at the limit (seen with max_output_tokens=8): an answer
    # of exactly the limit's tokens is taken as cut, as its chat route says "length".
    if limit is not None and usage is not None and usage.completion_tokens is not None \
            and usage.completion_tokens >= limit and not parts.tool_calls:
        return "length"
    return "tool_calls" if parts.tool_calls else "stop"


def responses_result(reply: Reply, *, latency_s: float, ttft_s: float | None = None,
                     limit: int | None = None, notes_before: Sequence[str] = ()
                     ) -> ChatResult:
    """Read a ``Response`` object (or one assembled from its events) into a result.

    A response that failed or is still running is unusable (an error row); output items
    of other kinds (web searches, ...) stay in ``raw`` and are counted in a note.
    """
    data = reply.data
    status = data.get("status")
    if status == "failed":
        error = data.get("error") or {}
        message = error.get("message") if isinstance(error, dict) else error
        raise unusable_answer(reply, f"the response failed: {message or 'no reason given'}")
    if status in ("queued", "in_progress"):
        raise unusable_answer(reply, f"the response is {status}, not finished (background mode?)")
    if "output" in data and not isinstance(data["output"], list):
        raise unusable_answer(reply, "output is not a list of items")
    notes = Notes()
    for note in notes_before:
        notes.add(note)
    parts = answer_parts(data.get("output"))
    parts.note_unknown(notes)
    usage = responses_usage(data.get("usage"), notes)
    return ChatResult(
        text=notes.text("output_text", "".join(parts.text)) or "",
        finish_reason=finish_reason(data, parts, usage, limit),
        tool_calls=parts.tool_calls,
        usage=usage,
        model=notes.text("model", data.get("model")),
        system_fingerprint=None,
        id=notes.text("id", data.get("id")),
        latency_s=latency_s,
        ttft_s=ttft_s,
        retries=reply.retries,
        headers=reply.headers,
        raw=data,
        notes=notes.items,
        refusal=notes.text("refusal", "".join(parts.refusal) or None),
        logprobs=parts.logprobs,
        service_tier=notes.text("service_tier", data.get("service_tier")),
        reasoning_summary=notes.text("reasoning summary", "\n\n".join(parts.summaries) or None),
    )
