"""Nothing paid is lost: odd reply values become empty cells with a note, rows the store
refuses are kept in a file beside it (and the answer still returned), and a stream stopped
by Ctrl-C or a cancelled task is a row holding its partial answer and its spend.

Real loopback HTTP (tests/loopback.py) and a real SQLite store throughout. A full disk is
SQLite's own: ``PRAGMA max_page_count`` on the store's connection, set by the server
while it answers, so the store fills up during the call, after any check made before it.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply, chunk
from testing_shell import open_shell

import workbench as wb
from workbench.calls.session import get_session
from workbench.core.errors import APIResponseError
from workbench.store.unsaved import UnsavedRunWarning
from workbench.sweeps.sweep import Sweep

KEY = "sk-test-loopback-0123456789"  # the key start_api sets
Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]
LONG = "word " * 3_000  # a row this long needs new pages of the file


def fill_disk() -> None:
    """The store's disk is full from now on: SQLite may not add a page to the file."""
    store = get_session().store
    with store._lock:
        assert store._conn is not None
        store._conn.execute("PRAGMA max_page_count = 1")  # clamped to the current size


def free_disk() -> None:
    store = get_session().store
    with store._lock:
        assert store._conn is not None
        store._conn.execute("PRAGMA max_page_count = 1073741823")


def fallback_lines(store: Path) -> list[dict[str, Any]]:
    path = store.with_name(f"{store.stem}.unsaved.jsonl")
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    assert KEY not in text
    return [json.loads(line) for line in text.splitlines()]


def prompt_of(request: Received) -> str:
    return str(request.body["messages"][-1]["content"])


# -- reply values the table cannot hold ------------------------------------------------


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = body
    for name in parents:
        target = target[int(name)] if name.isdigit() else target[name]
    target[last] = value


ODD_VALUES = [
    ("usage.prompt_tokens", 10**20, "prompt_tokens", "too large to store"),
    ("usage.prompt_tokens", math.nan, "prompt_tokens", "not a whole number"),
    ("usage.completion_tokens", math.inf, "completion_tokens", "not a whole number"),
    ("usage.completion_tokens", -5, "completion_tokens", "negative"),
    ("usage.total_tokens", "15", "total_tokens", "not a number"),
    ("usage.prompt_tokens_details", [4], "cached_tokens", "not an object"),
    ("model", 42, "response_model", "not text"),
    ("choices.0.finish_reason", 7, "finish_reason", "not text"),
    ("system_fingerprint", ["fp", 1], "system_fingerprint", "not text"),
    ("choices.0.message.tool_calls", 5, "tool_calls", "not a list"),
]


@pytest.mark.parametrize(("path", "value", "column", "note"), ODD_VALUES)
def test_an_odd_reply_value_is_an_empty_cell_with_a_note(
    start_api: Start, path: str, value: Any, column: str, note: str
) -> None:
    def handler(request: Received) -> Reply:
        reply = chat_reply("Paris.", prompt_tokens=12, completion_tokens=3, cached_tokens=2)
        _set(reply.body, path, value)
        return reply

    start_api(handler)
    response = wb.chat("Capital of France?", model="gpt-4o-mini")
    assert response.text == "Paris." and response.saved
    row = wb.runs().iloc[0]
    assert row.status == "ok"
    assert pd.isna(row[column])
    assert f"{path.replace('choices.0.', '')} was" in row.notes and note in row.notes


@pytest.mark.parametrize("path", ["usage.prompt_tokens", "usage.completion_tokens"])
def test_a_dropped_token_count_leaves_the_cost_unknown_not_partial(
    start_api: Start, path: str
) -> None:
    def handler(request: Received) -> Reply:
        reply = chat_reply("Paris.", prompt_tokens=12, completion_tokens=3)
        _set(reply.body, path, -5)
        return reply

    start_api(handler)
    wb.chat("Capital of France?", model="gpt-4o-mini")
    row = wb.runs().iloc[0]
    assert pd.isna(row.cost_usd) and pd.isna(row.price_source)


def test_surrogate_escapes_are_stored_as_utf8(start_api: Start) -> None:
    start_api(lambda request: chat_reply("caf\ud83d"))  # half an emoji
    assert wb.chat("Say café", model="gpt-4o-mini").text == "caf\ufffd"
    row = wb.runs().iloc[0]
    assert row.output == "caf\ufffd" and "surrogates" in row.notes


