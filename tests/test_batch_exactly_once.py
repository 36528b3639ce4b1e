"""Batch API answers are collected exactly once (issue 20, item 3), against the batch test
server (tests/batchserver.py) built from OpenAI's Batch API documentation:

- Output file lines (platform.openai.com/docs/guides/batch): ``{"id": "batch_req_123",
  "custom_id": "request-2", "response": {"status_code": 200, "request_id": "req_123",
  "body": {...}}, "error": null}``; "the output line order may not match the input line
  order ... use the custom_id field which will be present in each line of your output
  file". The batch object's ``error_file_id`` is "the ID of the file containing the
  outputs of requests with errors", ``output_file_id`` that "of successfully executed
  requests".
- ``POST /v1/batches`` takes ``metadata``: "Set of 16 key-value pairs that can be attached
  to an object ... useful for storing additional information about the object in a
  structured format, and querying for objects via API or the dashboard."
- ``GET /v1/batches`` lists batches: ``after`` is "a cursor for use in pagination. after
  is an object ID that defines your place in the list ... ending with obj_foo, your
  subsequent call can include after=obj_foo in order to fetch the next page of the list";
  ``limit`` "can range between 1 and 100, and the default is 20"; the answer is
  ``{"object": "list", "data": [...], "first_id", "last_id", "has_more"}``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from batch_helpers import BATCH_COST, KEY, Start, batch_servers
from batchserver import BatchServer, Script

import workbench as wb
from workbench.sweeps.batch import BatchAPI, jsonl
from workbench.sweeps.batch import api as api_mod
from workbench.sweeps.batch.runner import MissingAnswersWarning
from workbench.sweeps.sweep import Sweep

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "batch-exactly-once"


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[Start]:
    yield from batch_servers(monkeypatch)


def make_sweep(words: tuple[str, ...] = ("cat", "dog", "owl", "emu")) -> Sweep:
    return wb.sweep(
        "Say {{word}}.",
        vars={"word": list(words)},
        model="gpt-4o-mini",
        max_tokens=20,
        experiment=EXPERIMENT,
    )


def chat_calls(server: BatchServer) -> int:
    return sum(1 for _, path, _ in server.log if path.endswith("/chat/completions"))


# -- two kernels, one batch -----------------------------------------------------------------

WAITER = """
import sys
from workbench.sweeps.batch import runner
import workbench as wb
runner.POLL_FIRST_S = 0.0
words = [f"w{i}" for i in range(int(sys.argv[1]))]
s = wb.sweep("Say {{word}}.", vars={"word": words}, model="gpt-4o-mini", max_tokens=20,
             experiment=sys.argv[2])
