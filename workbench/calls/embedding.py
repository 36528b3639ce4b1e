"""Embedding calls: one row per call, vectors cached per (model, dimensions, text).

Only texts the table has not seen are sent, so re-embedding a list that grew by one
line costs one line. Texts beyond what one request may carry (2,048 inputs, 300,000
tokens) are split into several requests, sent concurrently; the row counts them.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.calls.results import EmbedResponse
from workbench.core import checks
from workbench.core.errors import APIResponseError, StoreError, WorkbenchError
from workbench.core.identity import request_hash
from workbench.core.knobs import check
from workbench.core.record import RunRecord
from workbench.core.tokens import count_embedding_tokens, count_tokens
from workbench.core.usage import Usage

if TYPE_CHECKING:
    from workbench.api.client import EmbeddingResult
    from workbench.api.limits import CallLimits
    from workbench.api.providers import Provider
    from workbench.calls.session import Session

__all__ = [
    "embed",
    "aembed",
    "summarize_vectors",
    "split_inputs",
    "MAX_INPUTS_PER_REQUEST",
    "MAX_TOKENS_PER_REQUEST",
    "EMBED_CONCURRENCY",
]

# The API's limits on one embeddings request: the spec's maxItems for `input`, and
# OpenAI's cap on the tokens of all inputs together (its embedding models' 300,000).
MAX_INPUTS_PER_REQUEST = 2048
MAX_TOKENS_PER_REQUEST = 300_000
# Requests of one call in flight at once: enough to overlap round trips, few enough to
# stay clear of a provider's rate limits for one notebook cell.
EMBED_CONCURRENCY = 4


@dataclass
class _PreparedEmbed:
    provider: Provider
    model: str
    dimensions: int | None
    texts: list[str]
    record: RunRecord
    known: dict[str, list[float]] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        # dict.fromkeys keeps order and sends a repeated text once.
        return list(dict.fromkeys(t for t in self.texts if t not in self.known))

    def body(self, texts: list[str] | None = None) -> dict[str, Any]:
        inputs = self.missing if texts is None else texts
        body: dict[str, Any] = {"model": self.model, "input": inputs}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        body["encoding_format"] = "float"
        return body

    def batches(self) -> list[list[str]]:
        """The missing texts split into requests within the API's limits, in order."""
        missing = self.missing
        # A token is at least one UTF-8 byte: under the cap in bytes, no need to count.
        if sum(len(t.encode("utf-8")) for t in missing) <= MAX_TOKENS_PER_REQUEST:
            return split_inputs(missing, lambda text: 0)

        return split_inputs(missing, lambda text: count_tokens(text, self.model))


def split_inputs(
    texts: Sequence[str],
    tokens_of: Callable[[str], int],
    *,
    max_inputs: int = MAX_INPUTS_PER_REQUEST,
    max_tokens: int = MAX_TOKENS_PER_REQUEST,
) -> list[list[str]]:
    """``texts`` cut, in order, into runs of at most ``max_inputs`` texts and
    ``max_tokens`` tokens (a single text over the token cap goes alone: the API says why)."""
    batches: list[list[str]] = []
    current: list[str] = []
    tokens = 0
    for text in texts:
        size = tokens_of(text)
        if current and (len(current) == max_inputs or tokens + size > max_tokens):
            batches.append(current)
            current, tokens = [], 0
        current.append(text)
        tokens += size
    if current:
        batches.append(current)
    return batches


@dataclass
class _Sent:
    """One request of a call: its texts and what came back."""

    texts: list[str]
    result: EmbeddingResult | None = None
    error: WorkbenchError | None = None


def summarize_vectors(vectors: Sequence[Sequence[float]]) -> str:
    """The `output` column for an embedding call: shape and the first few numbers."""
    if not vectors:
        return "0 vectors"
    head = ", ".join(f"{x:.4f}" for x in vectors[0][:4])
    return f"{len(vectors)} vectors x {len(vectors[0])} dims; first: [{head}, ...]"