def test_a_pair_split_between_stream_chunks_is_joined_again(start_api: Start) -> None:
    events = [chunk("smile "), chunk("\ud83d"), chunk("\ude00"), chunk(finish_reason="stop")]
    start_api(lambda request: Reply(events=[*events, "[DONE]"]))
    response = wb.chat("Smile", model="gpt-4o-mini", stream=True)
    assert response.text == "smile \U0001f600"
    assert wb.runs().iloc[0].output == "smile \U0001f600"


def test_a_stream_chunk_of_the_wrong_shape_is_an_error_row(start_api: Start) -> None:
    odd_call = {"index": "first", "function": {"name": "f", "arguments": "{}"}}
    odd = chunk()
    odd["choices"][0]["delta"]["tool_calls"] = [odd_call]
    start_api(lambda request: Reply(events=[chunk("Hi"), odd, "[DONE]"]))
    with pytest.raises(wb.TruncatedStreamError, match="unexpected chunk shape"):
        wb.chat("Call f", model="gpt-4o-mini", stream=True)
    row = wb.runs().iloc[0]
    assert row.status == "error" and row.output == "Hi"


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (None, "message is null"),
        ({"role": "assistant", "content": {"text": "Paris."}}, "content is an object"),
        ({"role": "assistant", "content": 42}, "content is a number"),
    ],
)
def test_an_answer_without_usable_content_is_an_error_row_without_cost(
    start_api: Start, message: Any, problem: str
) -> None:
    def handler(request: Received) -> Reply:
        reply = chat_reply("Paris.", prompt_tokens=12_000, completion_tokens=3_000)
        reply.body["choices"][0]["message"] = message
        return reply

    start_api(handler)
    with pytest.raises(APIResponseError, match=problem):
        wb.chat("Capital of France?", model="gpt-4o-mini")
    row = wb.runs().iloc[0]
    assert row.status == "error" and problem in row.error
    assert pd.isna(row.cost_usd) and get_session().spent == 0


def test_an_embedding_answer_with_too_few_vectors_is_an_error_row(start_api: Start) -> None:
    def handler(request: Received) -> Reply:
        return Reply(body={"model": "m", "data": [{"index": 0, "embedding": [1.0, 0.0]}]})

    start_api(handler)
    with pytest.raises(APIResponseError, match="1 vectors for 2 texts"):
        wb.embed(["one", "two"], model="text-embedding-3-small")
    assert list(wb.runs().status) == ["error"]


# -- rows the store refuses ----------------------------------------------------------


def test_five_calls_on_a_full_disk_return_five_answers_all_kept(
    start_api: Start, isolated_store: Path
) -> None:
    def handler(request: Received) -> Reply:
        fill_disk()  # the disk fills up while the answer is on its way
        return chat_reply(LONG + prompt_of(request))

    start_api(handler)
    answers = []
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")  # as a notebook shows them: once per message
        for n in range(5):
            free_disk()  # as if some space were freed before each call
            answers.append(wb.chat(f"Tell a long story #{n}", model="gpt-4o-mini"))
    said = [str(w.message) for w in shown if w.category is UnsavedRunWarning]
    assert len(said) == 5
    assert all(re.search(r"could not be saved.*disk is full.*kept in", line) for line in said)
    assert [a.text for a in answers] == [f"{LONG}Tell a long story #{n}" for n in range(5)]
    assert not any(a.saved for a in answers)
    kept = fallback_lines(isolated_store)
    assert [line["output"] for line in kept] == [a.text for a in answers]
    assert all("disk is full" in line["unsaved_reason"] for line in kept)
    assert answers[0].unsaved is not None and answers[0].unsaved.kept_in == (
        isolated_store.with_name("experiments.unsaved.jsonl")
    )
    assert len(wb.runs()) == 0

    free_disk()  # once there is room again, the kept rows come back whole
    assert wb.import_runs(answers[0].unsaved.kept_in) == 5
    runs = wb.runs()
    assert list(runs.output) == [a.text for a in answers] and (runs.status == "ok").all()
    assert list(runs.run_id) == [a.run_id for a in answers]


