"""Why an answer ended, when that is not "it was done": cut at the token limit
(``finish_reason=length``) or withheld by a content filter. Every view that shows an
answer (the %%chat footer, sweep tables, wb.compare, the Playground) says so the same way,
so a truncated answer is never read as a complete one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["finish_note"]


def finish_note(finish_reason: Any, completion_tokens: Any = None) -> str | None:
    """``cut at 40 tokens``, ``content filtered``, or None for an answer that ended."""
    if finish_reason == "length":
        try:
            return f"cut at {int(completion_tokens)} tokens"
        except (TypeError, ValueError):  # no usage sent, or NaN from a pandas column
            return "cut at the token limit"
    if finish_reason == "content_filter":
        return "content filtered"
    return None
