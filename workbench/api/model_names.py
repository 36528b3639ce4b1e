"""Which model names the local model answers to, which are hosted models, and the one
line that refuses any other name sent to the local model (``providers.route`` asks).

The embedded llama.cpp server answers whatever model name it is sent, so a hosted
model's name in a notebook opened without a key, or a typo, would silently be answered
by the 135M local model under the name that was asked for.
"""

from __future__ import annotations

import functools
import re

from workbench.api.local import CHAT_MODEL_ALIAS, EMBEDDING_MODEL_ALIAS
from workbench.core.names import closest_name

__all__ = ["LOCAL_MODELS", "is_hosted_model", "local_name_refusal", "set_key_hint"]

LOCAL_MODELS = {CHAT_MODEL_ALIAS: "chat", EMBEDDING_MODEL_ALIAS: "embedding"}

# Names of OpenAI's model families, for models newer than the bundled price table.
_OPENAI_FAMILIES = re.compile(
    r"(?:gpt-|chatgpt-|o[1-9](?:-|$)|text-embedding-|davinci|babbage|omni-moderation|"
    r"codex-|computer-use-)"
)


def set_key_hint(variable: str = "OPENAI_API_KEY") -> str:
    """How to set a key, in parentheses. The placeholder is not key-shaped: an example
    like ``sk-...`` is masked into ``[redacted]`` by the redaction of every message."""
    return (
        f"(export {variable}=YOUR_KEY before starting Jupyter, or in a cell: import os, "
        f'getpass; os.environ["{variable}"] = getpass.getpass())'
    )


@functools.lru_cache(maxsize=1024)
def is_hosted_model(name: str) -> bool:
    """Whether ``name`` is a hosted provider's model: priced in genai-prices (OpenAI's
    table first: its embedding models are found only under it) or an OpenAI family."""
    if _OPENAI_FAMILIES.match(name.lower()):
        return True
    from genai_prices import Usage as PricesUsage  # deferred: keeps import workbench light (~0.2 s)
    from genai_prices import calc_price  # deferred: keeps import workbench light (~0.2 s)

    for provider_id in ("openai", None):
        try:
            calc_price(PricesUsage(input_tokens=1, output_tokens=1), name, provider_id=provider_id)
        except LookupError:
            continue
        return True
    return False


def local_name_refusal(name: str, kind: str | None, *, fell_back: bool) -> tuple[str, bool]:
    """Why the local model cannot be sent ``name`` (not one of its own), as one line
    naming the fix, and whether ``name`` is a hosted model's. ``fell_back``: the local
    model was chosen because no OPENAI_API_KEY / OPENAI_BASE_URL is set."""
    if kind is None:
        kind = "embedding" if "embed" in name.lower() else "chat"
    local_name = CHAT_MODEL_ALIAS if kind == "chat" else EMBEDDING_MODEL_ALIAS
    use_local = f'use the local model by its name (model="{local_name}")'
    if is_hosted_model(name):
        if fell_back:
            return (
                f"{name!r} is a hosted model and no OPENAI_API_KEY is set (without one, "
                f"calls go to the local model): set the key {set_key_hint()}, or {use_local}"
            ), True
        return (
            f"{name!r} is a hosted model, and the local provider serves only "
            f"{CHAT_MODEL_ALIAS} (chat) and {EMBEDDING_MODEL_ALIAS} (embeddings): "
            f"{use_local}, or name another provider"
        ), True
    hint = closest_name(name, [n for n, k in LOCAL_MODELS.items() if k == kind])
    hint = hint or closest_name(name, list(LOCAL_MODELS))
    if hint is not None:
        what = f" Did you mean {hint!r}?"
    else:
        what = f" Its models: {CHAT_MODEL_ALIAS} (chat), {EMBEDDING_MODEL_ALIAS} (embeddings)."
    why = " (No OPENAI_API_KEY or OPENAI_BASE_URL is set, so calls go to it.)" if fell_back else ""
    return f"Unknown model {name!r} for provider 'local'.{what}{why}", False