def test_a_failed_call_whose_row_is_refused_still_raises_its_own_error(
    start_api: Start, isolated_store: Path
) -> None:
    def handler(request: Received) -> Reply:
        fill_disk()
        return Reply(400, {"error": {"message": "This model's maximum context is 8 tokens"}})

    start_api(handler)
    with (
        pytest.warns(UnsavedRunWarning, match="disk is full"),
        pytest.raises(wb.BadRequestError, match="maximum context"),
    ):
        wb.chat(LONG, model="gpt-4o-mini")
    (kept,) = fallback_lines(isolated_store)
    assert kept["status"] == "error" and "maximum context" in kept["error"]


def test_an_embedding_on_a_full_disk_returns_its_vectors_and_keeps_them(
    start_api: Start, isolated_store: Path
) -> None:
    vector = [float(i % 7) for i in range(1_536)]

    def handler(request: Received) -> Reply:
        fill_disk()
        data = [{"index": i, "embedding": vector} for i, _ in enumerate(request.body["input"])]
        return Reply(body={"model": "text-embedding-3-small", "data": data})

    start_api(handler)
    with pytest.warns(UnsavedRunWarning, match="disk is full"):
        response = wb.embed([LONG], model="text-embedding-3-small")
    assert response.embeddings == [vector] and not response.saved
    (kept,) = fallback_lines(isolated_store)
    assert kept["kind"] == "embed" and kept["embeddings"] == {LONG: vector}


