"""The service behind every front end: resolve, consult the table, call, price, record.

``wb.chat``/``wb.embed`` (and later the magics, sweeps and widgets) all go through one
``Session``. It owns the process-wide settings (store, experiment, provider, budget) and
turns each call into exactly one row of the experiment table, success or failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import providers as providers_mod
from .errors import (
    APIError,
    BudgetExceededError,
    ConfigurationError,
    TruncatedStreamError,
    WorkbenchError,
)
from .identity import request_hash
from .record import RunRecord
from .results import ChatResponse
from .usage import Usage

if TYPE_CHECKING:
    from .client import AsyncOpenAIClient, ChatResult, OpenAIClient
    from .pricing import CustomPrice, PriceQuote
    from .store import ExperimentStore

__all__ = ["Session", "PreparedChat", "Message", "get_session", "one_line"]

Message = dict[str, Any]

DEFAULT_STORE = "experiments.db"


def one_line(exc: BaseException) -> str:
    """An error as the single line the table keeps."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


def _default_experiment() -> str:
    # Jupyter Server tells the kernel which notebook started it; that name is the
    # most useful default for grouping runs.
    session_name = os.environ.get("JPY_SESSION_NAME")
    if session_name:
        stem = Path(session_name).stem
        if stem:
            return stem
    return "default"


@dataclass
class PreparedChat:
    """A chat call ready to send: where, what, and the row it will become."""

    provider: providers_mod.Provider
    body: dict[str, Any]
    record: RunRecord


