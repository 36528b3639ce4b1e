"""A run's identity: the canonical JSON of what was asked, where, plus its sample index.

Two calls with the same identity are the same run, so the second can be answered from
the experiment table (replay) instead of the API. The API a chat call goes to is part of
what was asked: a Responses API call's body carries ``"api": "responses"`` (never sent,
see ``workbench.api.responses``), so it is a different run from the same Chat Completions
call, whose body (and so every earlier hash) has no such key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_json", "request_hash", "STREAM_ONLY_KEYS"]

# How an answer is delivered does not change what was asked: a streamed call and a
# plain one with the same body are the same run.
STREAM_ONLY_KEYS = frozenset({"stream", "stream_options"})


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal requests give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(provider: str, body: Mapping[str, Any]) -> str:
    """sha256 of the provider (its ``Provider.identity``: the server it reaches, for an
    OPENAI_BASE_URL) and the request body minus delivery-only keys."""
    asked = {k: v for k, v in body.items() if k not in STREAM_ONLY_KEYS}
    text = canonical_json({"provider": provider, "body": asked})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
