"""Between a client's attempts: ask the retry rule (and the caller's hook) how long to wait,
or raise the one error that ends the call. Shared by the sync and async clients."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NoReturn

import httpx

from workbench.api.retry import Attempts
from workbench.api.wire import Endpoint, lower_headers

__all__ = ["RetryHook", "retry_after_status", "retry_after_transport", "undecodable"]

# Called before each retry's wait with the HTTP status (None for a timeout or a broken
# connection), the response headers (lower-case names; empty without a response) and the
# seconds about to be waited: how a caller such as a sweep learns of rate limits. It may
# return a longer wait (a sweep's pacer queues the retry behind calls already waiting).
RetryHook = Callable[[int | None, Mapping[str, str], float], "float | None"]


def retry_after_status(
    endpoint: Endpoint,
    attempts: Attempts,
    response: httpx.Response,
    on_retry: RetryHook | None = None,
) -> float:
    """Seconds to wait before retrying a non-2xx response (body read); raises if we give up."""
    delay = attempts.after_status(response.status_code, response.headers)
    if delay is None:
        raise endpoint.status_error(response, attempts.retries)
    if on_retry is not None:
        wanted = on_retry(response.status_code, lower_headers(response.headers), delay)
        delay = max(delay, wanted or 0.0)
    return delay


def retry_after_transport(
    endpoint: Endpoint,
    attempts: Attempts,
    exc: httpx.TransportError,
    on_retry: RetryHook | None = None,
) -> float:
    """Seconds to wait before retrying a timeout or broken connection; raises if we give up."""
    delay = attempts.after_transport_error()
    if delay is None:
        raise endpoint.transport_error(exc, attempts.retries) from exc
    if on_retry is not None:
        delay = max(delay, on_retry(None, {}, delay) or 0.0)
    return delay


def undecodable(endpoint: Endpoint, exc: httpx.DecodingError, retries: int) -> NoReturn:
    # A body that cannot be decompressed is a malformed answer, not a network hiccup.
    problem = f"the body could not be decoded ({exc})"
    raise endpoint.response_error(problem, body="", retries=retries) from exc
