"""Sweeps through the Batch API, against a loopback server that plays OpenAI's Files and
Batches endpoints (tests/batchserver.py) and answers each request with a canned
completion; the integration test at the end has it forward them to the real local model.
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from batch_helpers import BATCH_COST, KEY, LIVE_COST, Start, batch_servers
from batchserver import STEP_S, BatchServer, Script

import workbench as wb
from workbench.calls import session as session_mod
from workbench.calls.session import Session
from workbench.core.errors import ConfigurationError, InvalidInputError
from workbench.core.money import format_money
from workbench.sweeps.batch import jsonl, runner
from workbench.sweeps.batch.runner import SharedBatchWarning, poll_delay
from workbench.sweeps.sweep import Sweep


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[Start]:
    yield from batch_servers(monkeypatch)


def make_sweep(words: tuple[str, ...] = ("cat", "dog", "owl"), **kwargs: object) -> Sweep:
    return wb.sweep(
        "Say {{word}}.",
        vars={"word": list(words)},
        model="gpt-4o-mini",
        max_tokens=20,
        **kwargs,  # type: ignore[arg-type]
    )


def statuses(server: BatchServer) -> list[str]:
    return [b.data["status"] for b in server.batches.values()]


# -- the whole lifecycle ------------------------------------------------------------------


@pytest.mark.usefixtures("backend")
def test_a_completed_batch_becomes_rows_at_the_batch_price(start: Start) -> None:
    server = start()
    s = make_sweep()
    df = s.run(mode="batch", progress=False)

    assert statuses(server) == ["completed"]
    assert len(df) == 3 and (df.status == "ok").all()
    assert set(df["mode"]) == {"batch"}
    assert list(df.output) == ["echo: Say cat.", "echo: Say dog.", "echo: Say owl."]
    assert df.cost_usd.tolist() == pytest.approx([BATCH_COST] * 3)
    # Time in the batch: created, then validating → in_progress → finalizing → completed.
    assert df.latency_s.tolist() == [3 * STEP_S] * 3
    assert (df.prompt_tokens == 1000).all() and (df.completion_tokens == 500).all()
    # One file, one line per point: custom_id is the run's identity, the body as planned.
    (lines,) = server.input_lines()
    assert [line["custom_id"] for line in lines] == [
        f"{h}:{i}" for h, i in zip(s.points.request_hash, s.points.sample_index, strict=True)
    ]
    assert all(line["url"] == "/v1/chat/completions" for line in lines)
    assert lines[0]["body"]["max_tokens"] == 20 and "stream" not in lines[0]["body"]
    batches = s.batches
    assert list(batches.status) == ["completed"] and batches.collected_at.notna().all()
    assert batches.loc[0, "completed"] == 3 and batches.loc[0, "requests"] == 3
    # Running again sends nothing: every point has its row.
    s.run(mode="batch", progress=False)
    assert len(server.batches) == 1 and len(wb.runs()) == 3


def test_a_batch_on_the_shared_store_says_its_points_are_not_claimed(
    start: Start, backend: str
) -> None:
    start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_sweep().run(mode="batch", progress=False)
    said = [str(w.message) for w in caught if issubclass(w.category, SharedBatchWarning)]
    if backend == "postgres":
        (message,) = said
        assert "not claimed" in message and "s.run()" in message
        assert "postgresql://" in message
    else:
        assert said == []  # a local file has no colleagues


def test_the_store_holds_the_batch_at_once_and_never_the_key(start: Start) -> None:
    server = start()
    s = make_sweep()
    (row,) = s.batch.submit()
    path = s.session.store_path
    assert row.status == "validating" and row.provider == "openai"
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT batch_id, sweep_id, input_file_id FROM batches").fetchall()
    assert found == [("batch_1", s.sweep_id, "file-1")]
    s.wait()
    assert all(h[2]["authorization"] == f"Bearer {KEY}" for h in server.log)
    for name in (path.name, path.name + "-wal"):
        file = path.parent / name
        if file.exists():
            assert KEY.encode() not in file.read_bytes()


@pytest.mark.usefixtures("backend")
def test_a_restarted_kernel_finds_the_batch_and_collects_it(start: Start) -> None:
    server = start()
    make_sweep().batch.submit()
    # A new kernel: a new session, the same store; the cell defines the same sweep.
    session_mod._SESSION.close_store()  # type: ignore[union-attr]
    session_mod._SESSION = Session()
    again = make_sweep()
    assert len(again.batches) == 1 and again.df.empty
    assert again.wait() is True
    assert statuses(server) == ["completed"] and len(again.df) == 3
    assert set(again.df["mode"]) == {"batch"}
    # Re-running the cell (run(mode="batch")) in yet another kernel submits nothing more.
    session_mod._SESSION = Session()
    make_sweep().run(mode="batch", progress=False)
    assert len(server.batches) == 1 and len(wb.runs()) == 3


def test_a_failed_batch_leaves_the_points_pending_and_says_why(start: Start) -> None:
    server = start(scripts=[Script(end="failed")])
    s = make_sweep()
    with pytest.raises(wb.APIError) as info:
        s.run(mode="batch", progress=False)
    assert str(info.value) == (
        "batch batch_1 failed (line 1 is wrong): its 3 runs were not sent; run again to "
        "submit them anew, or s.run() to send them live"
    )
    assert statuses(server) == ["failed"] and s.df.empty and s.progress.state == "failed"
    assert s.batches.loc[0, "message"] == "line 1 is wrong"
    s.run(mode="batch", progress=False)  # the next run sends them again, in a new batch
    assert statuses(server) == ["failed", "completed"] and len(s.df) == 3


def test_an_expired_batch_keeps_its_answers_and_the_rest_resume_live(start: Start) -> None:
    server = start(scripts=[Script(end="expired", answered=2)])
    s = make_sweep(("cat", "dog", "owl", "emu"))
    df = s.run(mode="batch", progress=False)
    assert statuses(server) == ["expired"]
    assert len(df) == 2 and set(df["mode"]) == {"batch"}  # never-run requests leave no row
    live = s.run()
    assert len(live) == 4 and (live.status == "ok").all()
    assert sorted(live["mode"]) == ["batch", "batch", "live", "live"]
    assert len([p for m, p, _ in server.log if p.endswith("/chat/completions")]) == 2
    assert live[live["mode"] == "live"].cost_usd.tolist() == pytest.approx([LIVE_COST] * 2)


def test_cancel_keeps_what_finished_and_a_new_batch_does_the_rest(start: Start) -> None:
    server = start(scripts=[Script(end="cancelled", answered=1, steps_in_progress=99)])
    s = make_sweep()
    s.batch.submit()
    s.batch.poll()  # validating → in_progress
    cancelled = s.cancel()
    assert list(cancelled.status) == ["cancelling"]
    assert [(m, p) for m, p, _ in server.log][-1] == ("POST", "/v1/batches/batch_1/cancel")
    assert s.wait() is True
    assert statuses(server) == ["cancelled"] and len(s.df) == 1
    df = s.run(mode="batch", progress=False)
    assert statuses(server) == ["cancelled", "completed"]
    assert len(server.input_lines()[1]) == 2  # only what the cancelled batch did not run
    assert len(df) == 3 and set(df["mode"]) == {"batch"}


def test_an_error_line_is_an_error_row_sent_again_next_time(start: Start) -> None:
    start()
    s = make_sweep(("cat", "FAIL"))
    df = s.run(mode="batch", progress=False)
    failed = df[df.status == "error"]
    assert len(failed) == 1 and failed.iloc[0]["mode"] == "batch"
    assert "HTTP 400: bad request for this line" in failed.iloc[0].error
    assert s.estimate(remaining=True).runs == 1


def test_a_live_run_is_refused_while_a_batch_is_open(start: Start) -> None:
    start()
    s = make_sweep()
    s.batch.submit()
    with pytest.raises(InvalidInputError, match="batch in progress: s.wait"):
        s.run()


def test_start_in_batch_mode_runs_in_the_background(start: Start) -> None:
    start()
    s = make_sweep()
    finished: list[Sweep] = []
    s.start(mode="batch", on_done=finished.append)
    assert s.wait(30) and finished == [s]
    assert len(s.df) == 3 and s.progress.state == "done"


# -- over the limits ------------------------------------------------------------------------


def test_a_sweep_over_the_request_limit_is_split_into_batches(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start()
    monkeypatch.setattr(jsonl, "MAX_BATCH_REQUESTS", 2)
    df = make_sweep(("a", "b", "c", "d", "e")).run(mode="batch", progress=False)
    assert [len(lines) for lines in server.input_lines()] == [2, 2, 1]
    assert len(df) == 5 and statuses(server) == ["completed"] * 3


def test_a_sweep_over_the_byte_limit_is_split_into_batches(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start()
    s = make_sweep(("a", "b", "c"))
    one_line = len(jsonl.request_line("x" * 66, s._plan[0].prepared.body))
    monkeypatch.setattr(jsonl, "MAX_BATCH_BYTES", 2 * one_line + 10)
    s.run(mode="batch", progress=False)
    assert [len(lines) for lines in server.input_lines()] == [2, 1]


def test_split_lines_keeps_order_and_refuses_a_line_above_the_limit() -> None:
    lines = [b"a" * 4, b"b" * 4, b"c" * 4]
    assert jsonl.split_lines(lines, max_requests=5, max_bytes=8) == [lines[:2], lines[2:]]
    assert jsonl.split_lines(lines, max_requests=1, max_bytes=100) == [[x] for x in lines]
    with pytest.raises(ValueError, match="above the batch file limit"):
        jsonl.split_lines([b"x" * 9], max_bytes=8)


# -- prices and estimates -------------------------------------------------------------------


def test_the_estimate_shows_the_live_and_the_batch_price(start: Start) -> None:
    start()
    estimate = make_sweep().estimate()
    assert estimate.cost_expected is not None and estimate.batch_cost_expected is not None
    assert estimate.batch_cost_expected * 2 == estimate.cost_expected
    assert estimate.batch_cost_high is not None and estimate.cost_high is not None
    assert estimate.batch_cost_high * 2 == estimate.cost_high
    text = str(estimate)
    assert f"{format_money(estimate.cost_expected)} expected" in text
    assert f"batch {format_money(estimate.batch_cost_expected)} expected" in text


def test_the_local_model_has_no_batch_price(in_tmp_dir: Path) -> None:
    estimate = wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, max_tokens=5).estimate()
    assert estimate.batch_cost_expected is None and "batch" not in str(estimate)


def test_quote_uses_the_tables_batch_variant() -> None:
    from workbench.core.pricing import quote
    from workbench.core.usage import Usage

    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)
    live = quote("gpt-4o-mini", usage).cost_usd
    batch = quote("gpt-4o-mini", usage, batch=True).cost_usd
    assert live == Decimal("0.75") and batch == Decimal("0.375")


# -- bad input: one line, nothing sent ----------------------------------------------------


def test_the_local_model_is_refused_in_one_line(in_tmp_dir: Path) -> None:
    s = wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, max_tokens=5)
    with pytest.raises(InvalidInputError, match="The local model has no Batch API"):
        s.run(mode="batch", progress=False)
    assert s.batches.empty


def test_a_provider_without_batches_is_refused_in_one_line(start: Start) -> None:
    server = start(supports_batches=False)
    with pytest.raises(ConfigurationError) as caught:
        make_sweep().run(mode="batch", progress=False)
    message = str(caught.value)
    assert "has no Batch API" in message and "HTTP 404" in message and "\n" not in message
    assert KEY not in message
    assert [p for _, p, _ in server.log] == ["/v1/files"]


def test_an_unknown_mode_is_refused(in_tmp_dir: Path) -> None:
    s = wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, max_tokens=5)
    with pytest.raises(InvalidInputError, match="mode must be one of 'live', 'batch'"):
        s.run(mode="bulk")


def test_a_batch_above_the_budget_is_refused_before_any_upload(start: Start) -> None:
    server = start()
    with pytest.raises(wb.BudgetExceededError, match="at the batch price"):
        make_sweep(budget=0.000001).run(mode="batch", progress=False)
    assert server.log == []


# -- the polling rule ---------------------------------------------------------------------


def test_polls_back_off_up_to_a_ceiling() -> None:
    delays = [poll_delay(n) for n in range(30)]
    assert delays[0] == runner.POLL_FIRST_S and delays == sorted(delays)
    assert delays[-1] == runner.POLL_MAX_S


def test_wait_gives_up_at_its_timeout_by_the_injected_clock(start: Start) -> None:
    start(scripts=[Script(steps_in_progress=10**6)])
    s = make_sweep()
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += max(seconds, 1.0)

    s.batch._sleep = sleep
    s.batch.submit()
    assert s.batch.wait(progress=False, timeout=5.0, clock=lambda: now[0]) is False
    assert len(slept) == 5 and s.df.empty and len(s.batch.open_rows()) == 1


def test_answer_lines_are_read_as_openai_writes_them() -> None:
    text = "\n".join(
        json.dumps(line)
        for line in (
            {"custom_id": "h:0", "response": {"status_code": 200, "body": {"choices": []}}},
            {
                "custom_id": "h:1",
                "response": None,
                "error": {"code": "batch_expired", "message": "m"},
            },
            {
                "custom_id": "h:2",
                "response": {"status_code": 500, "body": {"error": {"message": "x"}}},
            },
        )
    )
    ok, expired, failed = jsonl.parse_answers(text)
    assert ok.ok and not expired.ok and expired.error_code == "batch_expired"
    assert failed.error == "HTTP 500: x" and jsonl.identity_of("h:2") == ("h", 2)
    assert jsonl.identity_of("nonsense") is None


# -- the real local model, behind the batch server -------------------------------------------


@pytest.mark.integration
def test_a_batch_answered_by_the_real_local_model(start: Start) -> None:
    from workbench.api.local import CHAT_MODEL_ALIAS, get_local_server

    local = get_local_server()

    def forward(body: dict[str, object]) -> tuple[int, dict[str, object]]:
        reply = httpx.post(
            f"{local.chat_base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {local.api_key}"},
            timeout=120,
        )
        return reply.status_code, reply.json()

    start(respond=forward)
    s = wb.sweep(
        "Name a {{thing}}.",
        vars={"thing": ["fruit", "colour"]},
        model=CHAT_MODEL_ALIAS,
        max_tokens=8,
        temperature=0,
    )
    df = s.run(mode="batch", progress=False)
    assert len(df) == 2 and (df.status == "ok").all() and set(df["mode"]) == {"batch"}
    assert df.output.str.strip().str.len().gt(0).all()
    assert (df.completion_tokens > 0).all() and (df.response_model == CHAT_MODEL_ALIAS).all()
    # The same requests live give the same greedy answers: a batch changes nothing asked.
    live = wb.chat("Name a fruit.", model=CHAT_MODEL_ALIAS, max_tokens=8, temperature=0, fresh=True)
    assert live.text == df.output.iloc[0]


# -- the front ends: %%chat --batch and the panel's switch ------------------------------------


def test_chat_batch_sends_a_sweep_cell_through_the_batch_api(start: Start) -> None:
    from IPython.utils.capture import capture_output
    from testing_shell import open_shell

    server = start()
    cell = "%%chat -m gpt-4o-mini -t 0,1 --max-tokens 5 --batch --out s\nSay hi."
    with open_shell() as shell, capture_output() as captured:
        shell.run_cell(cell)
        shell.run_cell(cell)  # the cell again: everything is in the table, nothing is sent
        s = shell.user_ns["s"]
    assert statuses(server) == ["completed"] and set(s.df["mode"]) == {"batch"}
    assert len(wb.runs()) == 2
    shown = "\n".join(str(o.data.get("text/plain", "")) for o in captured.outputs)
    assert "batch $" in shown  # the estimate line: live and batch side by side


def test_chat_batch_on_a_single_call_is_one_clear_line(start: Start) -> None:
    from IPython.core.error import UsageError
    from testing_shell import open_shell

    server = start()
    with open_shell() as shell, pytest.raises(UsageError) as info:
        shell.run_cell("%%chat -m gpt-4o-mini --batch\nSay hi.")
    assert "--batch sends a sweep" in str(info.value) and "\n" not in str(info.value)
    assert server.log == []


def test_the_panel_switch_runs_the_sweep_as_a_batch(start: Start) -> None:
    from workbench.notebook.widgets import SweepPanel

    server = start()
    p = SweepPanel("Capital of {{country}}?", models=["gpt-4o-mini"])
    p.variables.value = "country = France, Japan"
    p.temperature.check.value = False
    assert "batch $" in p.estimate.value
    p.batch.value = True
    p.run_button.click()
    assert p.wait(timeout=30)
    assert statuses(server) == ["completed"] and p.progress.value == 2
    assert p.sweep is not None and set(p.sweep.df["mode"]) == {"batch"}
    assert "echo: Capital of Japan?" in p.results.value


# -- the store ----------------------------------------------------------------------------


def test_the_migration_adds_mode_and_the_batches_table(tmp_path: Path) -> None:
    from workbench.core.record import RunRecord
    from workbench.store import SQLiteStore
    from workbench.store.migrations import MIGRATIONS, migrate

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, migration in MIGRATIONS[:-1]:  # a store made before the Batch API
        migration(conn)
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (name,))
    conn.close()
    with SQLiteStore(path) as store:
        store.append(RunRecord(kind="chat", provider="openai", model="m"))
    with sqlite3.connect(path) as conn:
        assert migrate(conn) == []  # applied on open, once
        columns = [row[1] for row in conn.execute("PRAGMA table_info(batches)")]
        modes = conn.execute("SELECT mode FROM runs").fetchall()
    assert columns == [
        "batch_id",
        "provider",
        "sweep_id",
        "experiment",
        "input_file_id",
        "status",
        "created_at",
        "custom_ids",
        "output_file_id",
        "error_file_id",
        "total",
        "completed",
        "failed",
        "ended_at",
        "collected_at",
        "message",
    ]
    assert modes == [("live",)]


def test_the_cell_again_collects_the_batch_it_submitted(start: Start) -> None:
    from workbench.notebook.cellsweep import plan_note

    server = start(scripts=[Script(steps_in_progress=10**6)])
    s = make_sweep()
    s.batch.submit()
    note = plan_note(s, s.estimate(remaining=True))
    assert "batch batch_1 in progress: collecting it" in note.plain
    assert len(server.batches) == 1


# -- the HTTP client: retries and the error tree (what a real server will not do on demand) --


def test_the_batch_client_retries_and_raises_our_errors_without_the_key() -> None:
    from workbench.core.errors import AuthenticationError
    from workbench.sweeps.batch import BatchAPI

    replies = [
        httpx.Response(503, json={"error": {"message": "busy"}}),
        httpx.Response(
            200,
            json={
                "id": "batch_9",
                "status": "in_progress",
                "input_file_id": "file-1",
                "request_counts": {"total": 4, "completed": 1, "failed": 0},
            },
        ),
        httpx.Response(401, json={"error": {"message": f"bad key {KEY}"}}),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return replies.pop(0)

    slept: list[float] = []
    api = BatchAPI(
        "http://127.0.0.1:9/v1", KEY, transport=httpx.MockTransport(handler), sleep=slept.append
    )
    info = api.retrieve("batch_9")
    assert (info.status, info.total, info.completed) == ("in_progress", 4, 1)
    assert len(seen) == 2 and len(slept) == 1  # the 503 was retried once
    with pytest.raises(AuthenticationError) as caught:
        api.cancel("batch_9")
    assert "HTTP 401" in str(caught.value) and KEY not in str(caught.value)
    assert seen[-1].url.path == "/v1/batches/batch_9/cancel"


@pytest.mark.usefixtures("backend")
def test_a_batchs_answers_are_scored_by_the_sweeps_scorers(start: Start) -> None:
    start()
    s = make_sweep(("cat", "dog"), scorers=[wb.scorers.contains("cat")])
    df = s.run(mode="batch", progress=False)
    assert set(df["mode"]) == {"batch"}
    assert dict(zip(df.output, df["score:contains"], strict=True)) == {
        "echo: Say cat.": 1.0,
        "echo: Say dog.": 0.0,
    }
