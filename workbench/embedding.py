"""Embedding calls: one row per call, vectors cached per (model, dimensions, text).

Only texts the table has not seen are sent, so re-embedding a list that grew by one
line costs one line.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import APIResponseError, StoreError, WorkbenchError
from .identity import request_hash
from .record import RunRecord
from .results import EmbedResponse
from .usage import Usage

if TYPE_CHECKING:
    from .client import EmbeddingResult
    from .providers import Provider
    from .session import Session

__all__ = ["embed", "aembed", "summarize_vectors"]


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

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": self.missing}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        body["encoding_format"] = "float"
        return body


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
    from . import checks

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
    from .knobs import check

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
        provider=chosen.name,
        model=model_name,
        experiment=experiment or session.experiment,
        sweep_id=sweep_id,
        params=json.dumps({k: v for k, v in identity.items() if k != "input"}),
        prompt="\n".join(texts),
        messages=json.dumps(texts),
        request_hash=request_hash(chosen.name, identity),
    )
    prepared = _PreparedEmbed(chosen, model_name, dimensions, texts, record)
    if not fresh:
        prepared.known = session.store.get_embeddings(model_name, dimensions, texts)
    return prepared


def _finish(
    session: Session, prepared: _PreparedEmbed, result: EmbeddingResult | None
) -> EmbedResponse:
    record = prepared.record
    vectors = dict(prepared.known)
    fetched: dict[str, list[float]] = {}
    if result is None:
        # Every text came from the table: a replay, at no cost.
        record.cache_hit = True
        record.latency_s = 0.0
        record.cost_usd = 0.0
        record.price_source = "cache"
        record.prompt_tokens = record.total_tokens = 0
    else:
        fetched = dict(zip(prepared.missing, result.vectors, strict=True))
        returned = len(result.vectors[0]) if result.vectors else None
        if prepared.dimensions is not None and returned != prepared.dimensions:
            # llama.cpp, for one, ignores `dimensions`: say so rather than let a
            # dimensions sweep compare identical vectors without anyone noticing.
            warnings.warn(
                f"{prepared.model} ignored dimensions={prepared.dimensions} and returned "
                f"{returned}-dimensional vectors (only some models, such as OpenAI's "
                "text-embedding-3-*, can shorten them)",
                stacklevel=4,
            )
        vectors.update(fetched)
        try:
            session.store.put_embeddings(prepared.model, prepared.dimensions, fetched)
            fetched = {}  # cached: the fallback file need not hold them
        except StoreError:
            pass  # the vectors are returned, and kept with the row if it fails too
        record.notes = "; ".join(result.notes) or None
        record.response_model = result.model
        record.latency_s = result.latency_s
        record.retries = result.retries
        record.params = json.dumps({k: v for k, v in prepared.body().items() if k != "input"})
        usage = result.usage or _counted(prepared)
        session._record_usage_and_cost(record, usage, prepared.provider)
    ordered = [vectors[t] for t in prepared.texts]
    record.output = summarize_vectors(ordered)
    unsaved = session.save(record, extra={"embeddings": fetched} if fetched else None)
    return EmbedResponse(record=record, texts=prepared.texts, embeddings=ordered, unsaved=unsaved)


def _one_vector_per_text(prepared: _PreparedEmbed, result: EmbeddingResult) -> EmbeddingResult:
    """``result``, if it has one vector per text sent; else the call failed (an error row)."""
    sent = len(prepared.missing)
    if len(result.vectors) != sent:
        raise APIResponseError(
            f"Unusable answer from {prepared.model}: {len(result.vectors)} vectors "
            f"for {sent} texts",
            retries=result.retries,
        )
    return result


def _counted(prepared: _PreparedEmbed) -> Usage:
    from .tokens import count_embedding_tokens

    n = count_embedding_tokens(prepared.missing, prepared.model)
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
        result = _one_vector_per_text(prepared, client.embeddings(prepared.body()))
    except WorkbenchError as exc:
        session.finish_error(prepared.record, exc, started)
        raise
    return _finish(session, prepared, result)


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
        result = _one_vector_per_text(prepared, await client.embeddings(prepared.body()))
    except WorkbenchError as exc:
        session.finish_error(prepared.record, exc, started)
        raise
    return _finish(session, prepared, result)


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
        session.store.check_writable()  # before the call is paid for, not after
    return prepared


def _check_budget(session: Session, prepared: _PreparedEmbed) -> None:
    """Under a session budget, refuse before sending as a chat call would: when the
    budget is spent, the price is unknown (unless allowed) or the texts cost more."""
    remaining = session.remaining_budget()
    if remaining is None:
        return
    from .tokens import count_embedding_tokens

    n = count_embedding_tokens(prepared.missing, prepared.model)
    usage = Usage(prompt_tokens=n, completion_tokens=0, total_tokens=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the call itself warns of an unknown price
        cost = session.quote(prepared.model, usage, prepared.provider).cost_usd
    session.refuse_beyond_budget(prepared.model, cost, remaining)