def _prepare(
    session: Session,
    texts: str | Sequence[str],
    *,
    model: str | None,
    provider: str | None,
    dimensions: int | None,
    fresh: bool,
    experiment: str | None,
    sweep_id: str | None,
) -> _PreparedEmbed:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise checks.InvalidInputError(
            f"texts must be a string or a list of strings, got {type(texts).__name__}"
            + ("" if not isinstance(texts, Sequence) else " holding other things")
        )
    texts = list(texts)
    if not texts:
        raise ValueError("Nothing to embed: pass at least one text")
    for index, text in enumerate(texts):
        checks.sendable(f"Text {index} to embed", text)

    dimensions = check("dimensions", dimensions)
    for name, value in (("model", model), ("provider", provider), ("experiment", experiment)):
        checks.text(name, value)
    chosen, model_name = session.resolve(model, provider)
    model_name = model_name or chosen.default_embed_model()
    if not model_name:
        raise WorkbenchError(
            f"Provider {chosen.name!r} has no default embedding model: pass model=..."
        )
    identity: dict[str, Any] = {"model": model_name, "input": texts}
    if dimensions is not None:
        identity["dimensions"] = dimensions
    record = RunRecord(
        kind="embed",
        provider=chosen.identity,
        model=model_name,
        experiment=experiment or session.experiment,
        sweep_id=sweep_id,
        params=json.dumps({k: v for k, v in identity.items() if k != "input"}),
        prompt="\n".join(texts),
        messages=json.dumps(texts),
        request_hash=request_hash(chosen.identity, identity),
    )
    prepared = _PreparedEmbed(chosen, model_name, dimensions, texts, record)
    if not fresh:
        prepared.known = session.store.get_embeddings(
            _vectors_key(chosen, model_name), dimensions, texts
        )
    return prepared


def _finish(
    session: Session, prepared: _PreparedEmbed, sent: list[_Sent] | None, latency_s: float = 0.0
) -> EmbedResponse:
    record = prepared.record
    vectors = dict(prepared.known)
    fetched: dict[str, list[float]] = {}
    if sent is None:
        # Every text came from the table: a replay, at no cost.
        record.cache_hit = True
        record.latency_s = None  # not measured: no API call (see prepare.replay_into)
        record.cost_usd = 0.0
        record.price_source = "cache"
        record.prompt_tokens = record.total_tokens = 0
        record.requests = 0
    else:
        answered = [(each.texts, each.result) for each in sent if each.result is not None]
        fetched = {
            text: vector
            for texts, result in answered
            for text, vector in zip(texts, result.vectors, strict=True)
        }
        # Requests that were answered were paid for: cached even if another one failed.
        try:
            key = _vectors_key(prepared.provider, prepared.model)
            session.store.put_embeddings(key, prepared.dimensions, fetched)
            cached = True
        except StoreError:
            cached = False  # the vectors are returned, and kept with the row if it fails too
        record.notes = "; ".join(note for _, r in answered for note in r.notes) or None
        record.requests = len(sent)
        record.latency_s = latency_s
        record.retries = sum(result.retries for _, result in answered)
        if answered:
            _warn_if_dimensions_ignored(prepared, fetched)
            record.response_model = answered[0][1].model
            session.record_usage_and_cost(record, _usage(prepared, answered), prepared.provider)
        record.params = json.dumps({k: v for k, v in prepared.body().items() if k != "input"})
        failed = next((each.error for each in sent if each.error is not None), None)
        if failed is not None:
            session.finish_error(record, failed, time.perf_counter() - latency_s)
            raise failed
        vectors.update(fetched)
        if cached:
            fetched = {}  # cached: the fallback file need not hold them
    ordered = [vectors[t] for t in prepared.texts]
    record.output = summarize_vectors(ordered)
    unsaved = session.save(record, extra={"embeddings": fetched} if fetched else None)
    return EmbedResponse(record=record, texts=prepared.texts, embeddings=ordered, unsaved=unsaved)


def _one_vector_per_text(
    prepared: _PreparedEmbed, texts: list[str], result: EmbeddingResult
) -> EmbeddingResult:
    """``result``, if it has one vector per text sent; else the call failed (an error row)."""
    sent = len(texts)
    if len(result.vectors) != sent:
        raise APIResponseError(
            f"Unusable answer from {prepared.model}: {len(result.vectors)} vectors "
            f"for {sent} texts",
            retries=result.retries,
        )
    return result


def _vectors_key(provider: Provider, model: str) -> str:
    """Under which model name the table keeps this provider's vectors.

    An OPENAI_BASE_URL other than OpenAI's qualifies it with the server, so that vectors,
    like runs, are replayed only for the server that made them; others keep the bare
    name, so vectors stored before this rule still replay.
    """
    return f"{model}@{provider.origin}" if provider.origin else model


def _warn_if_dimensions_ignored(prepared: _PreparedEmbed, fetched: dict[str, list[float]]) -> None:
    returned = len(next(iter(fetched.values()))) if fetched else None
    if prepared.dimensions is not None and returned != prepared.dimensions:
        # llama.cpp, for one, ignores `dimensions`: say so rather than let a
        # dimensions sweep compare identical vectors without anyone noticing.
        warnings.warn(
            f"{prepared.model} ignored dimensions={prepared.dimensions} and returned "
            f"{returned}-dimensional vectors (only some models, such as OpenAI's "
            "text-embedding-3-*, can shorten them)",
            stacklevel=5,
        )


