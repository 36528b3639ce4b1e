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
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import providers as providers_mod
from .credentials import known_secrets
from .errors import (
    APIError,
    BudgetExceededError,
    CallInterrupted,
    ConfigurationError,
    DeadlineExceededError,
    Interrupted,
    TruncatedStreamError,
    WorkbenchError,
    redact,
)
from .identity import request_hash
from .jsonmode import with_json_instruction
from .keycheck import hide_keys_in_row
from .logprobs import compact_logprobs
from .money import format_money
from .notes import fit_text
from .pacing import Pacer, PacerRegistry, Ticket
from .reasoning import adapt_for_reasoning
from .record import RunRecord
from .results import ChatResponse
from .unsaved import UnsavedRun, UnsavedRunWarning
from .usage import Usage

if TYPE_CHECKING:
    from .client import AsyncOpenAIClient, ChatResult, OpenAIClient, RetryHook
    from .pricing import CustomPrice, PriceQuote
    from .store import AnyStore

__all__ = ["Session", "PreparedChat", "Message", "get_session", "one_line"]

Message = dict[str, Any]

DEFAULT_STORE = "experiments.db"
# Seconds one call may take in all, retries and their waits included. `timeout` is per
# read, so a server that keeps a stream alive with pings would otherwise hold a call for
# as long as it likes; 15 minutes leaves room for the longest reasoning answers.
DEFAULT_DEADLINE = 900.0


