"""No lost or duplicated work: sweeps and single calls against a server that fails in every
way an OpenAI-compatible API can, through a real socket (tests/faults).

Every run ends as exactly one row, ``ok`` or ``error`` with a one-line reason; the
retries recorded account for every request the server received.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from faults import Fault, FaultServer, always, body_key
from faults.scenarios import EMBED_MIX, STREAM_MIX, SWEEP_MIX, Mix

import workbench as wb
from workbench.core.identity import canonical_json

pytestmark = pytest.mark.stress

KEY = "sk-fault-test-0123456789abcdef"
TIMEOUT_S = 1.0  # the client's; a stall lasts longer
STALL_S = 2.0


def start(mix: Mix, monkeypatch: pytest.MonkeyPatch) -> FaultServer:
    server = FaultServer(mix.plan(), stall_s=STALL_S).start()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    wb.configure(timeout=TIMEOUT_S, max_retries=2)
    return server


@pytest.fixture
def sweep_server(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[FaultServer]:
    server = start(SWEEP_MIX, monkeypatch)
    yield server
    server.stop()


def number_of(prompt: str) -> int:
    return int(prompt.rpartition("#")[2])


def check_rows(rows: pd.DataFrame, mix: Mix, server: FaultServer, path: str) -> None:
    """The properties every faulted batch must have, run by run."""
    assert rows.groupby(["request_hash", "sample_index"]).size().max() == 1, "duplicate rows"
    assert set(rows.status) <= {"ok", "error"}
    ok, error = rows[rows.status == "ok"], rows[rows.status == "error"]
    assert ok.error.isna().all()
    assert error.error.map(lambda e: isinstance(e, str) and e != "" and "\n" not in e).all()
    # What was planned for each run is what its row says.
    for row in rows.itertuples():
        scenario = mix.scenario(number_of(row.prompt))
        assert row.status == scenario.status, (scenario.name, row.error)
        # Missing text is NaN in pandas' own text dtype, not None.
        error = row.error if isinstance(row.error, str) else ""
        assert scenario.reason in error, (scenario.name, row.error)
        assert row.retries >= scenario.min_retries, (scenario.name, row.retries)
    # Every request the server received is a run or one of its recorded retries.
    assert server.count(path) == len(rows) + int(rows.retries.sum())
    by_number = Counter[int]()
    for request in server.received(path):
        by_number[number_of(request_prompt(request.body))] += 1
    for row in rows.itertuples():
        assert by_number[number_of(row.prompt)] == 1 + row.retries, row.prompt


def request_prompt(body: object) -> str:
    assert isinstance(body, dict)
    if "messages" in body:
        return str(body["messages"][-1]["content"])
    return " | ".join(body["input"])


def test_a_thousand_run_sweep_under_every_fault_loses_and_repeats_nothing(
    sweep_server: FaultServer,
) -> None:
    s = wb.sweep("Task #{{i}}", vars={"i": list(range(1000))}, model="gpt-4o-mini", concurrency=64)
    df = s.run(progress=False)
    rows = wb.runs(sweep_id=s.sweep_id)
    assert len(df) == len(rows) == len(wb.runs()) == 1000
    assert s.progress.done == 1000 and s.progress.state == "done"
    check_rows(rows, SWEEP_MIX, sweep_server, "/chat/completions")
    planned_errors = sum(
        count for name, count in SWEEP_MIX.counts.items() if SWEEP_MIX.named(name).status == "error"
    )
    assert int((rows.status == "error").sum()) == planned_errors > 0
    # Every kind of fault was served, the retries show in the table.
    served = set(sweep_server.faults)
    assert served >= set(Fault) - {
        Fault.SSE_CUT,
        Fault.SSE_CUT_JSON,
        Fault.ECHO_AUTH,
        Fault.ECHO_AUTH_400,
    }
    assert rows.retries.sum() >= sum(sc.min_retries for sc in SWEEP_MIX.deck) > 200

    # Once the API has recovered, running it again sends exactly the runs that errored.
    sweep_server.plan = always(Fault.OK)
    before = sweep_server.count()
    failed = set(rows[rows.status == "error"].prompt)
    again = wb.sweep(
        "Task #{{i}}", vars={"i": list(range(1000))}, model="gpt-4o-mini", concurrency=64
    )
    assert again.sweep_id == s.sweep_id and again.estimate(remaining=True).runs == len(failed)
    df = again.run(progress=False)
    resent = [request_prompt(r.body) for r in sweep_server.received()[before:]]
    assert sorted(resent) == sorted(failed)  # each once, and nothing else
    assert len(df) == 1000 and (df.status == "ok").all()
    assert len(wb.runs(sweep_id=s.sweep_id)) == 1000 + len(failed)  # errors stay as history


def test_streamed_calls_under_every_fault_are_one_row_each(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    server = start(STREAM_MIX, monkeypatch)
    deltas: Counter[int] = Counter()

    async def one(i: int, gate: asyncio.Semaphore) -> str:
        def on_delta(text: str) -> None:
            deltas[i] += len(text)

        async with gate:
            try:
                await wb.achat(f"Stream #{i}", model="gpt-4o-mini", stream=True, on_delta=on_delta)
            except wb.APIError as exc:
                return type(exc).__name__
            return "ok"

    async def everything() -> list[str]:
        gate = asyncio.Semaphore(16)  # below httpx's pool: every attempt reaches the server
        return await asyncio.gather(*(one(i, gate) for i in range(len(STREAM_MIX))))

    try:
        outcomes = asyncio.run(everything())
    finally:
        server.stop()
    rows = wb.runs()
    assert len(rows) == len(STREAM_MIX) == len(outcomes)
    check_rows(rows, STREAM_MIX, server, "/chat/completions")
    cut = rows[rows.error.fillna("").str.contains("stopped after")]
    assert len(cut) == 30 and (cut.output.str.len() > 0).all()  # the partial text is kept
    assert Counter(outcomes)["TruncatedStreamError"] == 30


def test_embedding_calls_under_faults_are_one_row_each(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    server = start(EMBED_MIX, monkeypatch)
    try:
        for i in range(len(EMBED_MIX)):
            with contextlib.suppress(wb.APIError):  # the rows are what is checked
                wb.embed(f"Text #{i}", model="text-embedding-3-small")
    finally:
        server.stop()
    rows = wb.runs()
    assert len(rows) == len(EMBED_MIX) and (rows.kind == "embed").all()
    check_rows(rows, EMBED_MIX, server, "/embeddings")


def test_the_server_counts_and_cuts_as_scripted(in_tmp_dir: Path) -> None:
    """The fault server itself: a reset is an RST, a stall ends by itself, keys repeat."""
    import httpx

    with FaultServer(always(Fault.RESET), stall_s=0.2) as server:
        with pytest.raises(httpx.ReadError, match="reset"):
            httpx.post(f"{server.base_url}/chat/completions", json={"a": 1})
        server.plan = always(Fault.STALL)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.base_url}/chat/completions", json={"a": 1}, timeout=0.1)
        with pytest.raises(httpx.RemoteProtocolError):  # the stall closes after 0.2 s
            httpx.post(f"{server.base_url}/chat/completions", json={"a": 1}, timeout=5)
        assert server.count() == 3
        key = body_key(canonical_json({"a": 1}).encode())
        assert server.attempts() == Counter({key: 3})
