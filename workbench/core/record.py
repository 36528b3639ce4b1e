"""The run record: one row of the experiment table per call, success or failure.

This is the central contract of the workbench (see the column table in docs/stores.md). The store
persists it, the session fills it, the front ends display it.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Literal

__all__ = ["RunRecord", "COLUMNS", "LINEAGE_COLUMNS", "new_run_id", "current_user"]

Kind = Literal["chat", "embed"]
Status = Literal["ok", "error"]
Mode = Literal["live", "batch"]


def new_run_id() -> str:
    """A unique id that sorts by creation time (ns clock + 64 random bits)."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


def current_user() -> str | None:
    """Who is running this: ``WORKBENCH_USER``, else the OS user (a shared store's filter)."""
    return os.environ.get("WORKBENCH_USER") or _os_user()


@functools.cache
def _os_user() -> str | None:
    # Asked once: with no $USER, getpass reads the passwd file, ~100 us for each row.
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class RunRecord:
    kind: Kind
    provider: str
    model: str
    run_id: str = field(default_factory=new_run_id)
    created_at: datetime = field(default_factory=_utcnow)
    experiment: str = "default"
    sweep_id: str | None = None
    response_model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    params: str = "{}"  # JSON of every request parameter actually sent (never the key)
    system: str | None = None
    prompt: str | None = None
    messages: str | None = None  # JSON list of messages (chat) or of texts (embed)
    template: str | None = None
    variables: str | None = None  # JSON
    output: str | None = None
    finish_reason: str | None = None
    tool_calls: str | None = None  # JSON
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    tokens_counted: bool = False  # True: counted with tiktoken, the server reported none
    cost_usd: float | None = None
    price_source: str | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    system_fingerprint: str | None = None
    request_hash: str = ""
    sample_index: int = 0
    cache_hit: bool = False
    status: Status = "ok"
    error: str | None = None
    retries: int = 0
    # What the reply held that the table cannot (a NaN token count, a number as model...)
    # and was stored as empty instead, or how the row came to be (an interrupt): "; "-joined.
    notes: str | None = None
    # Added by migration m005_response_fields (issue 14): kept as returned, streamed or not.
    refusal: str | None = None  # message.refusal: the model declined; output is then empty
    logprobs: str | None = None  # JSON [[token, logprob, [[alt, logprob], ...]], ...]
    service_tier: str | None = None
    requests: int | None = None  # HTTP requests an embedding call was split into
    # Datasets (migration m006_datasets): the test case this run answered. NULL outside datasets.
    dataset: str | None = None  # the name given to wb.dataset; None for unnamed data
    dataset_version: str | None = None  # content hash of the dataset's rows
    item_id: str | None = None  # hash of the test case's row: pairs runs across sweeps
    expected: str | None = None  # the reference answer as text (JSON for non-strings)
    # Added by migration m008_runs_mode_and_batches (issue 15): how the call was sent,
    # one request at a time or in a Batch API file (workbench.sweeps.batch).
    mode: Mode = "live"
    # Who ran it (migration m009_add_runs_user): WORKBENCH_USER or the OS user.
    user: str | None = field(default_factory=current_user)
    # Migration m012_runs_api (issue 23): the API a chat call went to, "chat" (Chat
    # Completions) or "responses"; and the Responses API's reasoning summaries.
    api: str = "chat"
    reasoning_summary: str | None = None
    # Migration m013_runs_lineage (issue 25): a wb.optimize evaluation's candidate (a short
    # hash of its texts), the candidate it was proposed from, and the run id of the
    # reflection call that proposed it. NULL outside a search; never part of the identity.
    candidate: str | None = None
    parent: str | None = None
    reflection: str | None = None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RunRecord))
# The columns a layer above may stamp on a sweep's runs (Sweep.mark): how a run came to be.
LINEAGE_COLUMNS: tuple[str, ...] = ("candidate", "parent", "reflection")
