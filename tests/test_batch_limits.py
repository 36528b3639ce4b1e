"""Batch submissions go through the one limits layer (issue 21, item 3): file uploads,
batch creates, polls and downloads are paced by it and their 429s are heard there, with
``retry-after`` honoured and the chat calls' wording when they give up.

OpenAI's rate-limit guide: "If you hit a rate limit, you'll receive a 429 error", and the
Batch API guide: batches have "a separate pool of significantly higher rate limits" —
limits of their own, so the layer paces them apart from any model's. The 429s come from
tests/batchserver.py, which answers ``retry-after: 1`` with ``x-ratelimit-*`` headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from batch_helpers import KEY, Start, batch_servers
from batchserver import BatchServer

import workbench as wb
from workbench.api.limits import Limits
from workbench.core.errors import RateLimitError
from workbench.sweeps.batch.api import BATCH_LIMITS, BatchAPI


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[Start]:
    yield from batch_servers(monkeypatch)


def requests_to(server: BatchServer, method: str, path: str) -> int:
    return sum(1 for m, p, _ in server.log if m == method and p.split("?")[0] == path)


def test_a_429_on_create_and_poll_waits_its_retry_after_in_the_limits_layer() -> None:
    refusals = {"POST /v1/batches": 2, "GET /v1/batches/": 1}
    with BatchServer(refusals=refusals) as server:
        limits = Limits()
        slept: list[float] = []
        api = BatchAPI(server.base_url, KEY, max_retries=2, sleep=slept.append, limits=limits)
        file_id = api.upload("in.jsonl", b"")
        created = api.create(file_id)
        polled = api.retrieve(created.id)
    assert polled.id == created.id
    assert requests_to(server, "POST", "/v1/batches") == 3  # two 429s, then made: once
    assert requests_to(server, "GET", f"/v1/batches/{created.id}") == 2
    # Each 429's "retry-after: 1" waited (the pacer may ask for a little more, never less).
    assert len([s for s in slept if s >= 1.0]) >= 3
    # Heard by the layer: the Files and Batches limits of this URL were paused.
    pacer = limits.pacer(server.base_url.rstrip("/"), BATCH_LIMITS)
    assert pacer.paused_until > 0


def test_a_429_storm_on_create_gives_up_in_the_chat_calls_words() -> None:
    with BatchServer(refusals={"POST /v1/batches": 99}) as server:
        api = BatchAPI(server.base_url, KEY, max_retries=1, sleep=lambda s: None)
        with pytest.raises(RateLimitError) as refused:
            api.create(api.upload("in.jsonl", b""))
    assert requests_to(server, "POST", "/v1/batches") == 2
    assert "HTTP 429" in str(refused.value) and "Rate limit reached" in str(refused.value)
    assert KEY not in str(refused.value)


def test_a_sweeps_batch_goes_through_the_sessions_limits(start: Start) -> None:
    server = start()
    server.refusals = {"POST /v1/batches": 1, "GET /v1/batches/": 1}
    wb.configure(max_retries=2)
    s = wb.sweep("Say {{w}}.", vars={"w": ["cat", "dog"]}, model="gpt-4o-mini", max_tokens=20)
    df = s.run(mode="batch", progress=False)
    assert list(df.status) == ["ok", "ok"]
    assert requests_to(server, "POST", "/v1/batches") == 2
    pacer = s.session.limits.pacer(server.base_url.rstrip("/"), BATCH_LIMITS)
    assert pacer.paused_until > 0
