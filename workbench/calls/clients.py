"""The session's HTTP clients, one per (base URL, key) and, for async clients, per event
loop; and the rate-limit pacers every call and sweep of the session shares."""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING

from workbench.api.client import AsyncOpenAIClient, OpenAIClient
from workbench.api.limits import Limits

if TYPE_CHECKING:
    from workbench.api.providers import Provider
    from workbench.calls.settings import Settings

__all__ = ["ClientPool"]


class ClientPool:
    """Clients made with the session's timeout, retries and deadline (``settings``,
    read when a client is made: :meth:`close` after changing them)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._clients: dict[tuple[str, str | None], OpenAIClient] = {}
        self._aclients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str | None], AsyncOpenAIClient]
        ] = weakref.WeakKeyDictionary()
        self._model_lists: dict[str, list[str]] = {}
        # The servers' announced rate limits, per (provider, model): every sweep and call
        # of the session goes through this one layer (two sweeps split one limit).
        self.limits = Limits()
        self.pacers = self.limits.pacers

    @staticmethod
    def _where(provider: Provider, embeddings: bool) -> tuple[str, tuple[str, str | None]]:
        base_url = provider.embeddings_base_url() if embeddings else provider.chat_base_url()
        key = provider.key()
        # A fingerprint, not the key: a dict's repr (a verbose traceback) shows its keys.
        return base_url, (base_url, key.fingerprint if key else None)

    def client(self, provider: Provider, *, embeddings: bool = False) -> OpenAIClient:
        base_url, cache_key = self._where(provider, embeddings)
        with self._lock:
            client = self._clients.get(cache_key)
            if client is None:
                client = OpenAIClient(
                    base_url,
                    provider.key(),
                    timeout=self.settings.timeout,
                    max_retries=self.settings.max_retries,
                    deadline=self.settings.deadline,
                )
                self._clients[cache_key] = client
            return client

    def aclient(self, provider: Provider, *, embeddings: bool = False) -> AsyncOpenAIClient:
        # An httpx.AsyncClient belongs to the loop it first ran on, so keep one per loop.
        loop = asyncio.get_running_loop()
        base_url, cache_key = self._where(provider, embeddings)
        with self._lock:
            per_loop = self._aclients.setdefault(loop, {})
            client = per_loop.get(cache_key)
            if client is None:
                client = AsyncOpenAIClient(
                    base_url,
                    provider.key(),
                    timeout=self.settings.timeout,
                    max_retries=self.settings.max_retries,
                    deadline=self.settings.deadline,
                )
                per_loop[cache_key] = client
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            self._aclients = weakref.WeakKeyDictionary()

    def models(self, provider: Provider, *, refresh: bool = False) -> list[str]:
        """The model ids the provider lists (cached per provider for the session)."""
        if refresh or provider.identity not in self._model_lists:
            names = list(self.client(provider).models())
            if provider.local:
                names += list(self.client(provider, embeddings=True).models())
            self._model_lists[provider.identity] = names
        return self._model_lists[provider.identity]
