"""Which known name a misspelled one most likely meant: the "did you mean" of every
message about an unknown option, model or provider."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest_name"]


def _closeness(name: str, candidate: str) -> float:
    # A short name is often the start of a long id ("smolm2" for "smollm2-135m-instruct",
    # "--dims" for "--dimensions") or a part of it ("minilm"), which difflib's
    # whole-string ratio scores at 0.4-0.6, as low as unrelated words ("--format" and
    # "--repeat" score 0.62).
    if len(name) >= 4 and name in candidate:
        return 0.9
    whole = difflib.SequenceMatcher(None, name, candidate).ratio()
    start = difflib.SequenceMatcher(None, name, candidate[: len(name) + 1]).ratio()
    return max(whole, start)


def closest_name(name: str, candidates: Iterable[str], cutoff: float = 0.7) -> str | None:
    """The candidate a misspelled ``name`` most likely meant, or None when none is close."""
    scored = [(_closeness(name.lower(), c.lower()), c) for c in candidates]
    best = max(scored, default=(0.0, ""))
    return best[1] if best[0] >= cutoff else None
