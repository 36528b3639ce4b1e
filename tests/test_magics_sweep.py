"""%%chat as a sweep: lists and ranges on knobs, --repeat, --concurrency, --budget, resume.

Against the real local model (``integration``) and, where a test has to count requests,
see a price or stop a slow server mid-sweep, a loopback HTTP server that plays the API.
"""

from __future__ import annotations

import _thread
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from loopback import LoopbackAPI, Received, Reply, chat_reply
from testing_shell import TestingShell, open_shell

import workbench as wb
from workbench.api.jsonmode import JSON_INSTRUCTION
from workbench.api.local import CHAT_MODEL_ALIAS
from workbench.sweeps.sweep import Sweep

KEY = "sk-test-magic-sweep-0123456789"
MODELS = ["gpt-4o-mini", "gpt-4o", "broken"]
integration = pytest.mark.integration


@pytest.fixture
def shell(in_tmp_dir: Path) -> Iterator[TestingShell]:
    with open_shell() as ipython:
        yield ipython


def chat(shell: TestingShell, line: str, cell: str = "Say hi.") -> None:
    shell.run_cell(f"%%chat {line}\n{cell}")


def knobs(columns: list[str]) -> list[tuple[Any, ...]]:
    """The rows of the table as tuples of the given columns, in run order."""
    df = wb.runs()
    return [tuple(row) for row in df[columns].itertuples(index=False)]


# -- the real local model ---------------------------------------------------------------


@integration
def test_a_list_and_a_range_make_one_row_per_point(shell: TestingShell) -> None:
    chat(shell, "--temperature 0,0.5 --seed 1:2 --max-tokens 8 --out s", "Name a fruit.")
    df = wb.runs()
    assert len(df) == 4 and (df.status == "ok").all()
    assert df.sweep_id.nunique() == 1 and df.sweep_id.iloc[0]
    assert sorted(knobs(["temperature", "seed", "max_tokens"])) == [
        (0.0, 1, 8), (0.0, 2, 8), (0.5, 1, 8), (0.5, 2, 8),
    ]
    assert set(df.model) == {CHAT_MODEL_ALIAS} and not df.cache_hit.any()
    s = shell.user_ns["s"]
    assert isinstance(s, Sweep) and s.sweep_id == df.sweep_id.iloc[0]
    table = s.table()
    assert table.shape == (1, 4)
    assert list(table.index) == ["Name a fruit."]
    assert list(table.columns) == [
        "temperature=0 · seed=1", "temperature=0 · seed=2",
        "temperature=0.5 · seed=1", "temperature=0.5 · seed=2",
    ]
    assert sorted(table.iloc[0]) == sorted(df.output)

    chat(shell, "--temperature 0,0.5 --seed 1:2 --max-tokens 8 --out again", "Name a fruit.")
    assert len(wb.runs()) == 4  # every point was answered in this sweep: nothing sent
    assert shell.user_ns["again"].sweep_id == s.sweep_id


@integration
def test_repeat_samples_each_point(shell: TestingShell) -> None:
    chat(shell, "--repeat 3 --temperature 1 --max-tokens 8", "Name a colour.")
    df = wb.runs()
    assert sorted(df.sample_index) == [0, 1, 2] and df.sweep_id.nunique() == 1
    assert df.request_hash.nunique() == 1 and (df.status == "ok").all()


# -- a scripted API: counting requests, prices, a slow server ----------------------------


def echo(request: Received) -> Reply:
    if request.path.endswith("/models"):
        return Reply(body={"object": "list", "data": [{"id": name} for name in MODELS]})
    body = request.body
    if body["model"] == "broken":
        return Reply(500, {"error": {"message": "the GPU caught fire"}})
    text = f"t={body.get('temperature')} s={body.get('seed')}"
    return chat_reply(text, model=body["model"], prompt_tokens=20, completion_tokens=5)


Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]