assert s.wait(timeout=120) is True
print("collected", len(s.df))
"""


@pytest.mark.usefixtures("backend")
def test_two_kernels_waiting_on_one_batch_log_each_answer_once(start: Start) -> None:
    # Every download of a result file waits for the other kernel's (a few seconds at
    # most), so the two collections overlap for certain: today each logged every answer.
    server = start(content_gate=2)
    words = 40
    s = wb.sweep(
        "Say {{word}}.",
        vars={"word": [f"w{i}" for i in range(words)]},
        model="gpt-4o-mini",
        max_tokens=20,
        experiment=EXPERIMENT,
    )
    s.batch.submit()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    kernels = [
        subprocess.Popen(
            [sys.executable, "-c", WAITER, str(words), EXPERIMENT],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [k.communicate(timeout=240) for k in kernels]
    for kernel, (out, err) in zip(kernels, outputs, strict=True):
        assert kernel.returncode == 0, err[-3000:]
        assert out.strip() == f"collected {words}"
    runs = wb.runs()
    assert len(runs) == words and (runs.status == "ok").all()
    assert runs.groupby(["request_hash", "sample_index"]).size().max() == 1
    assert runs.cost_usd.sum() == pytest.approx(words * BATCH_COST)  # counted once
    assert s.batches.collected_at.notna().all() and len(server.batches) == 1


# -- a result file that is not all readable -------------------------------------------------


def test_a_malformed_output_line_is_an_error_row_and_every_other_answer_is_kept(
    start: Start,
) -> None:
    server = start(scripts=[Script(malformed=(1,))])
    s = make_sweep()
    with pytest.warns(MissingAnswersWarning, match=r"without a usable answer for 1 of 4"):
        df = s.run(mode="batch", progress=False)
    assert sorted(df.status) == ["error", "ok", "ok", "ok"]
    (failed,) = df[df.status == "error"].itertuples()
    assert failed.prompt == "Say dog." and failed.mode == "batch"
    assert failed.error.startswith("batch batch_1: line ") and "cannot be read" in failed.error
    assert s.batches.collected_at.notna().all()
    assert s.cancel().status.tolist() == ["completed"]  # nothing left to cancel: no error
    live = s.run()  # resume live: only the unreadable one is sent
    assert chat_calls(server) == 1
    assert (live[live.prompt == "Say dog."].status == "ok").any()


def test_a_line_cut_before_its_custom_id_leaves_its_request_missing_and_resendable(
    start: Start,
) -> None:
    start(scripts=[Script(garbled=(3,))])
    s = make_sweep()
    with pytest.warns(MissingAnswersWarning, match=r"line 4 cannot be read.*'Say emu.'"):
        df = s.run(mode="batch", progress=False)
    assert sorted(df.status) == ["error", "ok", "ok", "ok"]
    assert df[df.status == "error"].prompt.tolist() == ["Say emu."]
    assert s.estimate(remaining=True).runs == 1


def test_a_line_with_no_custom_id_is_reported_and_its_request_named_missing() -> None:
    text = '{"custom_id": "h:0", "response": {"status_code": 200, "body": {}}}\n{"id": "bat'
    answers, unreadable = jsonl.read_answers(text)
    assert [a.custom_id for a in answers] == ["h:0"]
    assert len(unreadable) == 1 and unreadable[0].startswith("line 2 cannot be read")


def test_a_completed_batch_missing_answers_names_them_and_the_next_run_sends_them(
    start: Start,
) -> None:
    server = start(scripts=[Script(dropped=(2,))])
    s = make_sweep()
    with pytest.warns(MissingAnswersWarning) as caught:
        df = s.run(mode="batch", progress=False)
    # Only the workbench's warning: a socket left by an earlier test may warn here too.
    (message,) = [str(w.message) for w in caught if w.category is MissingAnswersWarning]
    assert "batch batch_1 completed without a usable answer for 1 of 4" in message
    assert "'Say owl.'" in message and "sends them again" in message
    assert len(df) == 4 and sorted(df.status) == ["error", "ok", "ok", "ok"]
    (missing,) = df[df.status == "error"].itertuples()
    assert missing.prompt == "Say owl." and "has no answer for this request" in missing.error
    assert s.estimate(remaining=True).runs == 1
    again = s.run(mode="batch", progress=False)  # a new batch of just that one
    assert [len(lines) for lines in server.input_lines()] == [4, 1]
    assert (again[again.prompt == "Say owl."].status == "ok").any()


def test_a_500_then_a_200_for_one_request_keeps_the_paid_answer(start: Start) -> None:
    server = start(scripts=[Script(retried=(0,))])
    s = make_sweep()
    df = s.run(mode="batch", progress=False)
    assert len(df) == 4 and (df.status == "ok").all()  # today: an error row, sent again
    assert df.cost_usd.sum() == pytest.approx(4 * BATCH_COST)
    s.run(mode="batch", progress=False)
    assert len(server.batches) == 1 and chat_calls(server) == 0  # nothing resent


def test_best_answers_prefers_a_usable_answer_in_either_order() -> None:
    ok = jsonl.Answer("h:0", 200, {"choices": []}, None, None)
    failed = jsonl.Answer("h:0", 500, {"error": {}}, "HTTP 500: x", None)
    assert jsonl.best_answers([failed, ok])["h:0"] is ok
    assert jsonl.best_answers([ok, failed])["h:0"] is ok


# -- one submission, one batch ----------------------------------------------------------------


def test_a_create_whose_answer_is_lost_makes_one_batch(start: Start) -> None:
    # The server makes the batch, then holds its answer past the client's read timeout.
    server = start(create_delays=[3.0])
    wb.configure(timeout=0.5, max_retries=2)
    s = make_sweep()
    df = s.run(mode="batch", progress=False)
    creates = [p for m, p, _ in server.log if m == "POST" and p == "/v1/batches"]
    lists = [p for m, p, _ in server.log if m == "GET" and p.startswith("/v1/batches?")]
    assert len(creates) == 1 and len(server.batches) == 1  # today: 2 batches, 1 tracked
    assert lists and lists[0] == "/v1/batches?limit=100"
    assert list(s.batches.batch_id) == ["batch_1"]
    assert len(df) == 4 and (df.status == "ok").all()


def test_a_create_that_was_not_made_is_sent_again_once(start: Start) -> None:
    # A 5xx that created nothing: the listing finds no batch, so one retry is safe.
    server = start()
    wb.configure(max_retries=1)
    server.supports_batches = True
    calls = {"n": 0}
    create = server._create

    def failing_once(body: dict[str, object]) -> tuple[int, object]:
        calls["n"] += 1
        if calls["n"] == 1:
            return 502, {"error": {"message": "bad gateway"}}
        return create(body)

    server._create = failing_once  # type: ignore[method-assign]
    df = make_sweep().run(mode="batch", progress=False)
    assert calls["n"] == 2 and len(server.batches) == 1 and (df.status == "ok").all()


def test_find_created_pages_with_after_until_has_more_is_false(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start()
    monkeypatch.setattr(api_mod, "LIST_PAGE_SIZE", 2)
    api = BatchAPI(server.base_url, KEY, max_retries=0)
    files = [api.upload(f"f{i}.jsonl", b'{"custom_id": "h:0", "body": {}}\n') for i in range(5)]
    made = [api.create(file_id, {"workbench_sweep": f"s{i}"}) for i, file_id in enumerate(files)]
    found = api.find_created(files[0], {"workbench_sweep": "s0"})  # the oldest: last page
    assert found is not None and found.id == made[0].id
    pages = [p for m, p, _ in server.log if m == "GET" and p.startswith("/v1/batches?")]
    assert pages == [
        "/v1/batches?limit=2",
        "/v1/batches?limit=2&after=batch_4",
        "/v1/batches?limit=2&after=batch_2",
    ]
    assert api.find_created(files[0], {"workbench_sweep": "other"}) is None
    api.close()


# -- the import circle batch -> runner -> sweeps -> batch ---------------------------------


def test_the_batch_package_never_imports_the_sweeps() -> None:
    package = ROOT / "workbench" / "batch"
    imported = []
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported.append((path.name, node.level, node.module or ""))
    assert not [found for found in imported if found[1] == 2 and found[2].split(".")[0] == "sweeps"]
    assert not [found for found in imported if found[2].startswith("workbench.sweeps.sweep")]


def test_a_lost_create_that_cannot_be_checked_is_one_clear_line_and_not_resent() -> None:
    # A provider without GET /batches (a MockTransport: the test server lists batches).
    import httpx

    from workbench.core.errors import APIError

    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        if request.method == "POST":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(404, json={"error": {"message": "Unknown request URL"}})

    slept: list[float] = []
    api = BatchAPI(
        "http://127.0.0.1:9/v1",
        KEY,
        max_retries=3,
        transport=httpx.MockTransport(handler),
        sleep=slept.append,
    )
    with pytest.raises(APIError) as caught:
        api.create("file-1", {"workbench_sweep": "s"})
    message = str(caught.value)
    assert message.startswith("POST /batches for file-1 got no answer (ReadTimeout")
    assert "look at the provider's batches before running the sweep again" in message
    assert KEY not in message
    assert seen == [("POST", "/v1/batches"), ("GET", "/v1/batches")]  # one create only
