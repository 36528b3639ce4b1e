"""What IPython shows for the workbench's errors and for Ctrl-C: one line, not a traceback.

Run in a real IPython shell (tests/testing_shell.py); what the shell prints is captured,
as a notebook would show it. IPython's contract, from ``InteractiveShell.showtraceback``:
"Exception classes can customise their traceback [...] This should return a list of
strings" (``_render_traceback_``); ``%xmode Verbose`` or ``wb.debug()`` bring the full
traceback back.
"""

from __future__ import annotations

import _thread
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_openai import DONE, FakeOpenAI, chunk, event, sse_response
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from loopback import LoopbackAPI, Received, Reply, chat_reply
from testing_shell import TestingShell, open_shell

import workbench as wb
from workbench.api.client import OpenAIClient
from workbench.calls.session import get_session

Start = Callable[[Callable[[Received], Any]], LoopbackAPI]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def shell() -> Iterator[TestingShell]:
    with open_shell() as opened:
        opened.run_cell("import workbench as wb")
        yield opened
    wb.debug(False)


def shown(shell: InteractiveShell, code: str) -> str:
    """What running ``code`` as a cell prints (IPython shows errors on stdout), without
    colours; stderr is left out, where a loopback server logs the calls a stop cut off."""
    with capture_output() as captured:
        InteractiveShell.run_cell(shell, code)  # the plain one: errors shown, not raised
    return ANSI.sub("", captured.stdout)


BAD_CALL = "wb.chat('hi', model='gpt-4o-mini', temperature=3)"
ONE_LINE = "InvalidInputError: temperature must be a number between 0 and 2, got 3\n"


def test_a_workbench_error_shows_as_its_one_line(
    shell: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-sent-0123456789")
    assert shown(shell, BAD_CALL) == ONE_LINE


def test_the_full_traceback_is_one_switch_away(
    shell: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-sent-0123456789")
    shell.run_line_magic("xmode", "Verbose")
    verbose = shown(shell, BAD_CALL)
    assert "Traceback" in verbose and "session.py" in verbose and verbose.count("\n") > 10
    shell.run_line_magic("xmode", "Context")
    assert shown(shell, BAD_CALL) == ONE_LINE
    shell.run_cell("wb.debug()")
    assert "Traceback" in shown(shell, BAD_CALL)
    shell.run_cell("wb.debug(False)")
    assert shown(shell, BAD_CALL) == ONE_LINE


def test_other_errors_keep_their_traceback(shell: TestingShell) -> None:
    assert "Traceback" in shown(shell, "1 / 0")


# -- Ctrl-C during a streamed call --------------------------------------------------------


def ctrl_c() -> None:
    raise KeyboardInterrupt  # as Ctrl-C does, between two reads of the stream


@pytest.fixture
def story_then_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """An OpenAI-shaped stream of three deltas, then Ctrl-C while reading the next."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://fake.test/v1")
    stream = sse_response(
        event(chunk(role="assistant")),
        event(chunk("Once")),
        event(chunk(" upon")),
        event(chunk(" a")),
        ctrl_c,
        event(chunk(" time")),
        DONE,
    )
    fake = FakeOpenAI(stream)
    session = get_session()
    key = "sk-test-fake-0123456789"
    client = OpenAIClient("https://fake.test/v1", key, transport=fake.transport)
    monkeypatch.setattr(session, "client", lambda provider, **kwargs: client)
    return fake


def test_ctrl_c_ends_a_streamed_chat_with_the_partial_answer_footer_and_one_line(
    shell: TestingShell, story_then_ctrl_c: FakeOpenAI
) -> None:
    out = shown(shell, "wb.chat('Tell a story', model='gpt-4o-mini', stream=True)")
    row = wb.runs().iloc[0]
    assert row.status == "error" and row.output == "Once upon a"  # the row is stored
    assert out.splitlines() == [
        "Once upon a",
        f"gpt-4o-mini · ~{row.prompt_tokens}→{row.completion_tokens} tokens · "
        + out.splitlines()[1].split(" tokens · ", 1)[1],  # cost and latency as measured
        f"interrupted after 11 characters; kept as run {row.run_id}",
    ]
    assert out.splitlines()[1].endswith(f"run {row.run_id}")
    assert "Traceback" not in out


def test_ctrl_c_after_on_delta_showed_the_text_prints_only_the_footer(
    shell: TestingShell, story_then_ctrl_c: FakeOpenAI
) -> None:
    code = (
        "wb.chat('Tell a story', model='gpt-4o-mini', stream=True,"
        " on_delta=lambda d: print(d, end=''))"
    )
    lines = shown(shell, code).splitlines()
    row = wb.runs().iloc[0]
    assert lines[0] == "Once upon a"  # from on_delta, not repeated
    assert lines[1].startswith("gpt-4o-mini · ") and lines[1].endswith(f"run {row.run_id}")
    assert lines[2:] == [f"interrupted after 11 characters; kept as run {row.run_id}"]


def test_ctrl_c_is_still_a_keyboard_interrupt(story_then_ctrl_c: FakeOpenAI) -> None:
    with pytest.raises(KeyboardInterrupt) as stopped:
        wb.chat("Tell a story", model="gpt-4o-mini", stream=True)
    assert isinstance(stopped.value, wb.CallInterrupted)
    assert stopped.value.response.text == "Once upon a"
    assert stopped.value.response.run_id == wb.runs().iloc[0].run_id


# -- Ctrl-C during a sweep from Python ----------------------------------------------------


def test_ctrl_c_during_a_sweep_says_how_to_resume(shell: TestingShell, start_api: Start) -> None:
    lock, count = threading.Lock(), {"n": 0}

    def interrupting(request: Received) -> Reply:
        with lock:
            count["n"] += 1
            if count["n"] == 3:  # two answered, the third in flight
                _thread.interrupt_main()
        return Reply(body=chat_reply("ok").body, delay_s=0.1)

    start_api(interrupting)
    shell.run_cell(
        "s = wb.sweep('Say {{n}}', vars={'n': list(range(8))}, model='gpt-4o-mini', concurrency=1)"
    )
    out = shown(shell, "s.run(progress=False)")
    kept = len(wb.runs())
    assert 2 <= kept < 8
    assert out == (
        f"Sweep stopped: {kept} of 8 runs are in the table; call .run() again to send the rest.\n"
    )
    shell.run_cell("s.run(progress=False)")
    assert len(wb.runs()) == 8
