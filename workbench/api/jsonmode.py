"""JSON answers: the instruction ``json_object`` needs, and a valid ``json_schema`` name.

The API refuses ``response_format: {"type": "json_object"}`` (HTTP 400) unless some
message contains the word "JSON"; ``json_schema.name`` must match ``[a-zA-Z0-9_-]{1,64}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.core.checks import message_texts

__all__ = [
    "JSON_INSTRUCTION",
    "with_json_instruction",
    "has_json_instruction",
    "schema_name",
]

JSON_INSTRUCTION = "Answer with a single JSON object."
_INSTRUCTION_MESSAGE = {"role": "system", "content": JSON_INSTRUCTION}
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_-]+")
_NAME_LIMIT = 64


def _mentions_json(messages: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        "json" in text.lower()
        for message in messages
        for text in message_texts(message.get("content"))
    )


def with_json_instruction(
    messages: list[dict[str, Any]], response_format: Any
) -> list[dict[str, Any]]:
    """``messages``, with a short system instruction first when ``json_object`` is asked
    for and no message mentions JSON (any case), so the API does not refuse the call."""
    wants_object = isinstance(response_format, Mapping) and (
        response_format.get("type") == "json_object"
    )
    if not wants_object or _mentions_json(messages):
        return messages
    return [dict(_INSTRUCTION_MESSAGE), *messages]


def has_json_instruction(messages_json: str | None) -> bool:
    """Whether a row's messages (JSON text) hold the instruction added above."""
    if not messages_json or JSON_INSTRUCTION not in messages_json:
        return False
    try:
        messages = json.loads(messages_json)
    except ValueError:
        return False
    return isinstance(messages, list) and _INSTRUCTION_MESSAGE in messages


def schema_name(name: str) -> str:
    """``name`` as a valid ``json_schema.name``: other characters become ``_``, at most
    64 characters, ``schema`` when nothing is left."""
    cleaned = _NOT_IN_NAME.sub("_", name).strip("_")[:_NAME_LIMIT]
    return cleaned or "schema"
