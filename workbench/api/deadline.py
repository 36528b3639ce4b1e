"""The overall time limit of one API call, retries and their waits included.

httpx's ``timeout`` bounds each network read, so a server that sends ``: ping`` every
0.2 s, or drips its body a byte at a time, holds a call for as long as it likes. A
:class:`Deadline` closes that gap: each attempt's timeouts are capped to what is left,
the response's bytes are watched as they arrive, and no retry waits past the end.

The rules are pure functions of an injectable clock (as in :mod:`workbench.api.ratelimit`);
the clients raise our error when :class:`DeadlinePassed` comes out of a read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from workbench.api.retry import Attempts
    from workbench.api.wire import Endpoint
    from workbench.core.errors import DeadlineExceededError

__all__ = ["Deadline", "DeadlinePassed"]


class DeadlinePassed(Exception):
    """Raised from inside a watched response body; the client turns it into
    :class:`~workbench.core.errors.DeadlineExceededError` with what had arrived."""


class Deadline:
    """The end of one call: ``seconds`` after ``start`` on ``clock`` (None: no end)."""

    def __init__(self, seconds: float | None, start: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self.clock = clock
        self._end = None if seconds is None else start + seconds

    def remaining(self) -> float | None:
        """Seconds left (0 or less once passed); None without a deadline."""
        return None if self._end is None else self._end - self.clock()

    @property
    def passed(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def allows_wait(self, delay: float) -> bool:
        """Whether waiting ``delay`` seconds (before a retry) still leaves time to call."""
        left = self.remaining()
        return left is None or delay < left

    def timeout(self, base: httpx.Timeout) -> httpx.Timeout:
        """``base`` with each phase capped to the time left, so that a server that sends
        nothing at all is given up on at the deadline, not at the end of a long read."""
        left = self.remaining()
        if left is None:
            return base
        left = max(left, 0.001)  # httpx reads 0 as "no wait at all", not "already late"

        def cap(phase: float | None) -> float:
            return left if phase is None else min(phase, left)

        return httpx.Timeout(
            connect=cap(base.connect),
            read=cap(base.read),
            write=cap(base.write),
            pool=cap(base.pool),
        )

    def watch(self, response: httpx.Response) -> None:
        """Check the deadline at every chunk of ``response``'s body as it is read (a ping
        or a dripped byte is a chunk): past it, the read raises :class:`DeadlinePassed`."""
        if self._end is None:
            return
        if isinstance(response.stream, httpx.SyncByteStream):
            response.stream = _WatchedStream(response.stream, self)
        elif isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _WatchedAsyncStream(response.stream, self)

    def check(self) -> None:
        if self.passed:
            raise DeadlinePassed

    # -- what the clients do at the deadline --------------------------------------------

    def error(
        self, endpoint: Endpoint, retries: int, partial_text: str = ""
    ) -> DeadlineExceededError:
        return endpoint.deadline_error(self.seconds or 0.0, partial_text, retries)

    def raise_if_cut(
        self, endpoint: Endpoint, retries: int, exc: httpx.TransportError, partial_text: str = ""
    ) -> None:
        """A timeout past the deadline is the deadline's (each read was cut to it): final."""
        if self.passed:
            raise self.error(endpoint, retries, partial_text) from endpoint.scrub(exc)

    def wait(self, endpoint: Endpoint, attempts: Attempts, delay: float) -> float:
        """``delay`` before a retry, unless it would end past the deadline: then no retry."""
        if not self.allows_wait(delay):
            # The retry was counted when its delay was worked out; it will not happen.
            raise self.error(endpoint, attempts.retries - 1)
        return delay


class _WatchedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, deadline: Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            self._deadline.check()
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _WatchedAsyncStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, deadline: Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self._deadline.check()
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()
