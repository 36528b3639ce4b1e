"""Ctrl-C in a real Jupyter kernel (jupyter_client): the kernel is interrupted as the
notebook's stop button does (SIGINT), while a ``%%chat`` answer streams from a loopback
server that sent part of the answer and then stalls. The cell must end with the partial
answer re-shown, its footer, and one line saying what was kept."""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply, chunk

REPO = Path(__file__).resolve().parents[1]
PARTIAL = "The lighthouse keeper climbed the stairs. " * 28  # 1,176 characters


@pytest.fixture
def stalled_server() -> Iterator[tuple[LoopbackAPI, threading.Event]]:
    release = threading.Event()

    def handler(request: Received) -> Reply:
        if not request.path.endswith("/chat/completions"):  # the model check's list
            return Reply(body={"object": "list", "data": [{"id": "gpt-4o-mini",
                                                           "object": "model"}]})
        if not request.body.get("stream"):  # a sweep's calls: the first answers, then stall
            if request.body.get("temperature") not in (0, 0.0):
                release.wait(30)
            return Reply(body=chat_reply("ok", model="gpt-4o-mini"))
        words = PARTIAL.split(" ")
        events: list[Any] = [chunk(role="assistant")]
        events += [chunk(w + " ") for w in words[:-1]] + [chunk(words[-1])]
        return Reply(events=events, stall=release)  # then holds the stream open

    with LoopbackAPI(handler) as server:
        try:
            yield server, release
        finally:
            release.set()


@pytest.fixture
def kernel(tmp_path: Path, stalled_server: tuple[LoopbackAPI, threading.Event]) -> Iterator[Any]:
    from jupyter_client.manager import start_new_kernel

    server, _ = stalled_server
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-test-loopback-0123456789",
        "OPENAI_BASE_URL": server.base_url,
        "WORKBENCH_STORE": str(tmp_path / "kernel.db"),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "PYTHONWARNINGS": "ignore",
    }
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _run(client: Any, code: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Execute ``code`` and return its IOPub messages until the kernel is idle."""
    msg_id = client.execute(code)
    return _collect(client, msg_id, timeout)


def _collect(client: Any, msg_id: str, timeout: float,
             until: Any = None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            message = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(message)
        if until is not None and until(message):
            return messages
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"no idle in {timeout} s: {[m['msg_type'] for m in messages]}")


def _text(message: dict[str, Any]) -> str:
    data = message["content"].get("data", {})
    return str(data.get("text/plain", "")) + str(data.get("text/markdown", ""))


def test_ctrl_c_during_a_streamed_chat_shows_the_partial_answer_footer_and_one_line(
    kernel: Any,
) -> None:
    manager, client = kernel
    loaded = _run(client, "%load_ext workbench")
    assert not [m for m in loaded if m["msg_type"] == "error"]
    msg_id = client.execute("%%chat --model gpt-4o-mini\nTell me about a lighthouse.")
    # The answer starts to show (the server sends its part, then stalls): Ctrl-C.
    seen = _collect(client, msg_id, 60, until=lambda m: m["msg_type"] == "display_data")
    time.sleep(0.5)  # not a measurement: lets the sent part arrive before the interrupt
    manager.interrupt_kernel()
    seen += _collect(client, msg_id, 60)

    errors = [m["content"] for m in seen if m["msg_type"] == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "CallInterrupted"
    lines = errors[0]["traceback"]
    assert len(lines) == 1  # one line, no traceback
    said = re.search(r"interrupted after ([\d,]+) characters; kept as run (\w+)", lines[0])
    assert said, lines[0]
    characters, run_id = int(said[1].replace(",", "")), said[2]
    shown = [m for m in seen if m["msg_type"] in ("display_data", "update_display_data")]
    last = shown[-1]["content"]["data"]
    # The partial answer, all of it (the live view lags behind), then its footer.
    assert last["text/markdown"].startswith("The lighthouse keeper")
    answer, _, footer = last["text/plain"].rpartition("\n\n")
    assert len(answer) == characters and PARTIAL.startswith(answer)
    assert "gpt-4o-mini" in footer and "tokens" in footer and run_id in footer
    # The row is in the table, as the line says.
    rows = _run(client, "import workbench as wb\nprint(wb.runs()[['status', 'output']]"
                        ".iloc[-1].to_dict())")
    printed = "".join(m["content"].get("text", "") for m in rows if m["msg_type"] == "stream")
    assert "lighthouse keeper" in printed


def test_ctrl_c_during_a_sweep_shows_its_progress_and_one_line_on_resuming(kernel: Any) -> None:
    manager, client = kernel
    _run(client, "%load_ext workbench")
    msg_id = client.execute(
        "%%chat --model gpt-4o-mini -t 0,0.5,1 --concurrency 1 --no-stream\nHello."
    )
    # The progress bar is a widget: its comm messages say how far the sweep got.
    seen = _collect(client, msg_id, 60, until=lambda m: m["msg_type"] == "comm_msg"
                    and "1/3" in str(m["content"]))
    manager.interrupt_kernel()
    seen += _collect(client, msg_id, 60)
    errors = [m["content"] for m in seen if m["msg_type"] == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "SweepInterrupted"
    assert errors[0]["traceback"] == [
        "Sweep stopped: 1 of 3 runs are in the table; run the cell again to send the rest."
    ]
    bars = [m for m in seen if m["msg_type"] == "comm_msg" and "1/3" in str(m["content"])]
    assert bars  # the bar stays at what was done
    tables = [m for m in seen if m["msg_type"] == "display_data"
              and "wb-sweep" in str(m["content"]["data"].get("text/html", ""))]
    assert tables  # and the table of what came