@pytest.fixture
def start_api(shell: TestingShell, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    servers: list[LoopbackAPI] = []

    def start(handler: Callable[[Received], Reply]) -> LoopbackAPI:
        server = LoopbackAPI(handler).__enter__()
        servers.append(server)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        wb.configure(max_retries=0)
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture
def api(start_api: Start) -> LoopbackAPI:
    return start_api(echo)


def bodies(api: LoopbackAPI) -> list[dict[str, Any]]:
    return [r.body for r in api.received if r.path.endswith("/chat/completions")]


def test_each_point_is_one_request_with_its_knobs(shell: TestingShell, api: LoopbackAPI) -> None:
    chat(shell, "-m gpt-4o-mini -t 0:1:0.5 --seed 7 --max-tokens 8 --stop END --out s")
    sent = sorted(bodies(api), key=lambda b: b["temperature"])
    assert [b["temperature"] for b in sent] == [0.0, 0.5, 1.0]
    assert all(b["seed"] == 7 and b["max_tokens"] == 8 and b["stop"] == ["END"] for b in sent)
    assert all("stream" not in b for b in sent)
    assert knobs(["temperature", "seed"]) == [(0.0, 7), (0.5, 7), (1.0, 7)]
    assert shell.user_ns["s"].table().shape == (1, 3)


def test_rerunning_the_cell_sends_nothing_new(shell: TestingShell, api: LoopbackAPI) -> None:
    line = "-m gpt-4o-mini --temperature 0,0.5 --seed 1:2 --max-tokens 8"
    chat(shell, line)
    assert len(bodies(api)) == 4 and len(wb.runs()) == 4
    with capture_output() as captured:
        chat(shell, line)
    assert len(bodies(api)) == 4 and len(wb.runs()) == 4
    plan = captured.outputs[0].data["text/plain"]
    assert "4 runs (temperature×2 · seed×2) · 4 already done · nothing to send" in plan


def test_points_answered_elsewhere_are_replayed_free(shell: TestingShell, api: LoopbackAPI) -> None:
    chat(shell, "-m gpt-4o-mini -t 0 --seed 1 --max-tokens 8 --no-stream")
    with capture_output() as captured:
        chat(shell, "-m gpt-4o-mini -t 0,0.5 --seed 1 --max-tokens 8")
    assert "1 from the table, free · to send: 1 run" in captured.outputs[0].data["text/plain"]
    assert len(bodies(api)) == 2
    swept = wb.runs().iloc[1:]
    assert list(swept.cache_hit) == [True, False] or list(swept.cache_hit) == [False, True]


def test_repeat_gives_sample_indexes_and_distinct_requests(
    shell: TestingShell, api: LoopbackAPI
) -> None:
    chat(shell, "-m gpt-4o-mini --repeat 3 --out s")
    assert len(bodies(api)) == 3
    assert sorted(wb.runs().sample_index) == [0, 1, 2]
    assert list(shell.user_ns["s"].table().columns) == ["output #0", "output #1", "output #2"]


def test_two_models_and_a_default(shell: TestingShell, api: LoopbackAPI) -> None:
    chat(shell, "--model gpt-4o-mini,gpt-4o -t none,0.7")
    sent = bodies(api)
    assert sorted(((b["model"], b.get("temperature")) for b in sent), key=str) == [
        ("gpt-4o", 0.7), ("gpt-4o", None), ("gpt-4o-mini", 0.7), ("gpt-4o-mini", None),
    ]


def test_the_table_and_summary_are_shown(shell: TestingShell, api: LoopbackAPI) -> None:
    with capture_output() as captured:
        chat(shell, "-m gpt-4o-mini,broken --seed 1:2 --max-tokens 8 --out s")
    plan, result = captured.outputs
    assert plan.data["text/plain"].startswith("Sweep 4 runs (model×2 · seed×2) · to send: 4")
    assert "cost unknown" in plan.data["text/plain"]  # "broken" has no price: never a guess
    s = shell.user_ns["s"]
    summary = (
        f"gpt-4o-mini, broken · 4 runs · 2 ok · 2 errors · 40→10 tokens · $0.000012 · "
        f"sweep {s.sweep_id}"
    )
    assert summary in result.data["text/plain"]
    page = result.data["text/html"]
    assert "<table" in page and "model=gpt-4o-mini · seed=1" in page and "t=None s=1" in page
    meta = result.metadata["workbench"]
    assert meta["sweep_id"] == s.sweep_id and (meta["ok"], meta["errors"]) == (2, 2)
    assert len(meta["run_ids"]) == 4 and meta["cost_usd"] == pytest.approx(0.000012)


def test_json_and_system_go_with_every_point(shell: TestingShell, api: LoopbackAPI) -> None:
    shell.user_ns["tone"] = "terse"
    chat(shell, '-m gpt-4o-mini --seed 1,2 --json -s "Be {{tone}}."', "List {{tone}} words.")
    for body in bodies(api):
        assert body["response_format"] == {"type": "json_object"}
        assert body["messages"] == [  # json_object needs the word JSON in a message
            {"role": "system", "content": JSON_INSTRUCTION},
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "List terse words."},
        ]
    assert json.loads(wb.runs().variables.iloc[0]) == {"tone": "terse"}


def test_budget_refusal_sends_nothing(shell: TestingShell, api: LoopbackAPI) -> None:
    with capture_output() as captured, pytest.raises(UsageError) as info:
        chat(shell, "-m gpt-4o --max-tokens 4000 --seed 1:3 --budget 0.0001", "Essay " * 200)
    message = str(info.value)
    assert "refused before sending anything" in message and "Estimate: 3 runs" in message
    assert "\n" not in message
    plan = captured.outputs[0].data  # shown first
    assert "to send: 3 runs" in plan["text/plain"] and "$0.12" in plan["text/plain"]
    # Never Markdown (JupyterLab typesets "$...$" as maths, even escaped): HTML, with the
    # dollars in an element MathJax skips.
    assert "text/markdown" not in plan
    assert '<span class="tex2jax_ignore mathjax_ignore">' in plan["text/html"]
    assert "$0.12 expected ($0.0016 to $0.12)" in plan["text/html"]
    assert bodies(api) == [] and len(wb.runs()) == 0
    chat(shell, "-m gpt-4o --max-tokens 10 --seed 1:3 --budget 1", "Essay " * 200)
    assert len(bodies(api)) == 3