def test_rows_go_to_the_data_folder_when_the_stores_folder_refuses_them(
    start_api: Start, isolated_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    isolated_store.with_name("experiments.unsaved.jsonl").mkdir()  # cannot be a file

    def handler(request: Received) -> Reply:
        fill_disk()
        return chat_reply(LONG)

    start_api(handler)
    with pytest.warns(UnsavedRunWarning, match="unsaved-runs.jsonl"):
        response = wb.chat("Tell a long story", model="gpt-4o-mini")
    assert response.unsaved is not None and response.unsaved.kept_in is not None
    assert response.unsaved.kept_in.is_relative_to(tmp_path / "data")
    kept = response.unsaved.kept_in.read_text(encoding="utf-8")
    assert json.loads(kept)["output"] == LONG


def test_a_chat_cell_on_a_full_disk_shows_its_answer_and_a_warning(
    start_api: Start, isolated_store: Path
) -> None:
    def handler(request: Received) -> Reply:
        if request.path.endswith("/models"):  # %%chat checks the model name first
            return Reply(body={"object": "list", "data": [{"id": "gpt-4o-mini"}]})
        fill_disk()  # %%chat streams: the answer arrives in pieces
        pieces = [chunk(role="assistant"), chunk(LONG[:9_000]), chunk(LONG[9_000:])]
        return Reply(events=[*pieces, chunk(finish_reason="stop"), "[DONE]"])

    start_api(handler)
    with open_shell() as shell, pytest.warns(UnsavedRunWarning, match="disk is full"):
        shell.run_cell("%%chat -m gpt-4o-mini --out answer\nTell a long story")  # no error
        assert shell.user_ns["answer"].text == LONG
    assert [line["output"] for line in fallback_lines(isolated_store)] == [LONG]


# -- sweeps ----------------------------------------------------------------------------


def test_an_unstorable_reply_does_not_stop_a_sweep(start_api: Start) -> None:
    def handler(request: Received) -> Reply:
        reply = chat_reply(prompt_of(request), prompt_tokens=20, completion_tokens=5)
        if prompt_of(request) == "n=10":
            reply.body["usage"]["prompt_tokens"] = 10**20
        return reply

    api = start_api(handler)
    s = wb.sweep("n={{n}}", vars={"n": list(range(20))}, model="gpt-4o-mini", concurrency=4)
    df = s.run(progress=False)
    assert len(df) == 20 and (df.status == "ok").all() and api.count("/chat/completions") == 20
    odd = df[df.output == "n=10"].iloc[0]
    assert pd.isna(odd.prompt_tokens) and "too large to store" in odd.notes
    assert df[df.output != "n=10"].notes.isna().all()


def test_a_sweep_stops_at_the_first_refused_row_and_keeps_its_answer(
    start_api: Start, isolated_store: Path
) -> None:
    def handler(request: Received) -> Reply:
        if prompt_of(request) == "n=4":
            fill_disk()
            return chat_reply(LONG + "n=4")
        return chat_reply(prompt_of(request))

    api = start_api(handler)

    def define() -> Sweep:
        return wb.sweep("n={{n}}", vars={"n": list(range(20))}, model="gpt-4o-mini", concurrency=1)

    s = define()
    with pytest.raises(wb.StoreError, match=r"^Sweep stopped: the store refused a row.*kept in"):
        s.run(progress=False)
    assert api.count("/chat/completions") == 5  # nothing sent after the refused row
    assert s.progress.state == "failed"
    assert len(wb.runs()) == 4
    assert [line["output"] for line in fallback_lines(isolated_store)] == [LONG + "n=4"]

    free_disk()
    wb.import_runs(isolated_store.with_name("experiments.unsaved.jsonl"))
    df = define().run(progress=False)
    assert api.count("/chat/completions") == 5 + 15  # the kept answer was not bought again
    assert len(df) == 20 and (df.status == "ok").all()


# -- Ctrl-C and cancelled tasks during a stream ------------------------------------------


STORY = [chunk("Once"), chunk(" upon"), chunk(" a"), chunk(" time")]


@pytest.fixture
def stalling(start_api: Start) -> Iterator[LoopbackAPI]:
    """A server that streams four deltas, then stalls with the connection open."""
    stall = threading.Event()
    yield start_api(lambda request: Reply(events=[chunk(role="assistant"), *STORY], stall=stall))
    stall.set()


def assert_interrupted_row(kind: str, partial: str) -> None:
    row = wb.runs().iloc[0]
    assert row.status == "error" and row.output == partial
    assert row.error == f"Interrupted ({kind}) after {len(partial)} characters"
    # charged as a cut stream is: what arrived, counted locally
    assert row.tokens_counted and row.prompt_tokens > 0 and row.completion_tokens > 0
    assert row.cost_usd > 0 and float(get_session().spent) == pytest.approx(row.cost_usd)


def test_ctrl_c_in_on_delta_logs_the_partial_answer(stalling: LoopbackAPI) -> None:
    seen: list[str] = []

    def on_delta(delta: str) -> None:
        seen.append(delta)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wb.chat("Tell a story", model="gpt-4o-mini", stream=True, on_delta=on_delta)
    assert_interrupted_row("KeyboardInterrupt", "Once upon a")


def test_a_real_sigint_while_the_stream_stalls_logs_the_partial_answer(
    stalling: LoopbackAPI,
) -> None:
    wb.configure(timeout=20)  # bounds the test if the signal were lost
    seen: list[str] = []
    main = threading.main_thread().ident
    assert main is not None

    def on_delta(delta: str) -> None:
        seen.append(delta)
        if len(seen) == 4:  # all there is: the next read blocks until Ctrl-C
            threading.Thread(target=signal.pthread_kill, args=(main, signal.SIGINT)).start()

    with pytest.raises(KeyboardInterrupt):
        wb.chat("Tell a story", model="gpt-4o-mini", stream=True, on_delta=on_delta)
    assert_interrupted_row("KeyboardInterrupt", "Once upon a time")


def test_a_cancelled_async_stream_logs_the_partial_answer(stalling: LoopbackAPI) -> None:
    async def main() -> None:
        arrived = asyncio.Event()
        seen: list[str] = []

        def on_delta(delta: str) -> None:
            seen.append(delta)
            if len(seen) == 2:
                arrived.set()

        task = asyncio.create_task(
            wb.achat("Tell a story", model="gpt-4o-mini", stream=True, on_delta=on_delta)
        )
        await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    row = wb.runs().iloc[0]
    assert row.output.startswith("Once upon")
    assert_interrupted_row("CancelledError", row.output)


def test_a_stream_cut_by_the_server_is_charged_for_what_arrived(start_api: Start) -> None:
    start_api(lambda request: Reply(events=[chunk(role="assistant"), *STORY]))  # no [DONE]
    with pytest.raises(wb.TruncatedStreamError):
        wb.chat("Tell a story", model="gpt-4o-mini", stream=True)
    row = wb.runs().iloc[0]
    assert row.output == "Once upon a time" and row.tokens_counted and row.cost_usd > 0
