"""The composition root every front end goes through: one call, resolved, answered from the
table or sent, priced and recorded as exactly one row, success or failure.

A ``Session`` joins four separate objects and passes them down: the settings
(:mod:`~workbench.calls.settings`), the budget and spend (:mod:`~workbench.calls.budget`),
the clients and their rate-limit pacers (:mod:`~workbench.calls.clients`) and the store
(:mod:`~workbench.calls.storage`). Only the top floor (``wb.*``, the CLI, the notebook
front end) calls :func:`get_session`; everything below receives what it needs.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.api import providers as providers_mod
from workbench.api.keycheck import hide_keys_in_row
from workbench.api.limits import CallLimits, Limits
from workbench.calls.budget import price as costing
from workbench.calls.budget.session_budget import Budget
from workbench.calls.clients import ClientPool
from workbench.calls.logprobs import compact_logprobs
from workbench.calls.prepare import (
    Message,
    PreparedChat,
    build_chat,
    check_chat_input,
    check_on_delta,
    collecting,
    deadline_or_none,
    replay_into,
)
from workbench.calls.results import ChatResponse
from workbench.calls.settings import DEFAULT_DEADLINE, Settings, checked_configure
from workbench.calls.storage import StoreSlot, one_line
from workbench.core import checks
from workbench.core.errors import (
    APIError,
    CallInterrupted,
    ConfigurationError,
    DeadlineExceededError,
    Interrupted,
    TruncatedStreamError,
    WorkbenchError,
)
from workbench.core.notes import fit_text
from workbench.core.tokens import count_chat_tokens
from workbench.store.unsaved import UnsavedRun

if TYPE_CHECKING:
    from workbench.api.client import AsyncOpenAIClient, ChatResult, OpenAIClient
    from workbench.api.pacing import PacerRegistry
    from workbench.core.pricing import CustomPrice, PriceQuote
    from workbench.core.record import RunRecord
    from workbench.core.usage import Usage
    from workbench.store import AnyStore
    from workbench.store.target import StoreURL

__all__ = ["Session", "PreparedChat", "Message", "get_session", "one_line", "DEFAULT_DEADLINE"]


class Session:
    """Process-wide workbench state. Use :func:`get_session`, not this class directly."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.spend = Budget(self)  # estimates, checks and charges every path's calls
        self.clients = ClientPool(self.settings)
        self.stores = StoreSlot()
        self._lock = threading.RLock()
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
        deadline: float | None = None,
        allow_unpriced: bool | None = None,
    ) -> None:
        # Every value is checked before any is applied: a bad call changes nothing.
        values = checked_configure(
            store=store, budget=budget, timeout=timeout, max_retries=max_retries,
            deadline=deadline, allow_unpriced=allow_unpriced,
        )
        if provider is not None:
            providers_mod.resolve(provider=provider)  # fail now on an unknown name
        with self._lock:
            if values["store"] is not None:
                self.stores.retarget(values["store"])
            if provider is not None:
                self.settings.default_provider = provider
            if experiment is not None:
                self.settings.experiment_name = experiment
            if values["budget"] is not None:
                self.spend.limit = values["budget"]
            for name in ("timeout", "max_retries", "deadline"):
                if values[name] is not None:
                    setattr(self.settings, name, values[name])
                    self.clients.close()  # clients are made with these
            if allow_unpriced is not None:
                self.spend.allow_unpriced = allow_unpriced

    # The settings, budget and store as attributes of the session, as they always were.
    default_provider = property(
        lambda self: self.settings.default_provider,
        lambda self, v: setattr(self.settings, "default_provider", v),
    )
    timeout = property(lambda self: self.settings.timeout)
    deadline = property(lambda self: self.settings.deadline)
    max_retries = property(lambda self: self.settings.max_retries)
    budget = property(
        lambda self: self.spend.limit, lambda self, v: setattr(self.spend, "limit", v)
    )
    spent = property(lambda self: self.spend.spent)
    unpriced_calls = property(lambda self: self.spend.unpriced_calls)
    allow_unpriced = property(
        lambda self: self.spend.allow_unpriced,
        lambda self, v: setattr(self.spend, "allow_unpriced", v),
    )

    @property
    def experiment(self) -> str:
        return self.settings.experiment

    @experiment.setter
    def experiment(self, name: str | None) -> None:
        self.settings.experiment_name = name

    def remaining_budget(self) -> Decimal | None:
        return self.spend.remaining()

    @property
    def store_target(self) -> str | StoreURL:
        return self.stores.configured

    @property
    def store_path(self) -> Path:
        return self.stores.path

    @property
    def store_where(self) -> Path | str:
        return self.stores.where

    @property
    def store(self) -> AnyStore:
        return self.stores.store

    def close_store(self) -> None:
        self.stores.close()

    def resolve(
        self, model: str | None, provider: str | None
    ) -> tuple[providers_mod.Provider, str | None]:
        return providers_mod.resolve(
            model, provider, default_provider=self.settings.default_provider
        )

    # -- clients --------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        """The one limits layer every call and sweep of the session goes through."""
        return self.clients.limits

    @property
    def pacers(self) -> PacerRegistry:
        return self.clients.limits.pacers

    def client(self, provider: providers_mod.Provider, *, embeddings: bool = False) -> OpenAIClient:
        return self.clients.client(provider, embeddings=embeddings)

    def aclient(
        self, provider: providers_mod.Provider, *, embeddings: bool = False
    ) -> AsyncOpenAIClient:
        return self.clients.aclient(provider, embeddings=embeddings)

    def models(self, provider: providers_mod.Provider, *, refresh: bool = False) -> list[str]:
        """The model ids the provider lists (cached per provider for the session)."""
        return self.clients.models(provider, refresh=refresh)

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
        names = {"model": model, "provider": provider, "system": system,
                 "experiment": experiment}
        params = check_chat_input(prompt, names, stream, params)
        chosen, model_name = self.resolve(model, provider)
        return build_chat(
            prompt,
            provider=chosen,
            model=self.chat_model_for(chosen, model_name),
            experiment=experiment or self.experiment,
            system=system,
            history=history,
            stream=stream,
            sweep_id=sweep_id,
            sample_index=sample_index,
            template=template,
            variables=variables,
            params=params,
        )

    def cached(self, prepared: PreparedChat) -> ChatResponse | None:
        """Answer from the table when an identical ok run is there; log the replay."""
        hit = self.store.find_ok(prepared.record.request_hash, prepared.record.sample_index)
        if hit is None:
            return None
        record = replay_into(prepared.record, hit)
        return ChatResponse(record=record, unsaved=self.save(record))

    def check_budget(self, prepared: PreparedChat, budget: float | Decimal | None) -> None:
        """Refuse before sending when the estimate is above the call's or session's budget."""
        self.spend.check_call(prepared, None if budget is None else Decimal(str(budget)))

    def save(
        self,
        record: RunRecord,
        *,
        extra: Mapping[str, Any] | None = None,
        warn: bool = True,
    ) -> UnsavedRun | None:
        """Append ``record`` (see :meth:`StoreSlot.save`): None when the row is stored."""
        hide_keys_in_row(record)  # a key sent in a prompt is not kept (nor exported)
        return self.stores.save(record, extra=extra, warn=warn)

    def finish_ok(
        self, prepared: PreparedChat, result: ChatResult, *, warn: bool = True
    ) -> ChatResponse:
        record = prepared.record
        record.response_model = result.model
        record.output = result.text
        record.finish_reason = result.finish_reason
        record.tool_calls = json.dumps(result.tool_calls) if result.tool_calls else None
        record.system_fingerprint = result.system_fingerprint
        record.refusal = result.refusal
        record.logprobs = compact_logprobs(result.logprobs)
        record.service_tier = result.service_tier
        record.reasoning_summary = result.reasoning_summary
        record.latency_s = result.latency_s
        record.ttft_s = result.ttft_s
        record.retries = result.retries
        record.notes = "; ".join(result.notes) or None
        usage = result.usage or self._counted_chat_usage(prepared, result.text)
        self.record_usage_and_cost(record, usage, prepared.provider)
        unsaved = self.save(record, warn=warn)
        return ChatResponse(record=record, raw=result.raw, unsaved=unsaved)

    def finish_error(
        self,
        record: RunRecord,
        exc: BaseException,
        started: float,
        *,
        partial: str = "",
        warn: bool = True,
    ) -> UnsavedRun | None:
        """Log a failed call as a row: nothing is lost, not even a failure.

        ``exc`` is one of ours, or KeyboardInterrupt / CancelledError with ``partial``,
        the text streamed before it. The caller raises ``exc`` afterwards; a row that
        cannot be saved only warns, so the original error is never masked by the store's.
        """
        if isinstance(exc, (TruncatedStreamError, DeadlineExceededError)):
            partial = exc.partial_text
        text = fit_text(partial)[0]
        record.status = "error"
        if isinstance(exc, WorkbenchError):
            record.error = fit_text(one_line(exc))[0]
        else:  # an interrupt has no message of its own
            record.error = f"Interrupted ({type(exc).__name__}) after {len(text)} characters"
        record.retries = exc.retries if isinstance(exc, APIError) else 0
        record.latency_s = time.perf_counter() - started
        record.output = text or None
        return self.save(record, warn=warn)

    def finish_chat_error(
        self, prepared: PreparedChat, exc: BaseException, started: float, partial: str = ""
    ) -> UnsavedRun | None:
        """Log a failed chat call; the caller re-raises ``exc`` afterwards.

        A stream cut short after output arrived, by the server (TruncatedStreamError) or
        by Ctrl-C / a cancelled task (``partial`` holds what came), keeps its partial
        answer and is charged for it, counted locally: its usage never came.
        """
        if isinstance(exc, (TruncatedStreamError, DeadlineExceededError)):
            partial = exc.partial_text
        if partial and prepared.body.get("stream"):
            usage = self._counted_chat_usage(prepared, fit_text(partial)[0])
            self.record_usage_and_cost(prepared.record, usage, prepared.provider)
        return self.finish_error(prepared.record, exc, started, partial=partial)

    def _counted_chat_usage(self, prepared: PreparedChat, text: str) -> Usage:
        return costing.counted_chat_usage(prepared.body["messages"], prepared.record.model, text)

    def custom_prices(self) -> dict[str, CustomPrice]:
        """The prices set with ``wb.set_price``, kept in the store."""
        return costing.custom_prices(self.store)

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
        custom = self.custom_prices() if custom is None else custom
        return costing.quote(model, usage, provider, custom, batch=batch)

    def record_usage_and_cost(
        self, record: RunRecord, usage: Usage, provider: providers_mod.Provider
    ) -> None:
        """Write usage and price into ``record`` and charge the price to the session."""
        self.spend.charge_run(record, usage, provider)

    _record_usage_and_cost = record_usage_and_cost  # the name it had

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
        checks.flag("fresh", fresh)
        if budget is not None:
            budget = checks.amount("budget", budget)
        prepared = self.prepare_chat(prompt, **kwargs)
        if not fresh and (hit := self.cached(prepared)) is not None:
            return prepared, hit
        self.check_budget(prepared, budget)
        self.store.check_writable([prepared.record])  # before the call is paid for
        return prepared, None

    def chat(
        self,
        prompt: str | Sequence[Message],
        *,
        on_delta: Callable[[str], None] | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> ChatResponse:
        check_on_delta(on_delta)
        deadline = deadline_or_none(deadline)
        prepared, hit = self.begin_chat(prompt, **kwargs)
        if hit is not None:
            return hit
        limited = self._limited(prepared, deadline)  # refused at once beyond the deadline
        limited.wait_blocking()
        limited.sending()
        started = time.perf_counter()
        received, on_delta = collecting(on_delta)
        try:
            result = self.client(prepared.provider).chat(
                prepared.body,
                on_delta=on_delta,
                deadline=deadline,
                on_retry=limited.on_retry,
            )
        except (WorkbenchError, KeyboardInterrupt) as exc:
            unsaved = self.finish_chat_error(prepared, exc, started, "".join(received))
            if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
                partial = ChatResponse(record=prepared.record, unsaved=unsaved)
                raise CallInterrupted(partial) from exc  # one line: what was kept
            raise
        limited.on_success(result.headers)
        return self.finish_ok(prepared, result)

    async def achat(
        self,
        prompt: str | Sequence[Message],
        *,
        on_delta: Callable[[str], None] | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> ChatResponse:
        check_on_delta(on_delta)
        deadline = deadline_or_none(deadline)
        prepared, hit = self.begin_chat(prompt, **kwargs)
        if hit is not None:
            return hit
        limited = self._limited(prepared, deadline)
        await limited.wait()
        limited.sending()
        started = time.perf_counter()
        received, on_delta = collecting(on_delta)
        try:
            result = await self.aclient(prepared.provider).chat(
                prepared.body,
                on_delta=on_delta,
                deadline=deadline,
                on_retry=limited.on_retry,
            )
        except (WorkbenchError, KeyboardInterrupt, asyncio.CancelledError) as exc:
            unsaved = self.finish_chat_error(prepared, exc, started, "".join(received))
            if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
                partial = ChatResponse(record=prepared.record, unsaved=unsaved)
                raise CallInterrupted(partial) from exc
            raise
        limited.on_success(result.headers)
        return self.finish_ok(prepared, result)

    # -- the limits layer, for single calls --------------------------------------------

    def _limited(self, prepared: PreparedChat, deadline: float | None) -> CallLimits:
        """This call's place in its model's limits (shared with running sweeps)."""
        provider, model = prepared.provider.identity, prepared.record.model
        tokens = 0
        if self.limits.needs_tokens(provider, model):
            reserved = prepared.body.get("max_completion_tokens") or prepared.record.max_tokens
            tokens = count_chat_tokens(prepared.body["messages"], prepared.record.model)
            tokens += int(reserved or 0)
        within = self.deadline if deadline is None else deadline
        return self.limits.call(provider, model, tokens, within)


_SESSION: Session | None = None
_SESSION_LOCK = threading.Lock()


def get_session() -> Session:
    """The process-wide session, created on first use."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = Session()
        return _SESSION
