"""The ``notes`` column: reply values the table cannot hold, and what was kept instead.

A server may answer with anything (a token count of 10**20, NaN, a number as ``model``,
a list as ``system_fingerprint``). Each value is fitted once, where the reply becomes a
result, so nothing after that can crash on it; what had to be dropped is noted, not hidden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["Notes", "fit_text", "kind_of", "SQLITE_MAX_INT"]

SQLITE_MAX_INT = 2**63 - 1  # the largest INTEGER a SQLite column can hold


def kind_of(value: Any) -> str:
    """What a JSON value is, as a message says it: "a number", "an object", "a list"..."""
    names = {
        dict: "an object",
        list: "a list",
        bool: "a boolean",
        str: "text",
        int: "a number",
        float: "a number",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def fit_text(text: str) -> tuple[str, bool]:
    """``text`` as UTF-8 can hold it, and whether it had to change.

    JSON may carry lone UTF-16 surrogates (``"\\ud83d"``, half an emoji split between
    two stream chunks); SQLite and Jupyter refuse them. A split pair is joined again,
    a lone half becomes U+FFFD.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return joined, True
    return text, False


class Notes:
    """Fits reply values to their columns and collects one note per value dropped."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, note: str) -> None:
        self.items.append(note)

    def text(self, name: str, value: Any) -> str | None:
        """A text field: a string (made UTF-8 safe) or None; anything else is dropped."""
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(f"{name} was {kind_of(value)}, not text: stored as empty")
            return None
        fitted, changed = fit_text(value)
        if changed:
            self.add(f"{name} held UTF-16 surrogates: stored as UTF-8 (U+FFFD if unpaired)")
        return fitted

    def count(self, name: str, value: Any) -> int | None:
        """A token count: a whole number from 0 to SQLite's largest integer, else None."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(f"{name} was {kind_of(value)}, not a number: stored as empty")
            return None
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            self.add(f"{name} was {value!r}, not a whole number: stored as empty")
            return None
        number = int(value)
        if number < 0:
            self.add(f"{name} was negative ({number}): stored as empty")
            return None
        if number > SQLITE_MAX_INT:
            self.add(f"{name} was {number}, too large to store: stored as empty")
            return None
        return number

    def mapping(self, name: str, value: Any) -> Mapping[str, Any]:
        """A nested object such as ``usage.prompt_tokens_details``; anything else is empty."""
        if value is None or isinstance(value, Mapping):
            return value or {}
        self.add(f"{name} was {kind_of(value)}, not an object: ignored")
        return {}

    def joined(self) -> str | None:
        """The column's value: the notes in order, or None when there are none."""
        return "; ".join(self.items) or None
