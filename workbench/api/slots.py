"""An httpx transport with one connection per call in flight, for sweeps.

httpcore's pool re-examines every pooled connection each time a request starts or ends
(``is_idle``/``has_expired``, a ``poll()`` per idle socket, and wake-ups of queued
requests that lose the race; encode/httpcore#1035), so with 64 connections its
bookkeeping cost ~15 ms of CPU per call here, more than the calls themselves. A sweep
already caps how many calls are in flight, so it needs no shared pool: each call takes a
one-connection transport from a free list and gives it back when its response closes.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["SlotTransport"]

# The default (verify=True) context, built once per process: loading the CA bundle took
# 22-30 ms, at the start of every sweep, before its first call.
_DEFAULT_SSL: ssl.SSLContext | None = None


def _ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    global _DEFAULT_SSL
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is not True:
        return httpx.create_ssl_context(verify=verify)
    if _DEFAULT_SSL is None:
        _DEFAULT_SSL = httpx.create_ssl_context(verify=True)
    return _DEFAULT_SSL


def preload_ssl() -> None:
    """Build the default context now: a sweep's warm-up does, while its plan is read."""
    _ssl_context(True)


class _GivenBack(httpx.AsyncByteStream):
    """A response body that returns its connection's slot once it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, give_back: Callable[[], None]) -> None:
        self._inner = inner
        self._give_back: Callable[[], None] | None = give_back

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            give_back, self._give_back = self._give_back, None
            if give_back is not None:
                give_back()


class SlotTransport(httpx.AsyncBaseTransport):
    """At most ``slots`` connections, each its own single-connection transport.

    A request waits for a free slot (the most recently used first, so connections stay
    warm); its slot is busy until the response is closed. Pass ``verify`` as for httpx.
    """

    def __init__(self, slots: int, *, verify: ssl.SSLContext | bool = True) -> None:
        if slots < 1:
            raise ValueError(f"slots must be 1 or more, not {slots}")
        self._slots = slots
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None  # built once: loading CA files is slow
        self._free: list[httpx.AsyncHTTPTransport] = []
        self._all: list[httpx.AsyncHTTPTransport] = []
        self._capacity = asyncio.Semaphore(slots)

    def _new_slot(self) -> httpx.AsyncHTTPTransport:
        if self._ssl is None:
            self._ssl = _ssl_context(self._verify)
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        transport = httpx.AsyncHTTPTransport(verify=self._ssl, limits=one)
        self._all.append(transport)
        return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._capacity.acquire()
        slot = self._free.pop() if self._free else self._new_slot()

        def give_back() -> None:
            self._free.append(slot)
            self._capacity.release()

        try:
            response = await slot.handle_async_request(request)
        except BaseException:
            give_back()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_GivenBack(response.stream, give_back),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for transport in self._all:
            await transport.aclose()
        self._all.clear()
        self._free.clear()
