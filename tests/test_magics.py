"""%%chat, %%embed and %workbench in a real IPython shell, as a notebook runs them.

Calls go to the real local model (marked ``integration``); a loopback HTTP server plays
the API only where the real one cannot do what a test needs (tool calls on demand, a
priced model, an HTTP error with a message). Request bodies are read off the wire with an
httpx event hook on the session's own client.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from loopback import LoopbackAPI, Received, Reply, chat_reply
from testing_shell import TestingShell, open_shell

import workbench as wb
from workbench.api.jsonmode import JSON_INSTRUCTION
from workbench.api.local import CHAT_MODEL_ALIAS, EMBEDDING_MODEL_ALIAS
from workbench.calls.session import get_session
from workbench.notebook.display import ChatDisplay
from workbench.notebook.embedview import EmbedResult

SENTINEL = "sk-SENTINEL-never-print-0123456789"
integration = pytest.mark.integration


@pytest.fixture
def shell(in_tmp_dir: Path) -> Iterator[TestingShell]:
    with open_shell() as ipython:
        yield ipython


def chat(shell: TestingShell, line: str, cell: str) -> None:
    shell.run_cell(f"%%chat {line}\n{cell}")


def rows() -> int:
    return len(wb.runs())


def spy_on(client: Any) -> list[dict[str, Any]]:
    """Record the JSON body of every chat request the client sends."""
    bodies: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            bodies.append(json.loads(request.content))

    client._http.event_hooks["request"].append(record)
    return bodies


@pytest.fixture
def sent(in_tmp_dir: Path) -> list[dict[str, Any]]:
    """The bodies sent to the real local model during the test."""
    session = get_session()
    provider, _ = session.resolve(None, None)
    return spy_on(session.client(provider))


# -- each option changes the request it should ----------------------------------------

BASE = {
    "model": CHAT_MODEL_ALIAS,
    "messages": [{"role": "user", "content": "Say hi."}],
    "max_tokens": 4,
    "stream": True,
    "stream_options": {"include_usage": True},
}


@integration
@pytest.mark.parametrize(
    ("options", "changes"),
    [
        ("", {}),
        ("-t 0.7", {"temperature": 0.7}),
        ("--temperature 1.5", {"temperature": 1.5}),
        ("--top-p 0.5", {"top_p": 0.5}),
        ("--seed 42", {"seed": 42}),
        ("--max-tokens 3", {"max_tokens": 3}),
        ('--stop "\\n" --stop END', {"stop": ["\n", "END"]}),
        ("--presence-penalty 0.5", {"presence_penalty": 0.5}),
        ("--frequency-penalty -0.5", {"frequency_penalty": -0.5}),
        ("-m smollm2-135m-instruct", {}),
        ("--provider local", {}),
        (
            "--json",  # the API needs the word JSON in a message: an instruction says it
            {
                "response_format": {"type": "json_object"},
                "messages": [{"role": "system", "content": JSON_INSTRUCTION}, *BASE["messages"]],
            },
        ),
        ("--reasoning-effort low", {"reasoning_effort": "low"}),
        ("--logprobs 2", {"logprobs": True, "top_logprobs": 2}),
        ("--no-stream", {"stream": None, "stream_options": None}),
        ("--fresh", {}),
        ("--budget 1", {}),
        (
            '-s "Be terse."',
            {"messages": [{"role": "system", "content": "Be terse."}, *BASE["messages"]]},
        ),
    ],
)
def test_each_option_changes_the_request_body(
    shell: TestingShell, sent: list[dict[str, Any]], options: str, changes: dict[str, Any]
) -> None:
    chat(shell, f"--max-tokens 4 {options}", "Say hi.")
    expected = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    assert sent == [expected]
    assert rows() == 1
    params = json.loads(wb.runs().iloc[0].params)
    assert params == {k: v for k, v in expected.items() if k != "messages"}


@integration
def test_streaming_and_not_streaming_each_give_one_row(
    shell: TestingShell, sent: list[dict[str, Any]]
) -> None:
    chat(shell, "-t 0 --max-tokens 12 --out streamed", "Count to five.")
    # Streaming is not part of a run's identity, so only --fresh asks the model again.
    chat(shell, "-t 0 --max-tokens 12 --no-stream --fresh --out whole", "Count to five.")
    df = wb.runs()
    assert len(df) == 2 and len(sent) == 2
    assert [json.loads(p).get("stream") for p in df.params] == [True, None]
    assert not df.cache_hit.any() and (df.status == "ok").all()
    streamed, whole = shell.user_ns["streamed"], shell.user_ns["whole"]
    assert streamed.text == whole.text  # greedy decoding: the same answer both ways
    assert df.iloc[0].ttft_s > 0 and pd.isna(df.iloc[1].ttft_s)


@integration
def test_a_kernel_sees_the_text_grow_then_the_rendered_answer(
    shell: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workbench.notebook.magics._in_kernel", lambda shell: True)
    with capture_output() as captured:
        chat(shell, "-t 0 --max-tokens 24", "Count from one to ten.")
    # A fresh kernel first says the local model is starting; the answer then replaces it.
    shown = [o for o in captured.outputs if "starting the local model" not in str(o.data)]
    first, *_, last = shown
    # Markdown while streaming too, as the final answer: no monospace text, no reflow.
    assert set(first.data) == {"text/markdown", "text/plain"}
    row = wb.runs().iloc[0]
    assert row.output.startswith(first.data["text/plain"])
    assert last.update  # the same output, redrawn as Markdown with the footer
    assert last.data["text/markdown"].startswith(row.output)
    # (cut at 24 tokens, so the footer says so between the model and the tokens)
    footer = f"{row.prompt_tokens}→{row.completion_tokens} tokens · $0 · "
    shown_text = last.data["text/plain"]
    assert f"{CHAT_MODEL_ALIAS} · cut at 24 tokens · " in shown_text
    assert footer in shown_text and f"run {row.run_id}" in shown_text
    meta = last.metadata["workbench"]
    assert meta["run_id"] == row.run_id and meta["model"] == CHAT_MODEL_ALIAS
    assert meta["completion_tokens"] == row.completion_tokens and meta["cost_usd"] == 0.0


@integration
def test_a_replay_is_a_row_marked_cached(shell: TestingShell, sent: list[dict[str, Any]]) -> None:
    chat(shell, "-t 0 --max-tokens 6 --out first", "Name a fruit.")
    chat(shell, "-t 0 --max-tokens 6 --out again", "Name a fruit.")
    first, again = shell.user_ns["first"], shell.user_ns["again"]
    assert len(sent) == 1 and rows() == 2
    assert again.cache_hit and again.text == first.text and again.run_id != first.run_id
    assert " · cached · " in again.footer and "cached" not in first.footer
    chat(shell, "-t 0 --max-tokens 6 --fresh", "Name a fruit.")
    assert len(sent) == 2 and rows() == 3


@integration
def test_out_binds_the_result_with_its_metadata(shell: TestingShell) -> None:
    chat(shell, "-t 0 --max-tokens 8 --no-stream --out answer", "Name a colour.")
    answer = shell.user_ns["answer"]
    assert isinstance(answer, ChatDisplay)
    row = wb.runs().iloc[0]
    assert answer.run_id == row.run_id and answer.text == row.output and str(answer) == row.output
    data, metadata = answer._repr_mimebundle_()
    assert data["text/markdown"].startswith(row.output) and row.run_id in data["text/markdown"]
    assert metadata["workbench"] == {
        "run_id": row.run_id,
        "model": CHAT_MODEL_ALIAS,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "total_tokens": row.total_tokens,
        "cost_usd": 0.0,
        "latency_s": pytest.approx(row.latency_s),
        "cache_hit": False,
        "run_ids": [row.run_id],
    }


@integration
def test_templates_fill_names_and_leave_json_alone(
    shell: TestingShell, sent: list[dict[str, Any]]
) -> None:
    shell.user_ns.update(city="Paris", persona="a geographer")
    chat(
        shell,
        '--max-tokens 4 -s "You are {{persona}}."',
        'Return {"city": "{{city}}", "country": ...} as JSON.',
    )
    assert sent[0]["messages"] == [
        {"role": "system", "content": "You are a geographer."},
        {"role": "user", "content": 'Return {"city": "Paris", "country": ...} as JSON.'},
    ]
    row = wb.runs().iloc[0]
    assert row.template == 'Return {"city": "{{city}}", "country": ...} as JSON.'
    assert json.loads(row.variables) == {"city": "Paris", "persona": "a geographer"}


@integration
def test_a_thread_sends_its_history_and_grows(
    shell: TestingShell, sent: list[dict[str, Any]]
) -> None:
    chat(shell, "--thread intro -t 0 --max-tokens 8 --out one", "My name is Ada.")
    chat(shell, "--thread intro -t 0 --max-tokens 8 --out two", "What is my name?")
    one = shell.user_ns["one"]
    first_turn = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": one.text},
    ]
    assert sent[0]["messages"] == first_turn[:1]
    assert sent[1]["messages"] == [*first_turn, {"role": "user", "content": "What is my name?"}]
    assert rows() == 2
    assert len(get_session().threads["intro"]) == 4
    shown = shell.run_line_magic("workbench", "thread show intro")
    assert "My name is Ada." in repr(shown) and "What is my name?" in repr(shown)
    assert "intro" in repr(shell.run_line_magic("workbench", "thread list"))
    shell.run_line_magic("workbench", "thread reset intro")
    assert "intro" not in get_session().threads
    # Another thread, or none, starts from nothing.
    chat(shell, "-t 0 --max-tokens 8", "What is my name?")
    assert sent[2]["messages"] == [{"role": "user", "content": "What is my name?"}]


@integration
def test_json_gives_a_parsed_object(shell: TestingShell, sent: list[dict[str, Any]]) -> None:
    chat(
        shell,
        "--json -t 0 --max-tokens 40 --out capital",
        'Give the capital of France as JSON with keys "city" and "country".',
    )
    capital = shell.user_ns["capital"]
    assert sent[0]["response_format"] == {"type": "json_object"}
    assert isinstance(capital.parsed, dict) and capital.parsed["city"] == "Paris"
    markdown = capital._repr_mimebundle_()[0]["text/markdown"]
    assert markdown.startswith("```json\n{\n  \"city\": \"Paris\"")
    assert rows() == 1


PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@integration
def test_schema_dict_binds_the_parsed_object(
    shell: TestingShell, sent: list[dict[str, Any]]
) -> None:
    shell.user_ns["person"] = PERSON_SCHEMA
    chat(shell, "--schema person -t 0 --max-tokens 60 --out someone", "Invent a person.")
    assert sent[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON_SCHEMA},
    }
    someone = shell.user_ns["someone"]
    assert isinstance(someone, dict) and set(someone) == {"name", "age"}
    assert isinstance(someone["age"], int)


@integration
def test_schema_pydantic_model_binds_an_instance(
    shell: TestingShell, sent: list[dict[str, Any]]
) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Person(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        name: str
        age: int

    shell.user_ns["Person"] = Person
    chat(shell, "--schema Person -t 0 --max-tokens 60 --out someone", "Invent a person.")
    assert sent[0]["response_format"]["json_schema"]["name"] == "Person"
    assert sent[0]["response_format"]["json_schema"]["schema"] == Person.model_json_schema()
    someone = shell.user_ns["someone"]
    assert isinstance(someone, Person) and someone.name
    assert rows() == 1


@integration
def test_embed_shows_a_symmetric_similarity(shell: TestingShell) -> None:
    cell = "%%embed --out texts\na cat sat on the mat\n\na kitten on a rug\nstocks fell\n"
    with capture_output() as captured:  # the blank line between texts is skipped
        shell.run_cell(cell)
    result = shell.user_ns["texts"]
    assert isinstance(result, EmbedResult)
    assert result.texts == ["a cat sat on the mat", "a kitten on a rug", "stocks fell"]
    assert result.vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0)
    similarity = result.similarity()
    assert np.array_equal(similarity.to_numpy(), similarity.to_numpy().T)
    assert np.allclose(np.diag(similarity), 1.0)
    assert similarity.iloc[0, 1] > similarity.iloc[0, 2]  # cat and kitten, not stocks
    nearest = result.nearest("a cat sat on the mat", k=2)
    assert list(nearest.text) == ["a cat sat on the mat", "a kitten on a rug"]
    assert result.df.shape == (3, 384)
    df = wb.runs()
    assert len(df) == 1 and df.iloc[0].kind == "embed" and df.iloc[0].model == EMBEDDING_MODEL_ALIAS
    (shown,) = captured.outputs
    assert shown.data["text/html"].startswith('<img src="data:image/png;base64,')
    assert shown.metadata["workbench"]["run_id"] == df.iloc[0].run_id
    # A query that is not among the texts is one more call, with the same model.
    assert list(result.nearest("the stock market fell", k=1).text) == ["stocks fell"]
    assert rows() == 2


@integration
def test_embed_paragraphs_and_dimensions_option(shell: TestingShell) -> None:
    shell.run_cell("%%embed --split paragraph --out paras\nfirst line\nstill first\n\nsecond\n")
    assert shell.user_ns["paras"].texts == ["first line still first", "second"]
    with pytest.raises(UsageError, match="--dimensions must be a whole number, at least 1, got 0"):
        shell.run_cell("%%embed --dimensions 0\nx\n")
    assert rows() == 1


# -- user mistakes: one UsageError line naming the fix, no call, no row --------------

@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("--temprature 0.5", "hi", "Unknown option --temprature for %%chat: did you mean --temp"),
        ("hello", "hi", "Unexpected 'hello' on the %%chat line"),
        ("-t 2.5", "hi", "--temperature must be a number between 0 and 2, got 2.5"),
        ("-t -0.1", "hi", "--temperature must be a number between 0 and 2, got -0.1"),
        ("-t warm", "hi", "--temperature must be a number between 0 and 2, got 'warm'"),
        ("--top-p 1.2", "hi", "--top-p must be a number between 0 and 1, got 1.2"),
        ("--seed 1.5", "hi", "--seed must be a whole number between -2**63 and 2**63-1, got '1.5'"),
        ("--max-tokens 0", "hi", "--max-tokens must be a whole number, at least 1, got 0"),
        ("--presence-penalty 3", "hi", "--presence-penalty must be a number between -2 and 2"),
        ("--budget -1", "hi", "--budget must be at least 0"),
        ("", "   \n  ", "The cell is empty: write the prompt"),
        ("", "Tell of {{topic}} in {{place}}.", "Undefined variables place, topic in the prompt"),
        ('-s "You are {{who}}"', "hi", "Undefined variable who in the --system"),
        ("--image missing.png", "hi", "--image missing.png: cannot read it (No such file"),
        ("--image notes.txt", "hi", "--image notes.txt: not an image file"),
        ("--run-tools", "hi", "--run-tools needs --tools VAR"),
        ("--json --schema s", "hi", "Use --json or --schema, not both"),
        ("--schema nothing_here", "hi", "--schema nothing_here: no variable 'nothing_here'"),
        ("--tools nothing_here", "hi", "--tools nothing_here: no variable 'nothing_here'"),
        ("--out 2x", "hi", "--out needs a Python variable name, got '2x'"),
        ('-s "unclosed', "hi", "Cannot read the %%chat line"),
        ("--provider nope", "hi", "Unknown provider 'nope'"),
    ],
)
def test_mistakes_are_one_usage_error_and_no_row(
    shell: TestingShell, line: str, cell: str, message: str
) -> None:
    with pytest.raises(UsageError) as info:
        chat(shell, line, cell)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert rows() == 0


def test_schema_must_be_a_schema(shell: TestingShell) -> None:
    shell.user_ns["s"] = ["not", "a", "schema"]
    with pytest.raises(UsageError, match="--schema s: s is a list, not a JSON-schema dict"):
        chat(shell, "--schema s", "hi")
    shell.user_ns["t"] = [42]
    with pytest.raises(UsageError, match=r"t\[0\] is int: tools are Python functions"):
        chat(shell, "--tools t", "hi")


def test_embed_mistakes(shell: TestingShell) -> None:
    with pytest.raises(UsageError, match="The cell is empty: write one text per line"):
        shell.run_cell("%%embed\n\n   \n")
    with pytest.raises(UsageError, match="argument --split: invalid choice: 'word'"):
        shell.run_cell("%%embed --split word\nx\n")
    with pytest.raises(UsageError, match="Unknown option --dims for %%embed: did you mean --dim"):
        shell.run_cell("%%embed --dims 3\nx\n")
    # A word that is close to no option gets no suggestion (difflib offered --repeat).
    with pytest.raises(UsageError) as far:
        shell.run_cell("%%chat --format json\nx\n")
    assert str(far.value) == "Unknown option --format for %%chat (see %%chat?)"
    assert rows() == 0


@integration
def test_unknown_model_names_the_closest(shell: TestingShell, sent: list[dict[str, Any]]) -> None:
    with pytest.raises(UsageError) as info:
        chat(shell, "-m smollm2-135m-instruc --max-tokens 4", "hi")
    assert str(info.value).startswith(
        "Unknown model 'smollm2-135m-instruc' for provider 'local'. "
        "Did you mean 'smollm2-135m-instruct'?"
    )
    with pytest.raises(UsageError, match="Unknown model 'minilm'.*'all-minilm-l6-v2'"):
        shell.run_cell("%%embed -m minilm\nx\n")
    # The README's own example of a "did you mean": the start of the id, misspelled.
    with pytest.raises(UsageError, match="Did you mean 'smollm2-135m-instruct'") as lone:
        chat(shell, "-m smolm2 --max-tokens 4", "hi")
    # The only chat model is the suggestion: not listed a second time.
    assert str(lone.value).count("smollm2-135m-instruct") == 1
    assert sent == [] and rows() == 0


@integration
def test_a_hosted_model_without_a_key_says_to_set_the_key(
    shell: TestingShell, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UsageError) as info:
        chat(shell, "-m gpt-4o-mini --max-tokens 4", "hi")
    message = str(info.value)
    # A known model whose key is missing is not "unknown"; the hint is not masked away
    # (an example key "sk-..." was shown as "export OPENAI_API_KEY=[redacted]").
    assert message.startswith("'gpt-4o-mini' is a hosted model and no OPENAI_API_KEY is set")
    assert "Unknown" not in message and "[redacted]" not in message
    assert "export OPENAI_API_KEY=YOUR_KEY" in message
    # Only chat models are offered for a chat: never the embedding model.
    assert "smollm2-135m-instruct" in message and "all-minilm" not in message
    assert sent == [] and rows() == 0


@integration
def test_an_http_error_from_the_real_server_is_one_line(shell: TestingShell) -> None:
    # The local model has no vision: the server refuses images with HTTP 500.
    wb.configure(max_retries=0)
    Path("dot.png").write_bytes(base64.b64decode(TINY_PNG))
    with pytest.raises(UsageError) as info:
        chat(shell, "--image dot.png --max-tokens 4", "What is this?")
    assert "HTTP 500 from POST http://127.0.0.1:" in str(info.value)
    assert "image input is not supported" in str(info.value)
    row = wb.runs().iloc[0]
    assert rows() == 1 and row.status == "error" and "image input" in row.error


# -- against a scripted API: what the real server will not do on demand --------------

TINY_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def scripted(request: Received) -> Reply:
    if request.path.endswith("/models"):
        names = ["gpt-4o-mini", "gpt-4o", "broken", "echo"]
        return Reply(body={"object": "list", "data": [{"id": name} for name in names]})
    body = request.body
    if body["model"] == "broken":
        return Reply(500, {"error": {"message": "the GPU caught fire"}})
    if body["model"] == "echo":  # a careless server that echoes credentials back
        return Reply(401, {"error": {"message": f"bad key {request.headers['authorization']}"}})
    messages = body["messages"]
    if body.get("tools") and messages[-1]["role"] == "user":
        call = {"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        reply = chat_reply("", model=body["model"])
        reply.body["choices"][0]["message"] = {"role": "assistant", "content": None,
                                              "tool_calls": [call]}
        reply.body["choices"][0]["finish_reason"] = "tool_calls"
        return reply
    if messages[-1]["role"] == "tool":
        return chat_reply(f"The tool said: {messages[-1]['content']}", model=body["model"])
    return chat_reply("Hello!", model=body["model"])


@pytest.fixture
def api(shell: TestingShell, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackAPI]:
    with LoopbackAPI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
        wb.configure(max_retries=0)
        yield server


def bodies(api: LoopbackAPI) -> list[Any]:
    return [r.body for r in api.received if r.path.endswith("/chat/completions")]


def get_weather(city: str, unit: str = "C") -> dict[str, Any]:
    """Today's weather in a city.

    Args:
        city: The city's name.
        unit: C or F.
    """
    return {"city": city, "temperature": 18, "unit": unit}


def test_tool_calls_are_shown_and_not_run_without_run_tools(
    shell: TestingShell, api: LoopbackAPI
) -> None:
    shell.user_ns["tools"] = [get_weather]
    chat(shell, "--tools tools --no-stream --out asked", "Weather in Paris?")
    (body,) = bodies(api)
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]
    asked = shell.user_ns["asked"]
    markdown = asked._repr_mimebundle_()[0]["text/markdown"]
    assert '`get_weather({"city": "Paris"})` (not run: add --run-tools)' in markdown
    assert rows() == 1 and json.loads(wb.runs().iloc[0].tool_calls)[0]["id"] == "call_1"


def test_run_tools_sends_results_back_until_an_answer(
    shell: TestingShell, api: LoopbackAPI
) -> None:
    shell.user_ns["tools"] = [get_weather]
    chat(shell, "--tools tools --run-tools --no-stream --out answer", "Weather in Paris?")
    first, second = bodies(api)
    assert second["messages"][-2]["tool_calls"][0]["id"] == "call_1"
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"city": "Paris", "temperature": 18, "unit": "C"}',
    }
    answer = shell.user_ns["answer"]
    assert answer.text.startswith("The tool said: {")
    assert [run.name for run in answer.tool_runs] == ["get_weather"]
    assert "2 calls" in answer.footer
    assert rows() == 2  # one row per call, tool rounds included


def test_images_are_sent_as_content_parts(shell: TestingShell, api: LoopbackAPI) -> None:
    Path("dot.png").write_bytes(base64.b64decode(TINY_PNG))
    chat(
        shell,
        "--image dot.png --image https://example.com/cat.jpg --no-stream",
        "Describe both.",
    )
    (body,) = bodies(api)
    assert body["messages"][-1]["content"] == [
        {"type": "text", "text": "Describe both."},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{TINY_PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    assert wb.runs().iloc[0].prompt == "Describe both."


def test_http_error_names_status_and_message_never_the_key(
    shell: TestingShell, api: LoopbackAPI
) -> None:
    with pytest.raises(UsageError) as info:
        chat(shell, "-m broken --no-stream", "hi")
    assert "HTTP 500" in str(info.value) and "the GPU caught fire" in str(info.value)
    with pytest.raises(UsageError) as auth:
        chat(shell, "-m echo --no-stream", "hi")
    assert "HTTP 401" in str(auth.value) and SENTINEL not in str(auth.value)
    assert list(wb.runs().status) == ["error", "error"]


def test_unknown_model_did_you_mean_from_the_provider_list(
    shell: TestingShell, api: LoopbackAPI
) -> None:
    with pytest.raises(UsageError, match="Unknown model 'gpt-4o-mimi'.*Did you mean 'gpt-4o-mini'"):
        chat(shell, "-m gpt-4o-mimi", "hi")
    assert bodies(api) == [] and rows() == 0


def test_budget_refuses_before_sending(shell: TestingShell, api: LoopbackAPI) -> None:
    refused = "^Call refused before sending anything: the expected cost .* is above the budget"
    with pytest.raises(UsageError, match=refused):
        chat(shell, "-m gpt-4o --max-tokens 4000 --budget 0.0001 --no-stream", "Essay " * 200)
    assert bodies(api) == [] and rows() == 0
    chat(shell, "-m gpt-4o --max-tokens 10 --budget 1 --no-stream", "hi")
    assert len(bodies(api)) == 1 and rows() == 1


def test_no_provider_reachable(shell: TestingShell, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    wb.configure(max_retries=0)
    with pytest.raises(UsageError, match=rf"^No provider reachable: Could not talk to .*:{port}"):
        chat(shell, "-m some-model --no-stream", "hi")
    with pytest.raises(UsageError, match="No provider reachable"):
        chat(shell, "--no-stream", "hi")


def test_replays_need_no_server(shell: TestingShell, api: LoopbackAPI) -> None:
    chat(shell, "-m gpt-4o-mini --no-stream --out first", "hi")
    api.__exit__()  # the server is gone; the table still has the answer
    chat(shell, "-m gpt-4o-mini --no-stream --out again", "hi")
    assert shell.user_ns["again"].cache_hit and shell.user_ns["again"].text == "Hello!"


# -- %workbench -----------------------------------------------------------------------

def test_workbench_status_names_provider_store_experiment_and_spend(
    shell: TestingShell, api: LoopbackAPI, isolated_store: Path
) -> None:
    chat(shell, "-m gpt-4o-mini --no-stream", "hi")
    status = repr(shell.run_line_magic("workbench", ""))
    assert f"openai · {api.base_url}" in status
    assert str(isolated_store) in status and "experiment  default" in status
    # 10 tokens in, 5 out, at gpt-4o-mini's $0.15 and $0.60 per million.
    assert "spent       $0.0000045 this session" in status
    assert SENTINEL not in status
    # HTML, not Markdown: the spend and budget rows hold dollars (maths in Markdown).
    status = shell.run_line_magic("workbench", "status")._repr_mimebundle_()
    assert "text/markdown" not in status and ">provider</th>" in status["text/html"]


def test_workbench_settings(shell: TestingShell, api: LoopbackAPI) -> None:
    shell.run_line_magic("workbench", "experiment haiku")
    chat(shell, "-m gpt-4o-mini --no-stream", "hi")
    chat(shell, "-m gpt-4o-mini --no-stream --experiment other", "hi")
    assert list(wb.runs().experiment) == ["haiku", "other"]
    assert "haiku" in repr(shell.run_line_magic("workbench", "experiment"))
    assert "$0.50, $0.50 left" in repr(shell.run_line_magic("workbench", "budget 0.5"))
    assert float(get_session().budget or 0) == 0.5
    shell.run_line_magic("workbench", "budget off")
    assert get_session().budget is None
    assert "local" in repr(shell.run_line_magic("workbench", "use local"))
    assert get_session().default_provider == "local"
    assert "gpt-4o" in repr(shell.run_line_magic("workbench", "models openai"))


def test_workbench_runs_shows_the_last_n(shell: TestingShell, api: LoopbackAPI) -> None:
    for word in ("one", "two", "three"):
        chat(shell, "-m gpt-4o-mini --no-stream", word)
    grid = shell.run_line_magic("workbench", "runs 2")
    assert [row["prompt"][1] for row in grid.rows] == ["three", "two"]  # newest first
    assert len(shell.run_line_magic("workbench", "runs").rows) == 3
    assert repr(grid).startswith("2 runs, newest first")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("hepl", "Unknown command %workbench hepl. Did you mean 'help'?"),
        ("runs many", "%workbench runs N needs a positive whole number, got 'many'"),
        ("runs 0", "needs a positive whole number"),
        ("budget cheap", "--budget must be an amount in USD, got 'cheap'"),
        ("use", "Usage: %workbench use PROVIDER"),
        ("use opena", "Unknown provider 'opena'. Did you mean 'openai'?"),
        ("thread show nope", "No thread 'nope'. Threads: none yet"),
        ("thread remove x", "Unknown command %workbench thread remove"),
    ],
)
def test_workbench_mistakes(shell: TestingShell, line: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("workbench", line)
    assert message in str(info.value)


def test_help_for_every_magic(shell: TestingShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell("%%chat?")
    shell.run_cell("%%embed?")
    shell.run_cell("%workbench?")
    shown = capsys.readouterr().out
    assert "%%chat [options]" in shown and "--run-tools" in shown
    assert "%%embed [options]" in shown and "--dimensions" in shown
    assert "thread list|show NAME|reset NAME" in shown
    overview = shell.run_line_magic("workbench", "help")
    assert "%%chat?" in repr(overview) and "| `%%embed [options]` |" in overview._repr_markdown_()


def test_the_help_reads_as_text_not_rst(shell: TestingShell) -> None:
    for magic in ("chat", "embed"):
        with capture_output() as shown:
            shell.run_cell(f"%%{magic}?")
        text = shown.stdout
        assert f"%%{magic} [options]" in text and "--model" in text
        assert "``" not in text and "::" not in text, text[:300]


def test_a_one_line_chat_sends_the_rest_of_the_line(shell: TestingShell, api: LoopbackAPI) -> None:
    shell.run_cell("%chat -m gpt-4o-mini --no-stream --max-tokens 9 What's a haiku?")
    [body] = bodies(api)
    assert body["messages"] == [{"role": "user", "content": "What's a haiku?"}]
    assert body["max_tokens"] == 9 and len(wb.runs()) == 1
    with pytest.raises(UsageError, match="%chat needs a question after the options"):
        shell.run_cell("%chat -t 0.5")