class Session:
    """Process-wide workbench state. Use :func:`get_session`, not this class directly."""

    def __init__(self) -> None:
        self._store: ExperimentStore | None = None
        self._store_path: Path | None = None
        self._experiment: str | None = None
        self.default_provider: str | None = None
        self.budget: Decimal | None = None
        self.spent = Decimal(0)
        self.timeout = 600.0
        self.max_retries = 2
        self._lock = threading.RLock()
        self._clients: dict[tuple[str, str | None], OpenAIClient] = {}
        self._aclients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str | None], AsyncOpenAIClient]
        ] = weakref.WeakKeyDictionary()
        self._model_lists: dict[str, list[str]] = {}
        # Multi-turn conversations by name: the user and assistant messages so far.
        self.threads: dict[str, list[Message]] = {}

    # -- settings -------------------------------------------------------------------

    def configure(
        self,
        *,
        store: str | os.PathLike[str] | None = None,
        provider: str | None = None,
        experiment: str | None = None,
        budget: float | Decimal | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        from . import checks

        # Every value is checked before any is applied: a bad call changes nothing.
        if budget is not None:
            budget = checks.amount("budget", budget)
        if timeout is not None:
            timeout = checks.seconds("timeout", timeout)
        if max_retries is not None:
            max_retries = checks.whole("max_retries", max_retries, low=0)
        if store is not None and not isinstance(store, (str, os.PathLike)):
            raise checks.InvalidInputError(
                f"store must be a file path, got {type(store).__name__}"
            )
        with self._lock:
            if store is not None:
                self.close_store()
                self._store_path = Path(store)
            if provider is not None:
                providers_mod.resolve(provider=provider)  # fail now on an unknown name
                self.default_provider = provider
            if experiment is not None:
                self._experiment = experiment
            if budget is not None:
                self.budget = Decimal(str(budget))
            if timeout is not None:
                self.timeout = float(timeout)
                self._close_clients()
            if max_retries is not None:
                self.max_retries = int(max_retries)
                self._close_clients()

    @property
    def store_path(self) -> Path:
        if self._store_path is not None:
            return self._store_path
        return Path(os.environ.get("WORKBENCH_STORE") or DEFAULT_STORE).absolute()

    @property
    def store(self) -> ExperimentStore:
        with self._lock:
            path = self.store_path
            if self._store is None or self._store.path != path:
                from .store import ExperimentStore

                self._store = ExperimentStore(path)
            return self._store

    def close_store(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @property
    def experiment(self) -> str:
        return self._experiment or _default_experiment()

    @experiment.setter
    def experiment(self, name: str | None) -> None:
        self._experiment = name

    def resolve(
        self, model: str | None, provider: str | None
    ) -> tuple[providers_mod.Provider, str | None]:
        return providers_mod.resolve(model, provider, default_provider=self.default_provider)

    # -- clients --------------------------------------------------------------------

    def client(self, provider: providers_mod.Provider, *, embeddings: bool = False) -> OpenAIClient:
        from .client import OpenAIClient

        base_url = provider.embeddings_base_url() if embeddings else provider.chat_base_url()
        key = provider.api_key()
        cache_key = (base_url, key)
        with self._lock:
            client = self._clients.get(cache_key)
            if client is None:
                client = OpenAIClient(
                    base_url, key, timeout=self.timeout, max_retries=self.max_retries
                )
                self._clients[cache_key] = client
            return client

    def aclient(
        self, provider: providers_mod.Provider, *, embeddings: bool = False
    ) -> AsyncOpenAIClient:
        from .client import AsyncOpenAIClient

        # An httpx.AsyncClient belongs to the loop it first ran on, so keep one per loop.
        loop = asyncio.get_running_loop()
        base_url = provider.embeddings_base_url() if embeddings else provider.chat_base_url()
        key = provider.api_key()
        with self._lock:
            per_loop = self._aclients.setdefault(loop, {})
            client = per_loop.get((base_url, key))
            if client is None:
                client = AsyncOpenAIClient(
                    base_url, key, timeout=self.timeout, max_retries=self.max_retries
                )
                per_loop[(base_url, key)] = client
            return client

    def _close_clients(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._aclients = weakref.WeakKeyDictionary()

    def models(self, provider: providers_mod.Provider, *, refresh: bool = False) -> list[str]:
        """The model ids the provider lists (cached per provider for the session)."""
        if refresh or provider.name not in self._model_lists:
            names = list(self.client(provider).models())
            if provider.local:
                names += list(self.client(provider, embeddings=True).models())
            self._model_lists[provider.name] = names
        return self._model_lists[provider.name]

    def chat_model_for(self, provider: providers_mod.Provider, model: str | None) -> str:
        if model:
            return model
        default = provider.default_chat_model()
        if default:
            return default
        listed = self.models(provider)
        if not listed:
            raise ConfigurationError(
                f"Provider {provider.name!r} lists no models: name one with model=..."
            )
        return listed[0]

    # -- chat -----------------------------------------------------------------------

    def prepare_chat(
        self,
        prompt: str | Sequence[Message],
        *,
        model: str | None = None,
        provider: str | None = None,
        system: str | None = None,
        history: Sequence[Message] = (),
        stream: bool = False,
        experiment: str | None = None,
        sweep_id: str | None = None,
        sample_index: int = 0,
        template: str | None = None,
        variables: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> PreparedChat:
        """Build the request body and the row it will become, without sending anything."""
        from . import checks

        # Checked before anything is sent: a knob of the wrong type would otherwise be
        # sent (and billed) and only then fail to be stored, losing the run's row.
        if not isinstance(prompt, str) and not (
            isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt)
        ):
            raise checks.InvalidInputError(
                "the prompt must be text or a list of message dicts "
                f"({{'role': ..., 'content': ...}}), got {type(prompt).__name__}"
            )
        checks.chat_knobs(params)
        chosen, model_name = self.resolve(model, provider)
        model_name = self.chat_model_for(chosen, model_name)
        messages: list[Message] = []
        if system is not None:
            messages.append({"role": "system", "content": system})
        messages.extend(dict(m) for m in history)
        if isinstance(prompt, str):
            messages.append({"role": "user", "content": prompt})
            prompt_text: str | None = prompt
        else:
            messages.extend(dict(m) for m in prompt)
            prompt_text = _last_user_text(messages)
        checks.messages_sendable(messages)
        sent = {k: v for k, v in params.items() if v is not None}
        body: dict[str, Any] = {"model": model_name, "messages": messages, **sent}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        record = RunRecord(
            kind="chat",
            provider=chosen.name,
            model=model_name,
            experiment=experiment or self.experiment,
            sweep_id=sweep_id,
            params=json.dumps({k: v for k, v in body.items() if k != "messages"}),
            system=system,
            prompt=prompt_text,
            messages=json.dumps(messages),
            template=template,
            variables=json.dumps(dict(variables), default=str) if variables else None,
            request_hash=request_hash(chosen.name, body),
            sample_index=sample_index,
            temperature=sent.get("temperature"),
            top_p=sent.get("top_p"),
            seed=sent.get("seed"),
            max_tokens=sent.get("max_tokens"),
        )
        return PreparedChat(provider=chosen, body=body, record=record)

    def cached(self, prepared: PreparedChat) -> ChatResponse | None:
        """Answer from the table when an identical ok run is there; log the replay."""
        hit = self.store.find_ok(prepared.record.request_hash, prepared.record.sample_index)
        if hit is None:
            return None
        record = prepared.record
        for name in (
            "response_model",
            "output",
            "finish_reason",
            "tool_calls",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "reasoning_tokens",
            "total_tokens",
            "tokens_counted",
            "system_fingerprint",
        ):
            setattr(record, name, getattr(hit, name))
        # A replay costs nothing and takes no API time; the original row keeps both.
        record.cost_usd = 0.0
        record.price_source = "cache"
        record.latency_s = 0.0
        record.cache_hit = True
        self.store.append(record)
        return ChatResponse(record=record)

    def check_budget(self, prepared: PreparedChat, budget: float | Decimal | None) -> None:
        """Refuse before sending when the estimate is above the call's or session's budget."""
        limits = [Decimal(str(b)) for b in (budget, self.remaining_budget()) if b is not None]
        if not limits:
            return
        from .estimate import estimate_messages

        est = estimate_messages(
            prepared.body["messages"],
            model=prepared.record.model,
            provider=prepared.provider,
            session=self,
            max_tokens=prepared.record.max_tokens,
            experiment=prepared.record.experiment,
        )
        limit = min(limits)
        if est.cost_expected is not None and est.cost_expected > limit:
            raise BudgetExceededError(
                f"Refused before sending: estimated ${est.cost_expected:.6f} is above the "
                f"budget of ${limit:.6f} (raise it with budget=... or wb.configure(budget=...))"
            )

    def remaining_budget(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.spent

    def finish_ok(self, prepared: PreparedChat, result: ChatResult) -> ChatResponse:
        record = prepared.record
        record.response_model = result.model
        record.output = result.text
        record.finish_reason = result.finish_reason
        record.tool_calls = json.dumps(result.tool_calls) if result.tool_calls else None
        record.system_fingerprint = result.system_fingerprint
        record.latency_s = result.latency_s
        record.ttft_s = result.ttft_s
        record.retries = result.retries
        usage = result.usage or self._counted_chat_usage(prepared, result.text)
        self._record_usage_and_cost(record, usage, prepared.provider)
        self.store.append(record)
        return ChatResponse(record=record, raw=result.raw)

    def finish_error(self, record: RunRecord, exc: WorkbenchError, started: float) -> None:
        """Log a failed call as a row: nothing is lost, not even a failure."""
        record.status = "error"
        record.error = one_line(exc)
        record.retries = exc.retries if isinstance(exc, APIError) else 0
        record.latency_s = time.perf_counter() - started
        if isinstance(exc, TruncatedStreamError):
            record.output = exc.partial_text or None
        self.store.append(record)

    def _counted_chat_usage(self, prepared: PreparedChat, text: str) -> Usage:
        from .tokens import count_chat_tokens, count_tokens

        model = prepared.record.model
        prompt = count_chat_tokens(prepared.body["messages"], model)
        completion = count_tokens(text, model)
        return Usage(prompt, completion, None, None, prompt + completion, counted=True)

    def custom_prices(self) -> dict[str, CustomPrice]:
        """The prices set with ``wb.set_price``, kept in the store."""
        from .pricing import CustomPrice

        return {m: CustomPrice(*p) for m, p in self.store.prices().items()}

    def quote(
        self,
        model: str,
        usage: Usage,
        provider: providers_mod.Provider,
        *,
        custom: Mapping[str, CustomPrice] | None = None,
        batch: bool = False,
    ) -> PriceQuote:
        """The price of ``usage`` on ``model`` at ``provider``: custom prices first, then
        the provider's price table (none for a self-hosted one), 0 for the local model.
        ``batch=True``: the Batch API's price."""
        from .pricing import quote

        return quote(
            model,
            usage,
            provider_id=provider.price_provider,
            use_table=provider.price_provider is not None,
            local=provider.local,
            custom=self.custom_prices() if custom is None else custom,
            batch=batch,
        )

    def _record_usage_and_cost(
        self, record: RunRecord, usage: Usage, provider: providers_mod.Provider
    ) -> None:
        record.prompt_tokens = usage.prompt_tokens
        record.completion_tokens = usage.completion_tokens
        record.cached_tokens = usage.cached_tokens
        record.reasoning_tokens = usage.reasoning_tokens
        record.total_tokens = usage.total_tokens
        record.tokens_counted = usage.counted
        priced = self.quote(record.model, usage, provider, batch=record.mode == "batch")
        record.cost_usd = float(priced.cost_usd) if priced.cost_usd is not None else None
        record.price_source = priced.source
        if priced.cost_usd is not None:
            with self._lock:
                self.spent += priced.cost_usd

    def begin_chat(
        self,
        prompt: str | Sequence[Message],
        *,
        fresh: bool = False,
        budget: float | Decimal | None = None,
        **kwargs: Any,
    ) -> tuple[PreparedChat, ChatResponse | None]:
        """Everything before the HTTP call, shared by :meth:`chat` and :meth:`achat`:
        prepare, answer from the table if possible, else check budget and store."""
        prepared = self.prepare_chat(prompt, **kwargs)
        if not fresh and (hit := self.cached(prepared)) is not None:
            return prepared, hit
        self.check_budget(prepared, budget)
        self.store.check_writable()  # before the call is paid for, not after
        return prepared, None

    def chat(
        self,
        prompt: str | Sequence[Message],
        *,
        on_delta: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> ChatResponse:
        prepared, hit = self.begin_chat(prompt, **kwargs)
        if hit is not None:
            return hit
        started = time.perf_counter()
        try:
            result = self.client(prepared.provider).chat(prepared.body, on_delta=on_delta)
        except WorkbenchError as exc:
            self.finish_error(prepared.record, exc, started)
            raise
        return self.finish_ok(prepared, result)

    async def achat(
        self,
        prompt: str | Sequence[Message],
        *,
        on_delta: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> ChatResponse:
        prepared, hit = self.begin_chat(prompt, **kwargs)
        if hit is not None:
            return hit
        started = time.perf_counter()
        try:
            result = await self.aclient(prepared.provider).chat(prepared.body, on_delta=on_delta)
        except WorkbenchError as exc:
            self.finish_error(prepared.record, exc, started)
            raise
        return self.finish_ok(prepared, result)


def _last_user_text(messages: Sequence[Message]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                # Text parts only: image parts would add empty lines to the prompt column.
                parts = [p["text"] for p in content if isinstance(p, dict) and "text" in p]
                return "\n".join(str(t) for t in parts)
    return None


_SESSION: Session | None = None
_SESSION_LOCK = threading.Lock()


def get_session() -> Session:
    """The process-wide session, created on first use."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = Session()
        return _SESSION