def one_line(exc: BaseException) -> str:
    """An error as the single line the table keeps, with every key known here masked."""
    text = redact(" ".join(str(exc).split()), known_secrets()) or type(exc).__name__
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
        self._store: AnyStore | None = None
        self._store_key: str | None = None  # the target the open store was opened for
        self._store_target: str | None = None
        self._experiment: str | None = None
        self.default_provider: str | None = None
        self.budget: Decimal | None = None
        self.spent = Decimal(0)
        # Calls answered at a price nobody knows: the spend is "$X + unknown" then.
        self.unpriced_calls = 0
        # With a budget set, a call whose cost cannot be known is refused unless this is
        # True: a budget that silently lets unpriced calls through is no budget.
        self.allow_unpriced = False
        self.timeout = 600.0
        self.deadline = DEFAULT_DEADLINE
        self.max_retries = 2
        self._lock = threading.RLock()
        self._clients: dict[tuple[str, str | None], OpenAIClient] = {}
        self._aclients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str | None], AsyncOpenAIClient]
        ] = weakref.WeakKeyDictionary()
        self._model_lists: dict[str, list[str]] = {}
        # The servers' announced rate limits, per (provider, model): every sweep and call
        # of the session paces against the same buckets (two sweeps split one limit).
        self.pacers = PacerRegistry()
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
        from . import checks

        # Every value is checked before any is applied: a bad call changes nothing.
        if budget is not None:
            budget = checks.amount("budget", budget)
        if timeout is not None:
            timeout = checks.seconds("timeout", timeout)
        if max_retries is not None:
            max_retries = checks.whole("max_retries", max_retries, low=0)
        if deadline is not None:
            deadline = checks.seconds("deadline", deadline)
        if allow_unpriced is not None and not isinstance(allow_unpriced, bool):
            raise checks.InvalidInputError(
                f"allow_unpriced must be True or False, got {allow_unpriced!r}"
            )
        if store is not None and not isinstance(store, (str, os.PathLike)):
            raise checks.InvalidInputError(
                f"store must be a file path or a postgresql:// URL, got {type(store).__name__}"
            )
        with self._lock:
            if store is not None:
                self.close_store()
                self._store_target = os.fspath(store)
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
            if deadline is not None:
                self.deadline = float(deadline)
                self._close_clients()
            if allow_unpriced is not None:
                self.allow_unpriced = allow_unpriced

    @property
    def store_target(self) -> str:
        """The store as configured: a SQLite file path or a ``postgresql://`` URL (which
        may hold a password: show :attr:`store_where` instead)."""
        from .store.target import configured_target

        return configured_target(self._store_target)[0]

    @property
    def store_path(self) -> Path:
        """The SQLite file of the store; for a PostgreSQL store, the file in the working
        folder that rows go to when the server refuses them."""
        from .store.target import is_postgres_url

        target = self.store_target
        if is_postgres_url(target):
            return Path.cwd() / "workbench-store.db"
        return Path(target).absolute()

    @property
    def store_where(self) -> Path | str:
        """The store as it may be shown: the file, or the URL with its password masked."""
        from .store import store_label
        from .store.target import is_postgres_url

        target = self.store_target
        return store_label(target) if is_postgres_url(target) else self.store_path

    @property
    def store(self) -> AnyStore:
        with self._lock:
            from .store.target import configured_target, is_postgres_url

            target, password_env = configured_target(self._store_target)
            key = target if is_postgres_url(target) else str(Path(target).absolute())
            if self._store is None or self._store_key != key:
                from .store import open_store

                if self._store is not None:
                    self._store.close()
                    self._store = None
                self._store = open_store(key, password_env=password_env)
                self._store_key = key
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
        key = provider.key()
        # A fingerprint, not the key: a dict's repr (a verbose traceback) shows its keys.
        cache_key = (base_url, key.fingerprint if key else None)
        with self._lock:
            client = self._clients.get(cache_key)
            if client is None:
                client = OpenAIClient(
                    base_url,
                    key,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                    deadline=self.deadline,
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
        key = provider.key()
        cache_key = (base_url, key.fingerprint if key else None)
        with self._lock:
            per_loop = self._aclients.setdefault(loop, {})
            client = per_loop.get(cache_key)
            if client is None:
                client = AsyncOpenAIClient(
                    base_url,
                    key,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                    deadline=self.deadline,
                )
                per_loop[cache_key] = client
            return client

    def _close_clients(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._aclients = weakref.WeakKeyDictionary()

    def models(self, provider: providers_mod.Provider, *, refresh: bool = False) -> list[str]:
        """The model ids the provider lists (cached per provider for the session)."""
        if refresh or provider.identity not in self._model_lists:
            names = list(self.client(provider).models())
            if provider.local:
                names += list(self.client(provider, embeddings=True).models())
            self._model_lists[provider.identity] = names
        return self._model_lists[provider.identity]

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
        for name, value in (
            ("model", model), ("provider", provider), ("system", system),
            ("experiment", experiment),
        ):
            checks.text(name, value)
        checks.flag("stream", stream)
        params = checks.chat_knobs(params)
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
        messages = with_json_instruction(messages, sent.get("response_format"))
        body: dict[str, Any] = {"model": model_name, "messages": messages, **sent}
        body = adapt_for_reasoning(body, chosen)  # max_completion_tokens; refuses temperature
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        record = RunRecord(
            kind="chat",
            provider=chosen.identity,
            model=model_name,
            experiment=experiment or self.experiment,
            sweep_id=sweep_id,
            params=json.dumps({k: v for k, v in body.items() if k != "messages"}),
            system=system,
            prompt=prompt_text,
            messages=json.dumps(messages),
            template=template,
            variables=json.dumps(dict(variables), default=str) if variables else None,
            request_hash=request_hash(chosen.identity, body),
            sample_index=sample_index,
            temperature=sent.get("temperature"),
            top_p=sent.get("top_p"),
            seed=sent.get("seed"),
            # The bound on the answer, whichever name it is sent under.
            max_tokens=sent.get("max_tokens", sent.get("max_completion_tokens")),
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
            "notes",
            "refusal",
            "logprobs",
            "service_tier",
        ):
            setattr(record, name, getattr(hit, name))
        # A replay costs nothing and takes no API time; the original row keeps both.
        record.cost_usd = 0.0
        record.price_source = "cache"
        record.latency_s = 0.0
        record.cache_hit = True
        return ChatResponse(record=record, unsaved=self.save(record))

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
        self.refuse_beyond_budget(prepared.record.model, est.cost_expected, min(limits))

    def refuse_beyond_budget(self, model: str, cost: Decimal | None, limit: Decimal) -> None:
        """Raise BudgetExceededError (one line, before sending) for a call estimated at
        ``cost`` (None: no price known) under a budget with ``limit`` left."""
        remaining = self.remaining_budget()
        if remaining is not None and remaining < 0:
            # Spent already: nothing more goes out, whether its price is known or not.
            raise BudgetExceededError(
                f"Refused before sending: the session budget of {format_money(self.budget)} is "
                f"spent ({format_money(self.spent)}); raise it with wb.configure(budget=...)"
            )
        if cost is None:
            if self.allow_unpriced:
                return
            raise BudgetExceededError(
                f"Refused before sending: no price is known for {model!r}, so the budget "
                f'cannot be kept. Set one with wb.set_price("{model}", ...), or send calls '
                "of unknown cost anyway with wb.configure(allow_unpriced=True)"
            )
        if cost > limit:
            raise BudgetExceededError(
                f"Refused before sending: estimated {format_money(cost)} is above the "
                f"budget of {format_money(limit)} (raise it with budget=... or"
                " wb.configure(budget=...))"
            )

    def remaining_budget(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.spent

    def save(
        self,
        record: RunRecord,
        *,
        extra: Mapping[str, Any] | None = None,
        warn: bool = True,
    ) -> UnsavedRun | None:
        """Append ``record``; when the table refuses it, keep it in a file beside the store
        (with ``extra``, e.g. vectors) and warn, so the caller still gets the answer.

        Returns None when the row is in the store. ``warn=False`` leaves saying so to
        the caller (a sweep stops with one line instead of a warning per row).
        """
        hide_keys_in_row(record)  # a key sent in a prompt is not kept (nor exported)
        try:
            self.store.append(record)
        except Exception as exc:  # whatever refused the row (disk, schema...), keep it
            from .unsaved import keep

            unsaved = keep(record, self.store_path, one_line(exc), extra, shown=self.store_where)
            if warn:
                warnings.warn(unsaved.message(), UnsavedRunWarning, stacklevel=3)
            return unsaved
        return None

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
        record.latency_s = result.latency_s
        record.ttft_s = result.ttft_s
        record.retries = result.retries
        record.notes = "; ".join(result.notes) or None
        usage = result.usage or self._counted_chat_usage(prepared, result.text)
        self._record_usage_and_cost(record, usage, prepared.provider)
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
            self._record_usage_and_cost(prepared.record, usage, prepared.provider)
        return self.finish_error(prepared.record, exc, started, partial=partial)

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
        # Counted usage gives a cost marked as estimated (see pricing.ESTIMATED); it
        # counts towards the spend and budgets all the same, as the best figure there is.
        priced = self.quote(record.model, usage, provider, batch=record.mode == "batch")
        if record.kind == "chat" and usage.completion_tokens is None and not provider.local:
            # A chat answer whose completion count was unusable (dropped, with a note):
            # pricing the prompt alone would pass a part for the whole. Unknown instead.
            priced = replace(priced, cost_usd=None, source=None)
        record.cost_usd = float(priced.cost_usd) if priced.cost_usd is not None else None
        record.price_source = priced.source
        with self._lock:
            if priced.cost_usd is not None:
                self.spent += priced.cost_usd
            else:
                self.unpriced_calls += 1

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
        from . import checks

        checks.flag("fresh", fresh)
        if budget is not None:
            budget = checks.amount("budget", budget)
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
        deadline: float | None = None,
        **kwargs: Any,
    ) -> ChatResponse:
        _check_on_delta(on_delta)
        deadline = _deadline_or_none(deadline)
        prepared, hit = self.begin_chat(prompt, **kwargs)
        if hit is not None:
            return hit
        ticket = self._pace(prepared)
        time.sleep(ticket.wait_s)
        time.sleep(self._pacer(prepared).owed(ticket))  # the queue was pushed back meanwhile
        self._pacer(prepared).sending(ticket)
        started = time.perf_counter()
        received, on_delta = _collecting(on_delta)
        try:
            result = self.client(prepared.provider).chat(
                prepared.body,
                on_delta=on_delta,
                deadline=deadline,
                on_retry=self._retry_hook(prepared, ticket),
            )
        except (WorkbenchError, KeyboardInterrupt) as exc:
            unsaved = self.finish_chat_error(prepared, exc, started, "".join(received))
            if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
                partial = ChatResponse(record=prepared.record, unsaved=unsaved)
                raise CallInterrupted(partial) from exc  # one line: what was kept
            raise
        self._pacer(prepared).observe(ticket, result.headers)
        return self.finish_ok(prepared, result)

    async def achat(
        self,
        prompt: str | Sequence[Message],
        *,
        on_delta: Callable[[str], None] | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> ChatResponse:
        _check_on_delta(on_delta)
        deadline = _deadline_or_none(deadline)
        prepared, hit = self.begin_chat(prompt, **kwargs)
        if hit is not None:
            return hit
        ticket = self._pace(prepared)
        await asyncio.sleep(ticket.wait_s)
        await asyncio.sleep(self._pacer(prepared).owed(ticket))
        self._pacer(prepared).sending(ticket)
        started = time.perf_counter()
        received, on_delta = _collecting(on_delta)
        try:
            result = await self.aclient(prepared.provider).chat(
                prepared.body,
                on_delta=on_delta,
                deadline=deadline,
                on_retry=self._retry_hook(prepared, ticket),
            )
        except (WorkbenchError, KeyboardInterrupt, asyncio.CancelledError) as exc:
            unsaved = self.finish_chat_error(prepared, exc, started, "".join(received))
            if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
                partial = ChatResponse(record=prepared.record, unsaved=unsaved)
                raise CallInterrupted(partial) from exc
            raise
        self._pacer(prepared).observe(ticket, result.headers)
        return self.finish_ok(prepared, result)

    # -- pacing single calls ----------------------------------------------------------

    def _pacer(self, prepared: PreparedChat) -> Pacer:
        return self.pacers.pacer(prepared.provider.identity, prepared.record.model)

    def _pace(self, prepared: PreparedChat) -> Ticket:
        """This call's place in its model's pacer (shared with running sweeps)."""
        pacer = self._pacer(prepared)
        tokens = 0
        if pacer.tokens.bucket is not None:  # only a token limit needs the count
            from .tokens import count_chat_tokens

            reserved = prepared.body.get("max_completion_tokens") or prepared.record.max_tokens
            tokens = count_chat_tokens(prepared.body["messages"], prepared.record.model)
            tokens += int(reserved or 0)
        return pacer.reserve(tokens)

    def _retry_hook(self, prepared: PreparedChat, ticket: Ticket) -> RetryHook:
        pacer = self._pacer(prepared)

        def on_retry(status: int | None, headers: Mapping[str, str], delay: float) -> float:
            if status != 429:
                return delay
            pacer.rate_limited(delay, headers, ticket)
            return max(delay, pacer.reserve().wait_s)

        return on_retry


def _check_on_delta(on_delta: Any) -> None:
    # Called with the first streamed text: a wrong value would fail after the call is paid.
    if on_delta is not None and not callable(on_delta):
        from .errors import InvalidInputError

        raise InvalidInputError(
            f"on_delta must be a function taking the text of each chunk, got "
            f"{type(on_delta).__name__}"
        )


def _collecting(
    on_delta: Callable[[str], None] | None,
) -> tuple[list[str], Callable[[str], None]]:
    """The deltas of a stream as they arrive, kept before the caller's ``on_delta`` sees
    them: what an interrupt (even one raised in ``on_delta``) leaves of the answer."""
    received: list[str] = []

    def collect(delta: str) -> None:
        received.append(delta)
        if on_delta is not None:
            on_delta(delta)

    return received, collect


def _deadline_or_none(deadline: float | None) -> float | None:
    """A call's own deadline, checked before anything is sent (None: the session's)."""
    from . import checks

    return None if deadline is None else checks.seconds("deadline", deadline)


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
