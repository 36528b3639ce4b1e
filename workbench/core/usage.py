"""Token usage of one call, as reported by the server or counted locally.

A small value object (after simonw/llm's ``Usage``) filled once, at the client boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.core.notes import Notes

__all__ = ["Usage"]


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
    def from_openai(
        cls, usage: Mapping[str, Any] | None, notes: Notes | None = None
    ) -> Usage | None:
        """Read an OpenAI-style ``usage`` object; ``None`` when the server sent none.

        A count that is not a whole number from 0 to SQLite's largest integer (NaN, -5,
        10**20, "12") becomes None, with a note in ``notes``: never an exception.
        """
        if not usage:
            return None
        notes = notes if notes is not None else Notes()
        prompt = notes.count("usage.prompt_tokens", usage.get("prompt_tokens"))
        completion = notes.count("usage.completion_tokens", usage.get("completion_tokens"))
        prompt_details = notes.mapping(
            "usage.prompt_tokens_details", usage.get("prompt_tokens_details")
        )
        completion_details = notes.mapping(
            "usage.completion_tokens_details", usage.get("completion_tokens_details")
        )
        total = notes.count("usage.total_tokens", usage.get("total_tokens"))
        if usage.get("total_tokens") is None and prompt is not None:
            total = notes.count("usage.total_tokens", prompt + (completion or 0))
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=notes.count(
                "usage.prompt_tokens_details.cached_tokens", prompt_details.get("cached_tokens")
            ),
            reasoning_tokens=notes.count(
                "usage.completion_tokens_details.reasoning_tokens",
                completion_details.get("reasoning_tokens"),
            ),
            total_tokens=total,
        )
