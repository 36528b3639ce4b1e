"""Token usage of one call, as reported by the server or counted locally.

A small value object (after simonw/llm's ``Usage``) filled once, at the client boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Usage"]


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    # True when the numbers were counted locally with tiktoken because the server sent
    # no `usage`; the run record keeps this so nobody mistakes an estimate for a bill.
    counted: bool = False

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> Usage | None:
        """Read an OpenAI-style ``usage`` object; ``None`` when the server sent none."""
        if not usage:
            return None
        prompt = _int_or_none(usage.get("prompt_tokens"))
        completion = _int_or_none(usage.get("completion_tokens"))
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        total = _int_or_none(usage.get("total_tokens"))
        if total is None and prompt is not None:
            total = prompt + (completion or 0)
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=_int_or_none(prompt_details.get("cached_tokens")),
            reasoning_tokens=_int_or_none(completion_details.get("reasoning_tokens")),
            total_tokens=total,
        )
