"""The Responses API against the real local model: the embedded llama.cpp server answers
``POST /v1/responses`` (its route list has it), streamed and not, in cells, a sweep that
compares both APIs, a scored sweep, and replays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from responses_server import check_request
from testing_shell import TestingShell, open_shell

import workbench as wb
from workbench.api import client
from workbench.api.chat_api import ChatRoute, chat_route
from workbench.api.local import CHAT_MODEL_ALIAS

pytestmark = pytest.mark.integration

ASK = {"max_tokens": 16, "temperature": 0}


@pytest.fixture(autouse=True)
def every_body_is_a_create_response(monkeypatch: pytest.MonkeyPatch) -> list[ChatRoute]:
    """Each body the client sends to /v1/responses is checked against the spec's
    CreateResponse (tests/responses_server.py) before it goes."""
    routes: list[ChatRoute] = []

    def checked(body: Any) -> ChatRoute:
        route = chat_route(body)
        if route.responses:
            check_request(route.body)
            routes.append(route)
        return route

    monkeypatch.setattr(client, "chat_route", checked)
    return routes


@pytest.fixture
def shell(in_tmp_dir: Path) -> Iterator[TestingShell]:
    with open_shell() as ipython:
        yield ipython


@pytest.mark.parametrize("stream", [False, True])
def test_the_same_answer_from_both_apis(in_tmp_dir: Path, stream: bool,
                                        every_body_is_a_create_response: list[ChatRoute]
                                        ) -> None:
    pieces: list[str] = []
    by_responses = wb.chat("Say hello.", system="Be brief.", api="responses", stream=stream,
                           on_delta=pieces.append, **ASK)
    by_chat = wb.chat("Say hello.", system="Be brief.", **ASK)
    # One model, one chat template, greedy: the two routes give the same words.
    assert by_responses.text == by_chat.text and by_responses.text
    assert ("".join(pieces) == by_responses.text) if stream else pieces == []
    rows = wb.runs()
    assert list(rows.api) == ["responses", "chat"]
    first = rows.iloc[0]
    assert first.prompt_tokens > 0 and first.completion_tokens > 0 and first.cost_usd == 0
    assert first.status == "ok" and first.response_model == CHAT_MODEL_ALIAS
    assert len(every_body_is_a_create_response) == 1  # the Responses call, checked


def test_a_cut_answer_is_flagged_and_a_thread_is_sent_statelessly(in_tmp_dir: Path) -> None:
    long = wb.chat("Count from one to fifty in words.", api="responses", **ASK)
    # llama.cpp says "completed" at the limit; the workbench still flags it as cut.
    assert long.finish_reason == "length" and long.usage.completion_tokens == 16
    thread = [{"role": "user", "content": "My name is Ada."},
              {"role": "assistant", "content": "Hello Ada."},
              {"role": "user", "content": "What is my name?"}]
    answer = wb.chat(thread, api="responses", max_tokens=20, temperature=0)
    assert answer.text and wb.runs().iloc[-1].status == "ok"
    sent = chat_route({**wb.get_session().prepare_chat(thread, api="responses").body})
    assert sent.body["store"] is False and len(sent.body["input"]) == 3


def test_replay_needs_no_request_and_keeps_the_apis_apart(in_tmp_dir: Path) -> None:
    first = wb.chat("Name a fruit.", api="responses", **ASK)
    again = wb.chat("Name a fruit.", api="responses", **ASK)
    assert again.cache_hit and again.text == first.text
    other = wb.chat("Name a fruit.", **ASK)
    assert not other.cache_hit
    assert list(wb.runs().cache_hit) == [False, True, False]


def test_a_scored_sweep_compares_the_apis_and_replays(in_tmp_dir: Path) -> None:
    def has_text(output: str) -> bool:
        return bool(output.strip())

    plan = dict(grid={"api": ["chat", "responses"]}, vars={"thing": ["a cat", "a dog"]},
                scorers=[has_text], **ASK)
    df = wb.sweep("Describe {{thing}} in five words.", **plan).run(progress=False)
    assert sorted(df.api) == ["chat", "chat", "responses", "responses"]
    assert (df.status == "ok").all() and df["score:has_text"].tolist() == [1.0] * 4
    by_api = df.pivot(index="thing", columns="api", values="output")
    assert (by_api["chat"] == by_api["responses"]).all()  # greedy: the same words
    again = wb.sweep("Describe {{thing}} in five words.", **plan).run(progress=False)
    assert len(wb.runs()) == 4  # the second sweep sent nothing: its runs are the table's
    assert sorted(again.output) == sorted(df.output)


def test_cells_take_api(shell: TestingShell) -> None:
    shell.run_cell("%%chat --api responses --max-tokens 16 --temperature 0 --out r\nSay hi.")
    assert shell.user_ns["r"].text
    shell.run_cell("%%chat --api chat,responses --max-tokens 16 --temperature 0\nSay hi.")
    assert sorted(wb.runs().api) == ["chat", "responses", "responses"]
