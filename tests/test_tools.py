"""Tool schemas from Python functions, and the loop that runs the tools a model calls."""

from __future__ import annotations

import enum
import json
from typing import Any, Literal, Optional

import pytest

from workbench.calls.results import ChatResponse
from workbench.calls.tools import (
    ToolError,
    function_schema,
    json_schema_of,
    run_tool_call,
    run_tool_loop,
    tool_specs,
)
from workbench.core.record import RunRecord


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


def forecast(
    city: str,
    days: int = 3,
    unit: Unit = Unit.C,
    detail: Literal["short", "long"] = "short",
    hours: Optional[list[int]] = None,  # noqa: UP045 - the old spelling is the test
    extra: dict[str, Any] | None = None,
    *args: Any,
    **kwargs: Any,
) -> str:
    """Forecast the weather.

    Looks it up somewhere.

    Args:
        city: The city's name,
            as people write it.
        days (int): How many days ahead.

    Returns:
        A sentence.
    """
    return f"{city}: sunny"


def test_a_function_becomes_a_tool_schema() -> None:
    assert function_schema(forecast) == {
        "type": "function",
        "function": {
            "name": "forecast",
            "description": "Forecast the weather. Looks it up somewhere.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {
                        "type": "string", "description": "The city's name, as people write it."
                    },
                    "days": {
                        "type": "integer", "description": "How many days ahead.", "default": 3
                    },
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "detail": {"type": "string", "enum": ["short", "long"], "default": "short"},
                    "hours": {"type": "array", "items": {"type": "integer"}},
                    "extra": {"type": "object"},
                },
                "required": ["city"],
            },
        },
    }


def numpy_style(x: float, flag: bool) -> None:
    """Scale.

    Parameters
    ----------
    x : float
        The number
        to scale.
    flag : bool
        Whether to.
    """


def sphinx_style(n: int) -> None:
    """Count.

    :param int n: how many.
    :returns: nothing.
    """


def test_numpy_and_sphinx_docstrings() -> None:
    props = function_schema(numpy_style)["function"]["parameters"]["properties"]
    assert props == {
        "x": {"type": "number", "description": "The number to scale."},
        "flag": {"type": "boolean", "description": "Whether to."},
    }
    sphinx = function_schema(sphinx_style)["function"]
    assert sphinx["description"] == "Count."
    n = sphinx["parameters"]["properties"]["n"]
    assert n == {"type": "integer", "description": "how many."}


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (Any, {}),
        (str | int, {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
        (tuple[str, ...], {"type": "array", "items": {"type": "string"}}),
        (list, {"type": "array"}),
        (Literal[1, "a"], {"enum": [1, "a"]}),
        (object, {}),
    ],
)
def test_json_schema_of_hints(hint: Any, schema: dict[str, Any]) -> None:
    assert json_schema_of(hint) == schema


def test_a_pydantic_parameter_uses_its_own_schema() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Point(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        x: int

    assert json_schema_of(Point) == Point.model_json_schema()


def test_tool_specs_take_functions_and_schemas() -> None:
    bare = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}
    full = {"type": "function", "function": {"name": "search", "parameters": {}}}
    schemas, functions = tool_specs([forecast, bare, full])
    assert [s["function"]["name"] for s in schemas] == ["forecast", "lookup", "search"]
    assert schemas[1] == {"type": "function", "function": bare}
    assert functions == {"forecast": forecast}
    assert tool_specs(forecast)[1] == {"forecast": forecast}  # one function, not in a list


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "tools is empty"),
        ([forecast, forecast], "Two tools in tools are called 'forecast'"),
        (["forecast"], r"tools\[0\] is str: tools are Python functions or schemas"),
        ([{"description": "no name"}], r"tools\[0\] is a dict but not a tool schema"),
        ([lambda: 1], "A tool needs a plain function name"),
        ([int], r"tools\[0\] is type"),
    ],
)
def test_bad_tools(value: Any, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        tool_specs(value)


def call(name: str, arguments: str, call_id: str = "c1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def boom(x: int) -> int:
    raise RuntimeError(f"no {x}")


def test_running_a_call() -> None:
    functions = {"forecast": forecast, "boom": boom, "pair": lambda: {"a": [1, 2]}}
    ok = run_tool_call(call("forecast", '{"city": "Oslo"}'), functions)
    assert (ok.result, ok.ran, ok.failed, ok.call_id) == ("Oslo: sunny", True, False, "c1")
    assert run_tool_call(call("pair", ""), functions).result == '{"a": [1, 2]}'
    # Failures are told to the model as the result, so it can try again.
    failures = {
        "Error: RuntimeError: no 3": call("boom", '{"x": 3}'),
        "Error: no Python function named 'nope' was given": call("nope", "{}"),
        "Error: the arguments are not a JSON object": call("forecast", "[1]"),
        "Error: TypeError": call("forecast", '{"town": "Oslo"}'),
    }
    for expected, failing in failures.items():
        run = run_tool_call(failing, functions)
        assert run.failed and (run.result or "").startswith(expected)
    assert "not valid JSON" in (run_tool_call(call("forecast", "{oops"), functions).result or "")


def response(text: str = "", calls: list[dict[str, Any]] | None = None) -> ChatResponse:
    record = RunRecord(kind="chat", provider="p", model="m", output=text)
    record.tool_calls = json.dumps(calls) if calls else None
    return ChatResponse(record=record)


def test_the_loop_runs_tools_until_a_text_answer() -> None:
    replies = [
        response(
            calls=[call("forecast", '{"city": "Oslo"}'), call("forecast", '{"city": "Rome"}', "c2")]
        ),
        response("Sunny in both."),
    ]
    seen: list[list[dict[str, Any]]] = []

    def send(messages: list[dict[str, Any]]) -> ChatResponse:
        seen.append([dict(m) for m in messages])
        return replies[len(seen) - 1]

    messages = [{"role": "user", "content": "Weather?"}]
    responses, runs = run_tool_loop(send, messages, {"forecast": forecast})
    assert [r.text for r in responses] == ["", "Sunny in both."]
    assert [r.result for r in runs] == ["Oslo: sunny", "Rome: sunny"]
    assert [m["role"] for m in seen[1]] == ["user", "assistant", "tool", "tool"]
    assert seen[1][2] == {"role": "tool", "tool_call_id": "c1", "content": "Oslo: sunny"}
    assert messages == seen[1]  # the caller keeps the whole exchange


def test_the_loop_stops_after_max_rounds_and_gives_calls_ids() -> None:
    no_id = {"type": "function", "function": {"name": "forecast", "arguments": '{"city": "X"}'}}
    sent = []

    def send(messages: list[dict[str, Any]]) -> ChatResponse:
        sent.append(len(messages))
        return response(calls=[no_id])

    question = [{"role": "user", "content": "?"}]
    responses, runs = run_tool_loop(send, question, {"forecast": forecast}, max_rounds=3)
    assert len(responses) == 3 and len(runs) == 2 and sent == [1, 3, 5]
    assert runs[0].call_id == "call_0"