def test_concurrency_reaches_the_engine(shell: TestingShell, start_api: Start) -> None:
    def slow(request: Received) -> Reply:
        reply = echo(request)
        reply.delay_s = 0.2 if request.path.endswith("/chat/completions") else 0
        return reply

    api = start_api(slow)
    chat(shell, "-m gpt-4o-mini --seed 1:6 --concurrency 2")
    assert len(bodies(api)) == 6
    assert api.max_in_flight == 2  # not the engine's default of 8: all six at once


def test_ctrl_c_keeps_finished_rows_shows_them_and_stops(
    shell: TestingShell, start_api: Start
) -> None:
    arrived = threading.Semaphore(0)
    lock = threading.Lock()
    count = {"chat": 0}

    def interrupting(request: Received) -> Reply:
        reply = echo(request)
        if request.path.endswith("/chat/completions"):
            with lock:
                count["chat"] += 1
                if count["chat"] == 3:  # two answered, the third in flight
                    _thread.interrupt_main()
            arrived.release()
            reply.delay_s = 0.1
        return reply

    api = start_api(interrupting)
    line = "-m gpt-4o-mini --seed 1:8 --concurrency 1 --out s"
    with capture_output() as captured, pytest.raises(KeyboardInterrupt) as stopped:
        chat(shell, line)
    kept = len(wb.runs())
    assert 2 <= kept < 8
    shown = captured.outputs[-1].data["text/plain"]
    assert f"{kept}/8 runs" in shown and "stopped: run the cell again to resume" in shown
    # What the notebook shows for the interrupt: the one line, no traceback of frames.
    with capture_output() as printed:
        shell.showtraceback((stopped.type, stopped.value, stopped.tb))
    assert printed.stdout.strip() == (
        f"Sweep stopped: {kept} of 8 runs are in the table; run the cell again to send the rest."
    )
    assert shell.user_ns["s"].progress.state == "stopped"
    before = len(bodies(api))
    chat(shell, line)
    assert len(bodies(api)) - before == 8 - kept and len(wb.runs()) == 8


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("--temperature 0,3", "hi", "--temperature 0,3: 3 is not a number between 0 and 2"),
        ("-t 0,warm", "hi", "--temperature 0,warm: 'warm' is not a number between 0 and 2"),
        ("--seed 1,1.5", "hi", "--seed 1,1.5: 1.5 is not a whole number between -2**63 and"),
        ("--seed 1,1", "hi", "--seed 1,1: 1 is listed twice; list each once"),
        ("--seed 3:1", "hi", "--seed 3:1: range '3:1' is empty"),
        ("--max-tokens 0,8", "hi", "--max-tokens 0,8: 0 is not a whole number, at least 1"),
        ("--model gpt-4o-mini,", "hi", "--model gpt-4o-mini,: an empty name in the list"),
        ("--repeat 0", "hi", "--repeat must be at least 1, got 0"),
        ("--repeat 2,3", "hi", "--repeat must be a whole number, got '2,3'"),
        ("--concurrency 0 --repeat 2", "hi", "--concurrency must be at least 1, got 0"),
        ("--budget 0,1 --repeat 2", "hi", "--budget must be an amount in USD, got '0,1'"),
        ("--thread t -t 0,1", "hi", "--thread can't be combined with a sweep (--temperature 0,1)"),
        ("--image a.png --repeat 2", "hi", "--image can't be combined with a sweep (--repeat 2)"),
        ("--tools f --seed 1:2", "hi", "--tools can't be combined with a sweep (--seed 1:2)"),
        ("--seed 1:2", "About {{nothing}}.", "Undefined variable nothing in the prompt"),
        ("-m gpt-4o-mimi,gpt-4o --seed 1", "hi", "Unknown model 'gpt-4o-mimi'"),
    ],
)
def test_mistakes_are_one_usage_error_and_nothing_sent(
    shell: TestingShell, api: LoopbackAPI, line: str, cell: str, message: str
) -> None:
    with pytest.raises(UsageError) as info:
        chat(shell, line, cell)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert bodies(api) == [] and len(wb.runs()) == 0


def test_help_names_the_sweep_options(
    shell: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("%%chat?")
    shown = capsys.readouterr().out
    assert "--repeat K" in shown and "--concurrency N" in shown
    assert "Ranges include both ends" in shown
    assert "makes a sweep" in shell.run_line_magic("workbench", "help")._repr_markdown_()
