"""Option values: one parser for every knob, ranges checked, lists and ranges for sweeps."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from workbench.notebook.options import (
    ChatRequest,
    EmbedRequest,
    OptionError,
    parse_knob,
    parse_knob_values,
    split_texts,
)


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("temperature", "0", 0.0),
        ("temperature", " 2 ", 2.0),
        ("top_p", "0.25", 0.25),
        ("seed", "-7", -7),
        ("max_tokens", "1", 1),
        ("presence_penalty", "-2", -2.0),
        ("frequency_penalty", "1.5", 1.5),
        ("dimensions", "256", 256),
        ("model", "ollama:llama3:8b", "ollama:llama3:8b"),
        ("budget", "0.5", 0.5),
        ("deadline", "2.5", 2.5),
        ("temperature", None, None),
    ],
)
def test_good_values(name: str, raw: str | None, value: Any) -> None:
    assert parse_knob(name, raw) == value


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("temperature", "2.01", "--temperature must be a number between 0 and 2, got 2.01"),
        ("temperature", "nan", "--temperature must be a number between 0 and 2, got nan"),
        ("temperature", "inf", "--temperature must be a number between 0 and 2"),
        ("top_p", "-0.1", "--top-p must be a number between 0 and 1"),
        ("seed", "1e3", "--seed must be a whole number between -2**63 and 2**63-1, got '1e3'"),
        ("max_tokens", "0", "--max-tokens must be a whole number, at least 1, got 0"),
        ("dimensions", "many", "--dimensions must be a whole number, at least 1"),
        ("budget", "1,5", "--budget must be an amount in USD, got '1,5'"),
        ("deadline", "0", "--deadline must be at least 0.001, got 0"),
        ("model", "", "--model needs a value"),
    ],
)
def test_bad_values_name_the_option_and_the_range(name: str, raw: str, message: str) -> None:
    with pytest.raises(OptionError) as info:
        parse_knob(name, raw)
    assert str(info.value) == message or str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("name", "raw"),
    [("temperature", "0,0.7,1.2"), ("seed", "1:4"), ("top_p", "0:1:0.5"), ("model", "a,b")],
)
def test_one_value_options_refuse_lists_and_ranges(name: str, raw: str) -> None:
    with pytest.raises(OptionError, match=r"give one value here \(lists and ranges of values make"):
        parse_knob(name, raw)


@pytest.mark.parametrize(
    ("name", "raw", "values"),
    [
        ("temperature", "0,0.7,1.2", [0.0, 0.7, 1.2]),
        ("temperature", "0:1:0.5", [0.0, 0.5, 1.0]),
        ("temperature", "0:2", [0.0, 1.0, 2.0]),  # floats, as one value would be
        ("temperature", "none,0.7", [None, 0.7]),
        ("seed", "1:4", [1, 2, 3, 4]),
        ("seed", "1,5:3:-1", [1, 5, 4, 3]),
        ("max_tokens", "8", [8]),
        ("model", "gpt-4o-mini, ollama:llama3:8b", ["gpt-4o-mini", "ollama:llama3:8b"]),
        ("model", "ollama:llama3:8b", ["ollama:llama3:8b"]),
        ("seed", None, []),
    ],
)
def test_chat_knobs_take_lists_and_ranges(name: str, raw: str | None, values: list[Any]) -> None:
    assert parse_knob_values(name, raw) == values


def chat_args(**given: Any) -> argparse.Namespace:
    names = [
        "model", "temperature", "top_p", "seed", "max_tokens", "system", "stop",
        "presence_penalty", "frequency_penalty", "provider", "experiment", "out", "thread",
        "schema", "tools", "image", "budget", "deadline", "repeat", "concurrency",
        "reasoning_effort", "logprobs",
    ]
    flags = ["no_stream", "fresh", "json", "run_tools"]
    values: dict[str, Any] = {**dict.fromkeys(names), **dict.fromkeys(flags, False), **given}
    return argparse.Namespace(**values)


def test_a_chat_request_holds_only_what_was_given() -> None:
    request = ChatRequest.from_args(
        chat_args(temperature="0.5", stop=["\\n", "END"], image=["a.png"], no_stream=True),
        "\n\nHello\n  \n",
    )
    assert request.prompt == "Hello"
    assert request.params == {"temperature": 0.5, "stop": ["\n", "END"]}
    assert request.images == ("a.png",) and not request.stream


def test_several_values_make_a_sweep() -> None:
    request = ChatRequest.from_args(chat_args(temperature="0,1", seed="3", model="a,b"), "hi")
    assert request.is_sweep and request.model is None
    assert request.grid == {"model": ("a", "b"), "temperature": (0.0, 1.0)}
    assert request.params == {"seed": 3}
    assert ChatRequest.from_args(chat_args(repeat="2"), "hi").is_sweep
    assert not ChatRequest.from_args(chat_args(seed="1:1", repeat="1"), "hi").is_sweep


def test_split_texts() -> None:
    cell = "  one \n\n two\nthree\n\n\nfour\n"
    assert split_texts(cell) == ["one", "two", "three", "four"]
    assert split_texts(cell, "paragraph") == ["one", "two three", "four"]
    args = argparse.Namespace(
        split="line", model=None, dimensions="8", out="v", experiment=None, fresh=False
    )
    assert EmbedRequest.from_args(args, cell).dimensions == 8
