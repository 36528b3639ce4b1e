"""What a call returns to its caller: the answer plus the row it was logged as.

Both result types read their numbers from the run record, so a replayed answer looks
exactly like a fresh one (with ``cache_hit`` true).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.calls.logprobs import read_logprobs
from workbench.core.money import format_money
from workbench.core.pricing import is_estimated
from workbench.core.record import RunRecord
from workbench.core.usage import Usage
from workbench.store.unsaved import UnsavedRun

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from workbench.calls.logprobs import TokenLogprob

__all__ = ["ChatResponse", "EmbedResponse"]


def _usage_of(record: RunRecord) -> Usage:
    return Usage(
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        cached_tokens=record.cached_tokens,
        reasoning_tokens=record.reasoning_tokens,
        total_tokens=record.total_tokens,
        counted=record.tokens_counted,
    )


@dataclass
class _RunView:
    record: RunRecord
    # Set when the store refused the row: why, and the file that keeps it instead.
    unsaved: UnsavedRun | None = None

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def model(self) -> str:
        return self.record.response_model or self.record.model

    @property
    def usage(self) -> Usage:
        return _usage_of(self.record)

    @property
    def cost_usd(self) -> float | None:
        return self.record.cost_usd

    @property
    def cost(self) -> str:
        """The cost as people read it: ``$0``, ``$0.00042``, ``~$0.0012`` (worked out from
        counted tokens), ``unknown`` (never ``$0.0``: the quickstart printed that)."""
        estimated = self.cost_usd is not None and is_estimated(self.record.price_source)
        return format_money(self.cost_usd, estimated=estimated)

    @property
    def cache_hit(self) -> bool:
        return self.record.cache_hit

    @property
    def latency_s(self) -> float | None:
        return self.record.latency_s

    @property
    def retries(self) -> int:
        return self.record.retries

    @property
    def saved(self) -> bool:
        """True when the run's row is in the store (see ``unsaved`` when it is not)."""
        return self.unsaved is None


@dataclass
class ChatResponse(_RunView):
    """The answer to one chat call. ``str(response)`` is the text."""

    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.record.output or ""

    @property
    def finish_reason(self) -> str | None:
        return self.record.finish_reason

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return list(json.loads(self.record.tool_calls)) if self.record.tool_calls else []

    @property
    def ttft_s(self) -> float | None:
        return self.record.ttft_s

    @property
    def system_fingerprint(self) -> str | None:
        return self.record.system_fingerprint

    @property
    def refusal(self) -> str | None:
        """Why the model declined to answer (``message.refusal``); ``text`` is then empty."""
        return self.record.refusal

    @property
    def reasoning_summary(self) -> str | None:
        """The Responses API's summary of the model's reasoning (``reasoning_summary="auto"``)."""
        return self.record.reasoning_summary

    @property
    def logprobs(self) -> list[TokenLogprob]:
        """Each token with its log-probability and alternatives (``logprobs=True``)."""
        return read_logprobs(self.record.logprobs)

    @property
    def service_tier(self) -> str | None:
        return self.record.service_tier

    def __str__(self) -> str:
        return self.text


@dataclass
class EmbedResponse(_RunView):
    """Vectors for a list of texts, in order."""

    texts: list[str] = field(default_factory=list)
    embeddings: list[list[float]] = field(default_factory=list)

    @property
    def dimensions(self) -> int:
        return len(self.embeddings[0]) if self.embeddings else 0

    @property
    def vectors(self) -> npt.NDArray[np.float64]:
        """The vectors as an (n, d) array, each scaled to unit length."""
        import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

        array = np.asarray(self.embeddings, dtype=np.float64)
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        unit: npt.NDArray[np.float64] = np.divide(
            array, norms, out=np.zeros_like(array), where=norms > 0
        )
        return unit