def _usage(
    prepared: _PreparedEmbed, answered: list[tuple[list[str], EmbeddingResult]]
) -> Usage:
    """The requests' usage added up; counted with tiktoken if any request reported none."""
    prompts = [r.usage.prompt_tokens if r.usage is not None else None for _, r in answered]
    if any(n is None for n in prompts):
        return _counted([t for texts, _ in answered for t in texts], prepared.model)
    prompt = sum(n or 0 for n in prompts)
    return Usage(prompt_tokens=prompt, completion_tokens=0, total_tokens=prompt)


def _counted(texts: list[str], model: str) -> Usage:
    n = count_embedding_tokens(texts, model)
    return Usage(prompt_tokens=n, completion_tokens=0, total_tokens=n, counted=True)


def embed(
    session: Session,
    texts: str | Sequence[str],
    *,
    model: str | None = None,
    provider: str | None = None,
    dimensions: int | None = None,
    fresh: bool = False,
    experiment: str | None = None,
    sweep_id: str | None = None,
) -> EmbedResponse:
    prepared = _begin(session, texts, model, provider, dimensions, fresh, experiment, sweep_id)
    if not prepared.missing:
        return _finish(session, prepared, None)
    started = time.perf_counter()
    try:
        client = session.client(prepared.provider, embeddings=True)
    except WorkbenchError as exc:
        session.finish_error(prepared.record, exc, started)
        raise
    sent = [_Sent(texts) for texts in prepared.batches()]

    def send(each: _Sent) -> None:
        try:
            limited = _limited(session, prepared)  # the session's limits layer
            limited.wait_blocking()
            limited.sending()
            answer = client.embeddings(prepared.body(each.texts), on_retry=limited.on_retry)
            limited.on_success(answer.headers)
            each.result = _one_vector_per_text(prepared, each.texts, answer)
        except WorkbenchError as exc:
            each.error = exc

    if len(sent) == 1:
        send(sent[0])
    else:  # httpx.Client is thread-safe; a notebook's loop may be running, so threads
        with ThreadPoolExecutor(min(EMBED_CONCURRENCY, len(sent))) as pool:
            list(pool.map(send, sent))
    return _finish(session, prepared, sent, time.perf_counter() - started)


async def aembed(
    session: Session,
    texts: str | Sequence[str],
    *,
    model: str | None = None,
    provider: str | None = None,
    dimensions: int | None = None,
    fresh: bool = False,
    experiment: str | None = None,
    sweep_id: str | None = None,
) -> EmbedResponse:
    prepared = _begin(session, texts, model, provider, dimensions, fresh, experiment, sweep_id)
    if not prepared.missing:
        return _finish(session, prepared, None)
    started = time.perf_counter()
    try:
        client = session.aclient(prepared.provider, embeddings=True)
    except WorkbenchError as exc:
        session.finish_error(prepared.record, exc, started)
        raise
    sent = [_Sent(texts) for texts in prepared.batches()]
    slots = asyncio.Semaphore(EMBED_CONCURRENCY)

    async def send(each: _Sent) -> None:
        async with slots:
            try:
                limited = _limited(session, prepared)
                await limited.wait()
                limited.sending()
                answer = await client.embeddings(
                    prepared.body(each.texts), on_retry=limited.on_retry
                )
                limited.on_success(answer.headers)
                each.result = _one_vector_per_text(prepared, each.texts, answer)
            except WorkbenchError as exc:
                each.error = exc

    await asyncio.gather(*(send(each) for each in sent))
    return _finish(session, prepared, sent, time.perf_counter() - started)


def _limited(session: Session, prepared: _PreparedEmbed) -> CallLimits:
    """One request's place in the session's limits (refused at once when the server's
    limit frees up only after the deadline)."""
    return session.limits.call(prepared.provider.identity, prepared.model, 0, session.deadline)


def _begin(
    session: Session,
    texts: str | Sequence[str],
    model: str | None,
    provider: str | None,
    dimensions: int | None,
    fresh: bool,
    experiment: str | None,
    sweep_id: str | None,
) -> _PreparedEmbed:
    """Everything before the HTTP call, shared by :func:`embed` and :func:`aembed`."""
    prepared = _prepare(
        session,
        texts,
        model=model,
        provider=provider,
        dimensions=dimensions,
        fresh=fresh,
        experiment=experiment,
        sweep_id=sweep_id,
    )
    if prepared.missing:
        _check_budget(session, prepared)
        session.store.check_writable([prepared.record])  # before the call is paid for
    return prepared


def _check_budget(session: Session, prepared: _PreparedEmbed) -> None:
    """Under a session budget, refuse before sending as a chat call would: when the
    budget is spent, the price is unknown (unless allowed) or the texts cost more."""
    session.spend.check_embedding(
        prepared.missing, model=prepared.model, provider=prepared.provider
    )
