"""A chat call made ready to send, sending nothing: the request body and the row it will
become; and a replay, the row of an identical earlier run answered from the table."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.api import providers as providers_mod
from workbench.api.jsonmode import with_json_instruction
from workbench.api.reasoning import adapt_for_reasoning
from workbench.api.responses import API_FIELD, RESPONSES, choose_api, responses_body
from workbench.core import checks
from workbench.core.errors import InvalidInputError
from workbench.core.identity import request_hash
from workbench.core.record import RunRecord

__all__ = [
    "PreparedChat", "Message", "check_chat_input", "build_chat", "replay_into",
    "check_on_delta", "collecting", "deadline_or_none",
]

Message = dict[str, Any]

# What a replay copies from the earlier run's row; cost and latency are its own (0).
_REPLAYED = (
    "response_model", "output", "finish_reason", "tool_calls", "prompt_tokens",
    "completion_tokens", "cached_tokens", "reasoning_tokens", "total_tokens",
    "tokens_counted", "system_fingerprint", "notes", "refusal", "logprobs", "service_tier",
    "reasoning_summary",
)


@dataclass
class PreparedChat:
    """A chat call ready to send: where, what, and the row it will become."""

    provider: providers_mod.Provider
    body: dict[str, Any]
    record: RunRecord


def check_chat_input(
    prompt: Any, names: Mapping[str, Any], stream: Any, params: dict[str, Any]
) -> dict[str, Any]:
    """Checked before anything is sent: a knob of the wrong type would otherwise be sent
    (and billed) and only then fail to be stored, losing the run's row."""
    if not isinstance(prompt, str) and not (
        isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt)
    ):
        raise checks.InvalidInputError(
            "the prompt must be text or a list of message dicts "
            f"({{'role': ..., 'content': ...}}), got {type(prompt).__name__}"
        )
    for name, value in names.items():
        checks.text(name, value)
    checks.flag("stream", stream)
    return checks.chat_knobs(params)


def build_chat(
    prompt: str | Sequence[Message],
    *,
    provider: providers_mod.Provider,
    model: str,
    experiment: str,
    system: str | None = None,
    history: Sequence[Message] = (),
    stream: bool = False,
    sweep_id: str | None = None,
    sample_index: int = 0,
    template: str | None = None,
    variables: Mapping[str, Any] | None = None,
    params: Mapping[str, Any],
) -> PreparedChat:
    """The body and row of one chat call to ``model`` at ``provider`` (both resolved)."""
    messages: list[Message] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.extend(dict(m) for m in history)
    if isinstance(prompt, str):
        messages.append({"role": "user", "content": prompt})
        prompt_text: str | None = prompt
    else:
        messages.extend(dict(m) for m in prompt)
        prompt_text = _last_user_text(messages)
    checks.messages_sendable(messages)
    sent = {k: v for k, v in params.items() if v is not None}
    api = choose_api(sent.pop(API_FIELD, None), model, provider)
    if api != RESPONSES and sent.get("reasoning_summary") is not None:
        raise checks.InvalidInputError(
            'reasoning_summary is a Responses API knob: add api="responses" to send it'
        )
    messages = with_json_instruction(messages, sent.get("response_format"))
    body: dict[str, Any] = {"model": model, "messages": messages, **sent}
    body = adapt_for_reasoning(body, provider)  # max_completion_tokens; refuses temperature
    if api == RESPONSES:
        # In the body, so the API is part of the run's identity (request_hash below);
        # never sent. A knob the Responses API cannot take is refused here, unsent.
        body[API_FIELD] = RESPONSES
        responses_body(body)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    record = RunRecord(
        kind="chat",
        provider=provider.identity,
        model=model,
        experiment=experiment,
        sweep_id=sweep_id,
        params=json.dumps({k: v for k, v in body.items() if k not in ("messages", API_FIELD)}),
        system=system,
        prompt=prompt_text,
        messages=json.dumps(messages),
        template=template,
        variables=json.dumps(dict(variables), default=str) if variables else None,
        request_hash=request_hash(provider.identity, body),
        sample_index=sample_index,
        temperature=sent.get("temperature"),
        top_p=sent.get("top_p"),
        seed=sent.get("seed"),
        # The bound on the answer, whichever name it is sent under.
        max_tokens=sent.get("max_tokens", sent.get("max_completion_tokens")),
        api=api,
    )
    return PreparedChat(provider=provider, body=body, record=record)


def replay_into(record: RunRecord, hit: RunRecord) -> RunRecord:
    """``record`` answered by ``hit``, an ok run with the same identity."""
    for name in _REPLAYED:
        setattr(record, name, getattr(hit, name))
    # A replay costs nothing and takes no API time; the original row keeps both. Its
    # latency is "not measured" (None), not 0 s: a 0 would pull a latency mean down, and a
    # copy of the original's would count that call's time twice.
    record.cost_usd = 0.0
    record.price_source = "cache"
    record.latency_s = None
    record.cache_hit = True
    return record


def _last_user_text(messages: Sequence[Message]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                # Text parts only: image parts would add empty lines to the prompt column.
                parts = [p["text"] for p in content if isinstance(p, dict) and "text" in p]
                return "\n".join(str(t) for t in parts)
    return None


def check_on_delta(on_delta: Any) -> None:
    # Called with the first streamed text: a wrong value would fail after the call is paid.
    if on_delta is not None and not callable(on_delta):
        raise InvalidInputError(
            f"on_delta must be a function taking the text of each chunk, got "
            f"{type(on_delta).__name__}"
        )


def collecting(
    on_delta: Callable[[str], None] | None,
) -> tuple[list[str], Callable[[str], None]]:
    """The deltas of a stream as they arrive, kept before the caller's ``on_delta`` sees
    them: what an interrupt (even one raised in ``on_delta``) leaves of the answer."""
    received: list[str] = []

    def collect(delta: str) -> None:
        received.append(delta)
        if on_delta is not None:
            on_delta(delta)

    return received, collect


def deadline_or_none(deadline: float | None) -> float | None:
    """A call's own deadline, checked before anything is sent (None: the session's)."""
    return None if deadline is None else checks.seconds("deadline", deadline)
