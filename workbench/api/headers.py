"""Rate-limit headers read so that no value a server sends can raise or hang a call.

OpenAI's ``x-ratelimit-limit-*`` / ``-remaining-*`` / ``-reset-*`` headers (and
``retry-after``) come from the network: every value is parsed here and clamped into a
range the pacing arithmetic can use. Garbage, ``nan``, ``inf`` and negative values read
as absent; a reset of ``1e308`` seconds reads as :data:`MAX_WAIT_S` (it overflowed
``time.sleep`` and the datetime of "resets at", and divided by a rate of 0 before).
No imports of the package: :mod:`workbench.api.pacing` and :mod:`workbench.api.ratelimit` both
read headers through this module, which keeps them out of each other's imports.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "MAX_COUNT",
    "MAX_WAIT_S",
    "Announced",
    "announced_limits",
    "parse_count",
    "parse_reset",
    "parse_seconds",
]

# The longest wait any header may ask for: a year. Daily limits (a reset of many hours)
# are real; anything longer is a server's garbage, and must still fit a datetime.
MAX_WAIT_S = 366 * 24 * 3600.0
# The largest count of requests or tokens believed (far above any real limit).
MAX_COUNT = 10**15

# Go-style durations as OpenAI sends them: "1s", "6m0s", "20ms", "1h2m3.5s", "0.5s".
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_seconds(value: float) -> float | None:
    """A number of seconds clamped to [0, MAX_WAIT_S]; None for nan or below 0."""
    if math.isnan(value) or value < 0:
        return None
    return min(value, MAX_WAIT_S)


def parse_reset(value: str | None) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` header (OpenAI's ``6m0s``/``20ms``, or a
    plain number), at most :data:`MAX_WAIT_S`; None if absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if len(text) > 64:  # a duration is short; a megabyte of header is not one
        return None
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            return None
        try:
            seconds = math.fsum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
        except OverflowError:
            seconds = math.inf
    if math.isinf(seconds) and seconds > 0:
        return MAX_WAIT_S  # "inf" or a sum past every float: as long as we ever wait
    return parse_seconds(seconds)


def parse_count(value: str | None) -> int | None:
    """A count of requests or tokens (``x-ratelimit-limit-*``, ``-remaining-*``), at most
    :data:`MAX_COUNT`; None if absent, unreadable or negative."""
    if value is None:
        return None
    text = str(value).strip()
    if len(text) > 64:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if math.isnan(number) or number < 0:
        return None
    return int(min(number, MAX_COUNT))


@dataclass(frozen=True)
class Announced:
    """One limit as a response announced it: ``limit`` per minute (OpenAI's documented
    unit), ``remaining`` now, full again in ``reset_s`` seconds."""

    limit: int
    remaining: int
    reset_s: float | None


def announced_limits(headers: Mapping[str, str], kind: str) -> Announced | None:
    """The ``requests`` or ``tokens`` limit in ``headers`` (lower-case names), if any."""
    limit = parse_count(headers.get(f"x-ratelimit-limit-{kind}"))
    remaining = parse_count(headers.get(f"x-ratelimit-remaining-{kind}"))
    if limit is None or remaining is None or limit <= 0:
        return None
    reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
    return Announced(limit, min(remaining, limit), reset)
