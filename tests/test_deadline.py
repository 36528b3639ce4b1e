"""An overall deadline per call: a server that keeps a stream alive with pings, or drips
its body a byte at a time, no longer holds a call for as long as it likes. Against a real
loopback server; the deadline's rules with a clock driven by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import httpx
import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.api.deadline import Deadline

Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]  # the start_api fixture

SHORT = 1.0  # seconds: the deadline of every call here


def _event(content: str) -> bytes:
    chunk = {
        "id": "chatcmpl-ping",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


MODELS = Reply(body={"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})


def pinging(request: Received) -> Reply:
    """A stream that says "Hel" and then only ``: ping`` every 0.2 s (for up to 30 s):
    every read succeeds, so a per-read timeout never fires."""
    if request.path.endswith("/models"):
        return MODELS

    def chunks() -> Iterator[bytes]:
        yield _event("Hel")
        for _ in range(150):
            yield b": ping\n\n"

    return Reply(
        headers={"content-type": "text/event-stream"}, chunks=chunks(), chunk_delay_s=0.2
    )


def dripping(request: Received) -> Reply:
    """A proper JSON answer, one byte every 0.05 s (about 20 s for all of it)."""
    if request.path.endswith("/models"):
        return MODELS
    body = json.dumps(chat_reply("Paris.").body).encode()
    return Reply(chunks=(body[i : i + 1] for i in range(len(body))), chunk_delay_s=0.05)


@pytest.fixture(autouse=True)
def short_deadline() -> None:
    wb.configure(deadline=SHORT)


def the_row() -> pd.Series:
    rows = wb.runs()
    assert len(rows) == 1
    return rows.iloc[0]


def assert_deadline_row(partial: str | None) -> None:
    row = the_row()
    assert row.status == "error"
    assert "within the deadline of 1 s" in row.error and "\n" not in row.error
    assert (None if pd.isna(row.output) else row.output) == partial


# -- a stream kept alive with pings ---------------------------------------------------------


def test_pinging_stream_ends_at_the_deadline_keeping_its_partial_text(start_api: Start) -> None:
    start_api(pinging)
    seen: list[str] = []
    with pytest.raises(wb.DeadlineExceededError, match="after 3 characters") as caught:
        wb.chat("hi", model="gpt-4o-mini", stream=True, on_delta=seen.append)
    assert caught.value.partial_text == "Hel" and seen == ["Hel"]
    assert isinstance(caught.value, wb.APITimeoutError)
    assert_deadline_row("Hel")


def test_pinging_stream_ends_at_the_deadline_async(start_api: Start) -> None:
    start_api(pinging)
    with pytest.raises(wb.DeadlineExceededError):
        asyncio.run(wb.achat("hi", model="gpt-4o-mini", stream=True))
    assert_deadline_row("Hel")


# -- a body dripped a byte at a time --------------------------------------------------------


def test_dripped_body_ends_at_the_deadline(start_api: Start) -> None:
    start_api(dripping)
    with pytest.raises(wb.DeadlineExceededError, match="within the deadline"):
        wb.chat("hi", model="gpt-4o-mini")
    assert_deadline_row(None)


def test_dripped_body_ends_at_the_deadline_async(start_api: Start) -> None:
    start_api(dripping)
    with pytest.raises(wb.DeadlineExceededError):
        asyncio.run(wb.achat("hi", model="gpt-4o-mini"))
    assert_deadline_row(None)


def test_dripped_embeddings_end_at_the_deadline(start_api: Start) -> None:
    start_api(dripping)
    with pytest.raises(wb.DeadlineExceededError):
        wb.embed("a text", model="text-embedding-3-small")
    assert the_row().status == "error"


def test_a_sweep_logs_each_call_past_the_deadline_as_an_error_row(start_api: Start) -> None:
    start_api(dripping)
    s = wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, model="gpt-4o-mini")
    s.run(progress=False)
    assert list(s.df.status) == ["error", "error"]
    assert all("within the deadline" in error for error in s.df.error)


# -- the deadline covers retries and is set per session or per call -----------------------


def test_no_retry_waits_past_the_deadline(start_api: Start) -> None:
    # The server asks for a 5 s wait before a retry: more than the whole deadline.
    api = start_api(lambda request: Reply(503, {"error": "busy"}, {"retry-after": "5"}))
    with pytest.raises(wb.DeadlineExceededError) as caught:
        wb.chat("hi", model="gpt-4o-mini")
    assert api.count("/chat/completions") == 1 and caught.value.retries == 0
    assert the_row().retries == 0


def test_a_call_can_have_its_own_deadline(start_api: Start) -> None:
    start_api(pinging)
    wb.configure(deadline=600)
    with pytest.raises(wb.DeadlineExceededError, match="deadline of 0.5 s"):
        wb.chat("hi", model="gpt-4o-mini", stream=True, deadline=0.5)


def test_a_quick_answer_is_untouched_by_the_deadline(start_api: Start) -> None:
    start_api(lambda request: chat_reply("Paris."))
    assert wb.chat("hi", model="gpt-4o-mini").text == "Paris."


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "1"])
def test_bad_deadlines_are_refused_before_sending(start_api: Start, bad: object) -> None:
    api = start_api(lambda request: chat_reply("Paris."))
    with pytest.raises(wb.InvalidInputError, match="deadline must be"):
        wb.configure(deadline=bad)  # type: ignore[arg-type]
    with pytest.raises(wb.InvalidInputError, match="deadline must be"):
        wb.chat("hi", model="gpt-4o-mini", deadline=bad)  # type: ignore[arg-type]
    assert api.count() == 0 and len(wb.runs()) == 0


# -- the rules, with a clock driven by hand -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_rules() -> None:
    clock = Clock()
    deadline = Deadline(10, clock.now, clock)
    base = httpx.Timeout(600.0, connect=5.0)
    assert (deadline.timeout(base).read, deadline.timeout(base).connect) == (10, 5)
    assert deadline.allows_wait(9) and not deadline.allows_wait(10)
    clock.now += 8
    assert deadline.timeout(base).read == pytest.approx(2) and not deadline.passed
    clock.now += 2
    assert deadline.passed and deadline.timeout(base).read > 0  # 0 would mean "no wait"
    endless = Deadline(None, clock.now, clock)
    clock.now += 1e9
    assert not endless.passed and endless.timeout(base) is base and endless.allows_wait(1e9)


# -- %%chat --deadline ------------------------------------------------------------------------


def test_chat_cell_deadline_option(start_api: Start, in_tmp_dir: object) -> None:
    from IPython.core.error import UsageError
    from testing_shell import open_shell

    start_api(pinging)
    wb.configure(deadline=600)  # the cell's own deadline is the one that ends it
    with open_shell() as shell:
        with pytest.raises(UsageError, match="deadline of 0.5 s"):
            shell.run_cell("%%chat -m gpt-4o-mini --deadline 0.5\nhi")
        with pytest.raises(UsageError, match="--deadline must be at least"):
            shell.run_cell("%%chat -m gpt-4o-mini --deadline 0\nhi")
    assert_deadline_row_of(0.5, "Hel")


def test_sweep_cell_deadline_option(start_api: Start, in_tmp_dir: object) -> None:
    from testing_shell import open_shell

    start_api(dripping)
    wb.configure(deadline=600)
    with open_shell() as shell:
        shell.run_cell("%%chat -m gpt-4o-mini --seed 1,2 --deadline 0.5 --out s\nhi")
    rows = wb.runs()
    assert list(rows.status) == ["error", "error"]
    assert all("deadline of 0.5 s" in error for error in rows.error)


def assert_deadline_row_of(seconds: float, partial: str) -> None:
    row = the_row()
    assert row.status == "error" and f"deadline of {seconds:g} s" in row.error
    assert row.output == partial
