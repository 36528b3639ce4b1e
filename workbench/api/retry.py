"""When to retry a failed API call and how long to wait: openai-python's rule, without I/O.

The client asks :class:`Attempts` after every failure; the delays are pure functions so
that tests can check them without sleeping.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

from workbench.api.headers import parse_seconds

__all__ = [
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_DELAY",
    "MAX_RETRY_AFTER",
    "Attempts",
    "parse_retry_after",
    "retry_delay",
    "should_retry_status",
]

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# A server asking for a longer wait than this is not worth obeying inside one call;
# we fall back to our own (short) backoff and let the caller decide beyond that.
MAX_RETRY_AFTER = 120.0


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``retry-after``.

    ``retry-after`` may be seconds (floats allowed, as some servers send them) or an
    HTTP date, which is measured against ``now`` (default: the current time). Whatever
    the server sends, the answer is None or a finite number of seconds (clamped as
    :func:`workbench.api.headers.parse_seconds` does; a date in the past reads as 0):
    never an exception (a date in the year 10**20 raised OverflowError).
    """
    lowered = _lower(headers)
    try:
        waited = parse_seconds(float(lowered["retry-after-ms"]) / 1000)
    except (KeyError, ValueError):
        waited = None
    if waited is not None:
        return waited
    retry_after = lowered.get("retry-after")
    if retry_after is None or len(retry_after) > 64:
        return None
    try:
        return parse_seconds(float(retry_after))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_tz(retry_after)
        if parsed is None:
            return None
        at = float(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError, TypeError):
        return None
    return parse_seconds(max(at - (time.time() if now is None else now), 0.0))


def retry_delay(
    retries_done: int,
    headers: Mapping[str, str] | None = None,
    *,
    now: float | None = None,
    jitter: float | None = None,
) -> float:
    """Seconds to wait before retry number ``retries_done + 1``.

    The server's ``retry-after-ms``/``retry-after`` wins when it is in (0, 120] seconds;
    otherwise ``min(0.5 * 2**retries_done, 8)`` scaled by a jitter in [0.75, 1]
    (``jitter`` fixes that factor for tests; by default it is random).
    """
    asked = parse_retry_after(headers, now=now) if headers is not None else None
    if asked is not None and 0 < asked <= MAX_RETRY_AFTER:
        return asked
    # The exponent is capped only so that 2.0**n cannot overflow on absurd counts.
    backoff = min(INITIAL_RETRY_DELAY * 2.0 ** min(retries_done, 64), MAX_RETRY_DELAY)
    factor = 1 - 0.25 * random.random() if jitter is None else jitter
    return max(backoff * factor, 0.0)


def should_retry_status(status_code: int, headers: Mapping[str, str]) -> bool:
    """Whether an HTTP error status is worth another attempt.

    ``x-should-retry: true/false`` from the server overrides the status-based rule.
    """
    override = _lower(headers).get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    return status_code in (408, 409, 429) or status_code >= 500


class Attempts:
    """The retry budget of one call: counts retries and says how long to wait, or not.

    ``rate_limit_retries`` (the limits layer's policy, see
    :data:`workbench.api.limits.SWEEP_RATE_LIMIT_RETRIES`): 429s get that many retries of
    their own instead of sharing ``max_retries`` with the other failures."""

    def __init__(self, max_retries: int, rate_limit_retries: int | None = None) -> None:
        self.max_retries = max_retries
        self.rate_limit_retries = rate_limit_retries
        self.retries = 0  # all of them: the backoff grows with each, whatever the cause
        self.rate_limited = 0  # of which after a 429 with its own budget

    def _next(
        self, headers: Mapping[str, str] | None, *, rate_limited: bool = False
    ) -> float | None:
        if rate_limited:
            assert self.rate_limit_retries is not None
            if self.rate_limited >= self.rate_limit_retries:
                return None
            self.rate_limited += 1
        elif self.retries - self.rate_limited >= self.max_retries:
            return None
        delay = retry_delay(self.retries, headers)
        self.retries += 1
        return delay

    def after_status(self, status_code: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying an HTTP error, or ``None`` to give up."""
        if not should_retry_status(status_code, headers):
            return None
        own = status_code == 429 and self.rate_limit_retries is not None
        return self._next(headers, rate_limited=own)

    def after_transport_error(self) -> float | None:
        """Seconds to wait before retrying a timeout or broken connection, or ``None``."""
        return self._next(None)
