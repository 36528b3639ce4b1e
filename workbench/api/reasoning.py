"""Reasoning models (OpenAI's o-series and gpt-5 families): the request they accept.

They reject ``max_tokens`` (deprecated for ``max_completion_tokens``) and any temperature
or top_p but the default, 1. Which models reason is read from the name, or from the
provider's ``reasoning``/``reasoning_models`` in ``workbench.toml`` for other names.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError

if TYPE_CHECKING:
    from workbench.api.providers import Provider

__all__ = ["is_reasoning_model", "adapt_for_reasoning", "DEFAULT_SAMPLING"]

# o1, o1-mini, o3-pro, o4-mini-2025-04-16 ...; gpt-5, gpt-5-mini, gpt-5.1 ... but not
# gpt-5-chat-latest, the non-reasoning chat model of that family.
_REASONING_NAME = re.compile(r"^(o\d+(-.+)?|gpt-5(\.\d+)?(-(?!chat).+)?)$")

# What these models accept for the sampling knobs: only their default.
DEFAULT_SAMPLING = {"temperature": 1, "top_p": 1}


def is_reasoning_model(model: str, provider: Provider | None = None) -> bool:
    """True for a reasoning model: named in the provider's ``reasoning_models``, else the
    provider's ``reasoning = true/false``, else by OpenAI's model names."""
    if provider is not None:
        if model in provider.reasoning_models:
            return True
        if provider.reasoning is not None:
            return provider.reasoning
    # Routers name models "openai/o3-mini": the family is in the last part.
    base = model.rsplit("/", 1)[-1].lower()
    return _REASONING_NAME.match(base) is not None


def adapt_for_reasoning(body: dict[str, Any], provider: Provider | None = None) -> dict[str, Any]:
    """``body`` as a reasoning model accepts it: ``max_tokens`` sent as
    ``max_completion_tokens``; a non-default temperature or top_p refused before sending.
    Other models' bodies are returned unchanged."""
    model = str(body.get("model") or "")
    if not is_reasoning_model(model, provider):
        return body
    for knob, default in DEFAULT_SAMPLING.items():
        value = body.get(knob)
        if value is not None and value != default:
            raise InvalidInputError(
                f"{model} is a reasoning model: it accepts only the default {knob} "
                f"({default}), got {value}; leave {knob} out (steer it with "
                "reasoning_effort instead)"
            )
    if body.get("max_tokens") is not None:
        if body.get("max_completion_tokens") is not None:
            raise InvalidInputError(
                f"{model}: give max_tokens or max_completion_tokens, not both"
            )
        adapted = {k: v for k, v in body.items() if k != "max_tokens"}
        adapted["max_completion_tokens"] = body["max_tokens"]
        return adapted
    return body
