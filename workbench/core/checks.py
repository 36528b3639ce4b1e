"""Checks of what a caller passed, made before anything is sent or written.

Each failure is one :class:`~workbench.core.errors.InvalidInputError` line naming the argument,
what it must be and what it was; values that pass are returned unchanged (numpy's
scalars become Python numbers), so a check never alters a request's identity (``0`` and
``0.0`` hash differently). The request knobs' ranges are in :mod:`workbench.core.knobs`.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from workbench.core.errors import InvalidInputError
from workbench.core.knobs import Knob, checked

__all__ = [
    "InvalidInputError",
    "number",
    "whole",
    "amount",
    "seconds",
    "choice",
    "sendable",
    "messages_sendable",
    "chat_knobs",
    "text",
    "flag",
]

_SURROGATE = re.compile("[\ud800-\udfff]")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def number(name: str, value: Any, *, low: float | None = None, high: float | None = None) -> Any:
    """A finite real number (not a bool, not a string), within [low, high] when given."""
    if not Knob(name, "number", low, high).accepts(value):  # the knob table's one rule
        kind = _range("a number", low, high)
        raise InvalidInputError(f"{name} must be {kind}, got {_shown(value)}")
    return value


def whole(name: str, value: Any, *, low: int | None = None) -> Any:
    """A whole number (an int, numpy's too; not a bool or a float), at least ``low``."""
    if not Knob(name, "whole", low).accepts(value):
        raise InvalidInputError(
            f"{name} must be {_range('a whole number', low, None)}, got {_shown(value)}"
        )
    return value


def amount(name: str, value: Any) -> Decimal:
    """Dollars: a finite, non-negative number (int, float, Decimal or numeric text)."""
    try:
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal, str)):
            raise InvalidOperation
        dollars = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        if not dollars.is_finite() or dollars < 0:
            raise InvalidOperation
    except InvalidOperation:
        raise InvalidInputError(
            f"{name} must be an amount in USD, 0 or more (e.g. 0.50), got {_shown(value)}"
        ) from None
    return dollars


def seconds(name: str, value: Any) -> float:
    """A duration: a finite number of seconds above 0."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not math.isfinite(float(value)) or value <= 0:
        raise InvalidInputError(f"{name} must be a number of seconds above 0, got {_shown(value)}")
    return float(value)


def choice(name: str, value: Any, allowed: Iterable[str]) -> Any:
    options = list(allowed)
    if value is not None and value not in options:
        raise InvalidInputError(
            f"{name} must be one of {', '.join(map(repr, options))}, got {_shown(value)}"
        )
    return value


def sendable(what: str, text: str) -> None:
    """Refuse text that cannot be encoded as UTF-8 (lone surrogates) before it is sent."""
    match = _SURROGATE.search(text)
    if match is not None:
        raise InvalidInputError(
            f"{what} is not valid Unicode: a lone surrogate {match.group()!r} at character "
            f"{match.start()} (text decoded with errors='surrogateescape'?); decode it "
            "properly, or clean it with text.encode('utf-8', 'replace').decode()"
        )


def messages_sendable(messages: Iterable[Mapping[str, Any]]) -> None:
    for index, message in enumerate(messages):
        role = message.get("role", f"message {index}")
        for text in message_texts(message.get("content")):
            sendable(f"The {role} message", text)


def message_texts(content: Any) -> Iterable[str]:
    """The text of a message's ``content``: a string, or the text parts of a list."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield part["text"]


def chat_knobs(params: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters with every known knob checked against the one table of
    :mod:`workbench.core.knobs` (type and range) and made plain (numpy scalars to numbers)."""
    return checked(params)


def text(name: str, value: Any) -> str | None:
    """Text or None: names, prompts and labels that go into the table as text."""
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{name} must be text (a str), got {_shown(value)}")
    if value is not None:
        sendable(name, value)
    return value


def flag(name: str, value: Any) -> bool:
    """True or False (numpy's bool too); 0, 1 and strings are refused as likely slips."""
    return bool(Knob(name, "flag").check(value))


def _range(kind: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    if low is not None:
        return f"{kind}, {low:g} or more"
    return kind
