"""The Responses API (issue 23) against a loopback server that plays the official spec
(tests/responses_server.py): every request body validated against ``CreateResponse``,
every answer and event against the spec's own schemas.

Quoted from openai/openai-openapi (openapi.json, kept in tests/data):
- CreateResponse.store: "Whether to store the generated model response for later
  retrieval via API."
- ResponseProperties.max_output_tokens: "An upper bound for the number of tokens that can
  be generated for a response, including visible output tokens and reasoning tokens."
- Response.incomplete_details.reason: "The reason why the response is incomplete."
  (enum: max_output_tokens, content_filter)
- ResponseErrorEvent: "Emitted when an error occurs."
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loopback import LoopbackAPI, Received, Reply
from responses_server import (
    check_request,
    events,
    example_requests,
    function_call,
    message,
    reasoning,
    response,
    serving,
    spec,
    sse,
    usage,
)
from testing_shell import TestingShell, open_shell

import workbench as wb
from workbench.api.responses import SEED_NOTE, choose_api, responses_result
from workbench.api.wire import Endpoint
from workbench.api.wire import Reply as WireReply
from workbench.core.errors import InvalidInputError, NotFoundError, TruncatedStreamError
from workbench.core.finish import finish_note

Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]


@pytest.fixture
def start(start_api: Start) -> Start:
    wb.configure(max_retries=0)
    return start_api


@pytest.fixture
def shell(in_tmp_dir: Path) -> Iterator[TestingShell]:
    with open_shell() as ipython:
        yield ipython


def sent(api: LoopbackAPI) -> list[dict[str, Any]]:
    return [r.body for r in api.received if r.path.endswith("/responses")]


def hello(body: dict[str, Any]) -> dict[str, Any]:
    return response([message("Hello there.")])


# -- the spec's own examples -------------------------------------------------------------


def test_every_example_response_of_the_spec_parses() -> None:
    read = {}
    for example in spec()["examples"]:
        if example["title"] == "Streaming":
            continue  # an event stream: played in the next test
        data = json.loads(example["response"])
        reply = WireReply(Endpoint("POST", "http://x/v1/responses"), data, {}, 0)
        read[example["title"]] = responses_result(reply, latency_s=0.1)
    assert read["Text input"].text.startswith("In a peaceful grove beneath a silver moon")
    assert read["Text input"].usage.prompt_tokens == 36  # type: ignore[union-attr]
    assert read["Reasoning"].usage.reasoning_tokens == 832  # type: ignore[union-attr]
    call = read["Functions"].tool_calls[0]
    assert call["id"] == "call_unLAR8MvFNptuiZK6K6HCy5k"
    assert call["function"]["name"] == "get_current_weather"
    assert read["Functions"].finish_reason == "tool_calls"
    # A web search's item is not read: kept in the raw answer and counted, no crash.
    assert "1 web_search_call" in read["Web search"].notes[0]
    assert read["Web search"].raw["output"][0]["type"] == "web_search_call"


def test_the_spec_streaming_example_played_as_sent(start: Start) -> None:
    played = next(e["response"] for e in spec()["examples"] if e["title"] == "Streaming")
    body = "\n".join(line for line in played.splitlines() if line != "...") + "\n\n"
    start(lambda r: Reply(body=body.encode(), headers={"content-type": "text/event-stream"}))
    pieces: list[str] = []
    answer = wb.chat("Hello!", model="gpt-4o-mini", api="responses", stream=True,
                     on_delta=pieces.append)
    assert pieces == ["Hi"]  # the example's one delta (the spec elides the rest)
    assert answer.text == "Hi there! How can I assist you today?"  # response.completed's
    assert wb.runs().iloc[-1].api == "responses"


def test_example_request_bodies_are_what_the_workbench_sends_for_them(start: Start) -> None:
    api = start(serving(hello))
    examples = example_requests()
    wb.chat("Hello!", model="gpt-5.4", api="responses", system="You are a helpful assistant.")
    ours = sent(api)[-1]
    asked = examples["Streaming"]
    assert ours["instructions"] == asked["instructions"] and ours["model"] == asked["model"]
    assert ours["input"] == [{"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": "Hello!"}]}]
    assert ours["store"] is False  # nothing kept on the server unless asked


# -- the request -----------------------------------------------------------------------


def test_every_knob_maps_to_its_responses_field_and_validates(start: Start) -> None:
    api = start(serving(hello))
    schema = {"type": "object", "properties": {"colour": {"type": "string"}},
              "required": ["colour"], "additionalProperties": False}
    wb.chat("Name a colour.", model="gpt-4o-mini", api="responses", max_tokens=20,
            temperature=0.3, top_p=0.9, system="Be brief.", fresh=True,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "colour", "schema": schema,
                                             "strict": True}})
    body = sent(api)[-1]
    check_request(body)
    assert body["max_output_tokens"] == 20 and "max_tokens" not in body
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9
    assert body["text"] == {"format": {"type": "json_schema", "name": "colour",
                                       "schema": schema, "strict": True}}
    wb.chat("Think.", model="o3-mini", api="responses", reasoning_effort="low",
            reasoning_summary="auto", max_tokens=50)
    body = sent(api)[-1]
    check_request(body)
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["max_output_tokens"] == 50


def test_a_thread_with_an_image_is_sent_as_input_items(start: Start) -> None:
    api = start(serving(hello))
    thread = [
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
    ]
    wb.chat(thread, model="gpt-4o-mini", api="responses", system="Be brief.")
    body = sent(api)[-1]
    check_request(body)
    assert body["instructions"] == "Be brief."
    assert body["input"][1] == {"type": "message", "role": "assistant", "content": "Hello."}
    assert body["input"][2]["content"][1] == {
        "type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"}


def test_a_seed_is_not_sent_but_kept_and_said(start: Start) -> None:
    api = start(serving(hello))
    wb.chat("Hi.", model="gpt-4o-mini", api="responses", seed=7)
    assert "seed" not in sent(api)[-1]
    row = wb.runs().iloc[-1]
    assert row.seed == 7 and SEED_NOTE in row.notes
    wb.chat("Hi.", model="gpt-4o-mini", api="responses", seed=8)  # another sample
    assert len(sent(api)) == 2


@pytest.mark.parametrize("knob", [{"stop": ["\n"]}, {"presence_penalty": 0.5}, {"n": 2}])
def test_chat_only_knobs_are_refused_before_sending(start: Start, knob: dict[str, Any]
                                                    ) -> None:
    api = start(serving(hello))
    with pytest.raises(InvalidInputError, match='use Chat Completions \\(api="chat"\\)'):
        wb.chat("Hi.", model="gpt-4o-mini", api="responses", **knob)
    assert api.received == []


def test_a_reasoning_summary_is_refused_on_chat_completions(start: Start) -> None:
    start(serving(hello))
    with pytest.raises(InvalidInputError, match='add api="responses"'):
        wb.chat("Hi.", model="o3-mini", reasoning_summary="auto")
    with pytest.raises(InvalidInputError, match='"chat" .* or "responses"'):
        wb.chat("Hi.", model="gpt-4o-mini", api="completions")


# -- choosing the API ------------------------------------------------------------------


def test_the_api_is_chosen_explicitly_by_provider_or_by_model(start: Start,
                                                               in_tmp_dir: Path) -> None:
    api = start(serving(hello))
    assert choose_api(None, "gpt-4o-mini") == "chat"
    assert choose_api(None, "o3-pro") == "responses"  # served only there
    assert choose_api("chat", "o3-pro") == "chat"  # asked for: kept
    wb.chat("Hi.", model="o3-pro")
    assert len(sent(api)) == 1 and wb.runs().iloc[-1].api == "responses"
    (in_tmp_dir / "workbench.toml").write_text(
        f'[providers.team]\nbase_url = "{api.base_url}"\napi = "responses"\n'
        '[providers.proxy]\nbase_url = "http://127.0.0.1:9/v1"\nresponses_models = ["mine"]\n'
    )
    wb.chat("Hi.", model="team:gpt-4o-mini")
    assert len(sent(api)) == 2 and wb.runs().iloc[-1].api == "responses"
    providers = wb.get_session().resolve(None, "proxy")[0]
    assert choose_api(None, "mine", providers) == "responses"
    assert choose_api(None, "o3-pro", providers) == "chat"  # the list replaces ours


def test_a_server_without_the_route_gets_one_line(start: Start) -> None:
    start(lambda r: Reply(404, {"error": {"message": "Not Found"}}))
    with pytest.raises(NotFoundError) as caught:
        wb.chat("Hi.", model="gpt-4o-mini", api="responses")
    assert "\n" not in str(caught.value)
    assert 'use Chat Completions: api="chat"' in str(caught.value)
    assert wb.runs().iloc[-1].status == "error"


# -- the answer ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_usage_refusals_and_summaries_reach_their_columns(start: Start, stream: bool) -> None:
    used = usage(1000, 200, cached=400, reasoning_tokens=120)
    start(serving(lambda b: response(
        [reasoning("Weighing it.", "Deciding."), message(refusal="I can't help with that.")],
        used=used)))
    answer = wb.chat("Hi.", model="gpt-4o-mini", api="responses", stream=stream)
    row = wb.runs().iloc[-1]
    assert answer.text == "" and row.refusal == "I can't help with that."
    assert row.reasoning_summary == "Weighing it.\n\nDeciding."
    assert (row.prompt_tokens, row.cached_tokens, row.completion_tokens,
            row.reasoning_tokens, row.total_tokens) == (1000, 400, 200, 120, 1200)
    # Priced by genai-prices as a chat call with the same usage is.
    chat_cost = wb.get_session().quote(
        "gpt-4o-mini", answer.usage, wb.get_session().resolve("gpt-4o-mini", None)[0])
    assert row.cost_usd == pytest.approx(float(chat_cost.cost_usd)) and row.cost_usd > 0


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_cut_at_the_limit_is_flagged_as_chat_answers_are(start: Start,
                                                                     stream: bool) -> None:
    start(serving(lambda b: response([message("Once upon a")], status="incomplete",
                                     incomplete="max_output_tokens", used=usage(5, 16))))
    answer = wb.chat("Tell a story.", model="gpt-4o-mini", api="responses", max_tokens=16,
                     stream=stream)
    row = wb.runs().iloc[-1]
    assert answer.text == "Once upon a"
    assert finish_note(row.finish_reason, row.completion_tokens) == "cut at 16 tokens"


def test_a_limit_below_the_spec_minimum_is_refused_before_sending(start: Start) -> None:
    api = start(serving(hello))
    with pytest.raises(InvalidInputError, match="at least 16 on the Responses API"):
        wb.chat("Hi.", model="gpt-4o-mini", api="responses", max_tokens=8)
    assert api.received == []


@pytest.mark.parametrize("failure", [
    {"code": "server_error", "message": "The server had an error", "param": None},
    {"code": "server_error", "message": "The model failed"},
])
def test_an_error_mid_stream_keeps_the_partial_text_as_an_error_row(
        start: Start, failure: dict[str, Any]) -> None:
    answer = response([message("The first words and then nothing")])
    start(lambda r: sse(events(answer, cut_after=2, error=failure)))
    with pytest.raises(TruncatedStreamError, match=failure["message"]):
        wb.chat("Hi.", model="gpt-4o-mini", api="responses", stream=True)
    row = wb.runs().iloc[-1]
    assert row.status == "error" and row.output == "The firs"  # two deltas of four
    assert failure["message"] in row.error


def test_unknown_output_items_are_kept_and_counted(start: Start) -> None:
    odd = {"id": "x_1", "type": "image_generation_call", "status": "completed", "result": None}
    start(serving(lambda b: {**response([message("Here.")]), "output": [odd, odd,
                                                                       message("Here.")]}))
    answer = wb.chat("Draw.", model="gpt-4o-mini", api="responses")
    assert answer.text == "Here."
    assert "2 image_generation_call" in wb.runs().iloc[-1].notes
    assert answer.raw["output"][0] == odd


# -- tools, replay, sweeps, magics -------------------------------------------------------


def test_run_tools_sends_function_call_items_back(start: Start, shell: TestingShell) -> None:
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        if any(item.get("type") == "function_call_output" for item in body["input"]):
            return response([message("It is 21 degrees.")])
        return response([function_call("weather", '{"city": "Paris"}')])

    api = start(serving(answer))

    def weather(city: str) -> str:
        """The weather in a city."""
        return f"21 degrees in {city}"

    shell.user_ns["fns"] = [weather]
    shell.run_cell("%%chat -m gpt-4o-mini --api responses --tools fns --run-tools --out r\n"
                   "Weather in Paris?")
    second = sent(api)[-1]
    assert second["tools"][0] == {"type": "function", "name": "weather",
                                  "description": "The weather in a city.",
                                  "parameters": second["tools"][0]["parameters"],
                                  "strict": False}
    kinds = [item["type"] for item in second["input"]]
    assert kinds == ["message", "function_call", "function_call_output"]
    assert second["input"][2] == {"type": "function_call_output", "call_id": "call_1",
                                  "output": "21 degrees in Paris"}
    assert shell.user_ns["r"].text == "It is 21 degrees."


@pytest.mark.usefixtures("backend")  # SQLite and the team store (PostgreSQL)
def test_replay_tells_the_two_apis_apart(start: Start) -> None:
    api = start(serving(hello))  # /chat/completions: 404
    wb.chat("Hi.", model="gpt-4o-mini", api="responses", temperature=0)
    again = wb.chat("Hi.", model="gpt-4o-mini", api="responses", temperature=0)
    assert again.cache_hit and len(api.received) == 1  # 0 requests the second time
    with pytest.raises(NotFoundError):  # not answered from the Responses run
        wb.chat("Hi.", model="gpt-4o-mini", temperature=0)
    hashes = set(wb.runs().request_hash)
    assert len(hashes) == 2


def both_apis(request: Received) -> Reply:
    if request.path.endswith(("/responses", "/models")):
        return serving(lambda b: response([message("from responses")]))(request)
    answer = {"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "from chat"}}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
    return Reply(body=answer)


def test_a_scored_sweep_compares_both_apis_and_replays(start: Start) -> None:
    api = start(both_apis)

    def says_responses(output: str) -> float:
        return float("responses" in output)

    planned = wb.sweep("Say {{w}}.", grid={"api": ["chat", "responses"]},
                       vars={"w": ["a", "b"]}, model="gpt-4o-mini", scorers=[says_responses])
    df = planned.run(progress=False)
    assert sorted(df.api) == ["chat", "chat", "responses", "responses"]
    shown = wb.compare(planned).df  # the view sets the two APIs side by side
    assert [str(c) for c in shown.columns] == ["api=chat", "api=responses"], shown.columns
    assert df.set_index("api")["score:says_responses"].to_dict() == {
        "chat": 0.0, "responses": 1.0}
    assert set(wb.runs().query("api == 'chat'").output) == {"from chat"}
    sent_first = api.count()
    again = wb.sweep("Say {{w}}.", grid={"api": ["chat", "responses"]},
                     vars={"w": ["a", "b"]}, model="gpt-4o-mini").run(progress=False)
    assert api.count() == sent_first and len(again) == 4  # all four from the table


def test_the_magic_takes_api_and_sweeps_over_it(start: Start, shell: TestingShell) -> None:
    api = start(both_apis)
    shell.run_cell("%%chat -m gpt-4o-mini --api responses --out r\nHi.")
    assert shell.user_ns["r"].text == "from responses"
    shell.run_cell("%%chat -m gpt-4o-mini --api chat,responses\nHello.")
    paths = [re.sub(r".*/v1", "", r.path) for r in api.received if "/models" not in r.path]
    assert paths[0] == "/responses"
    assert sorted(paths[1:]) == ["/chat/completions", "/responses"]  # the sweep's two


def test_a_judge_grades_through_either_api(start: Start) -> None:
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("text", {}).get("format", {}).get("type") == "json_schema":
            return response([message('{"score": 4, "reason": "close"}')])
        return response([message("Paris")])

    api = start(serving(answer))
    grade = wb.scorers.judge("Is it right?", model="gpt-4o-mini", api="responses")
    assert grade.id != wb.scorers.judge("Is it right?", model="gpt-4o-mini").id
    df = wb.sweep("Capital of {{c}}?", vars={"c": ["France"]}, model="gpt-4o-mini",
                  api="responses", scorers=[grade]).run(progress=False)
    assert df["score:judge"].tolist() == [4.0]
    judged = sent(api)[-1]
    assert judged["text"]["format"]["name"] == "grade" and judged["text"]["format"]["strict"]
    assert set(wb.runs().api) == {"responses"}  # the answer and its grade


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".csv"])
def test_export_and_import_carry_the_api(start: Start, tmp_path: Path, suffix: str) -> None:
    start(both_apis)
    wb.chat("Hi.", model="gpt-4o-mini", api="responses", reasoning_summary="auto")
    wb.chat("Hi.", model="gpt-4o-mini")
    path = wb.export(tmp_path / f"runs{suffix}")
    wb.configure(store=tmp_path / "other.db")
    assert wb.import_runs(path) == 2
    assert sorted(wb.runs().api) == ["chat", "responses"]


def test_a_cell_shows_the_summary_folded_and_says_the_seed_was_not_sent(
        start: Start, shell: TestingShell) -> None:
    start(serving(lambda b: response([reasoning("First <this>, then that."),
                                      message("Done.")])))
    shell.run_cell("%%chat -m gpt-4o-mini --api responses --seed 3 --no-stream --out r\nGo.")
    shown = shell.user_ns["r"]
    page = shown.markdown()
    assert "<details" in page and "First &lt;this&gt;, then that." in page
    assert page.index("<details") < page.index("Done.")
    assert any("seed not sent" in note for note in shown.notes)
    assert wb.runs().iloc[-1].reasoning_summary == "First <this>, then that."


def test_the_async_stream_reads_the_typed_events(start: Start) -> None:
    start(serving(lambda b: response([reasoning("Hm."), message("Fine, thanks.")])))
    pieces: list[str] = []

    async def ask() -> Any:
        return await wb.achat("How are you?", model="gpt-4o-mini", api="responses",
                              stream=True, on_delta=pieces.append)

    answer = asyncio.run(ask())
    assert "".join(pieces) == answer.text == "Fine, thanks."
    assert answer.reasoning_summary == "Hm." and answer.ttft_s is not None


def test_a_budget_refuses_a_responses_call_before_sending(start: Start) -> None:
    api = start(serving(hello))
    with pytest.raises(wb.BudgetExceededError):
        wb.chat("Hi " * 500, model="gpt-4o-mini", api="responses", max_tokens=2000,
                budget=1e-9)
    assert api.received == []
