"""The one table of request knobs (workbench/core/knobs.py) and the checks made before sending:
every front end refuses the same values with the same range, and nothing reaches the API."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.error import UsageError
from loopback import LoopbackAPI, Received, Reply, chat_reply
from testing_shell import TestingShell, open_shell

import workbench as wb
from workbench.core import knobs
from workbench.core.errors import InvalidInputError
from workbench.notebook import options
from workbench.notebook.widgets import Playground, SweepPanel

Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]  # the start_api fixture
TOO_BIG = 2**70  # beyond SQLite's and the API's 64-bit integers


def echo(request: Received) -> Reply:
    if request.path.endswith("/embeddings"):
        texts = request.body["input"]
        return Reply(
            body={
                "object": "list",
                "model": request.body["model"],
                "data": [
                    {"object": "embedding", "index": i, "embedding": [1.0, 0.0, 0.0]}
                    for i, _ in enumerate(texts)
                ],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        )
    return chat_reply("Hi.", model=request.body["model"])


@pytest.fixture
def api(start_api: Start) -> LoopbackAPI:
    return start_api(echo)


@pytest.fixture
def shell(api: LoopbackAPI) -> Iterator[TestingShell]:
    with open_shell() as ipython:
        yield ipython


def rows(store: Path) -> int:
    if not store.exists():
        return 0
    conn = sqlite3.connect(store)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    finally:
        conn.close()


# -- the table itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "sent"),
    [
        ("temperature", 0, 0),
        ("temperature", 2, 2),
        ("temperature", 0.7, 0.7),
        ("top_p", 1, 1),
        ("presence_penalty", -2, -2),
        ("frequency_penalty", 2.0, 2.0),
        ("seed", -(2**63), -(2**63)),
        ("seed", 2**63 - 1, 2**63 - 1),
        ("max_tokens", 1, 1),
        ("max_completion_tokens", 2**63 - 1, 2**63 - 1),
        ("n", 128, 128),
        ("stop", "\n", "\n"),
        ("stop", ("a", "b", "c", "d"), ["a", "b", "c", "d"]),
        ("logprobs", False, False),
        ("top_logprobs", 0, 0),
        ("top_logprobs", 20, 20),
        ("dimensions", 1, 1),
        ("temperature", None, None),  # not sent
        ("response_format", {"type": "json_object"}, {"type": "json_object"}),  # not a knob
    ],
)
def test_values_in_range_pass_as_they_are(name: str, value: Any, sent: Any) -> None:
    got = knobs.check(name, value)
    assert got == sent and type(got) is type(sent)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("temperature", 2.5, "temperature must be a number between 0 and 2, got 2.5"),
        ("temperature", -0.1, "temperature must be a number between 0 and 2, got -0.1"),
        ("temperature", float("nan"), "temperature must be a number between 0 and 2, got nan"),
        ("temperature", True, "temperature must be a number between 0 and 2, got True"),
        ("temperature", "0.5", "temperature must be a number between 0 and 2, got '0.5'"),
        ("top_p", 1.01, "top_p must be a number between 0 and 1, got 1.01"),
        ("presence_penalty", -2.5, "presence_penalty must be a number between -2 and 2"),
        ("frequency_penalty", 3, "frequency_penalty must be a number between -2 and 2, got 3"),
        ("seed", TOO_BIG, "seed must be a whole number between -2**63 and 2**63-1, got 1180"),
        ("seed", -TOO_BIG, "seed must be a whole number between -2**63 and 2**63-1, got -118"),
        ("seed", 1.0, "seed must be a whole number between -2**63 and 2**63-1, got 1.0"),
        ("max_tokens", 0, "max_tokens must be a whole number, at least 1, got 0"),
        ("max_tokens", TOO_BIG, "max_tokens must be a whole number between 1 and 2**63-1"),
        ("max_completion_tokens", -1, "max_completion_tokens must be a whole number, at least 1"),
        ("n", 0, "n must be a whole number between 1 and 128, got 0"),
        ("stop", ["a", "b", "c", "d", "e"], "stop must be a string or a list of at most 4 strings"),
        ("stop", [], "stop must be a string or a list of at most 4 strings, got []"),
        ("stop", ["a", 1], "stop must be a string or a list of at most 4 strings"),
        ("stop", {"a"}, "stop must be a string or a list of at most 4 strings"),
        ("logprobs", 1, "logprobs must be True or False, got 1"),
        ("logprobs", "true", "logprobs must be True or False, got 'true'"),
        ("top_logprobs", 21, "top_logprobs must be a whole number between 0 and 20, got 21"),
        ("top_logprobs", -1, "top_logprobs must be a whole number between 0 and 20, got -1"),
        ("dimensions", 0, "dimensions must be a whole number, at least 1, got 0"),
    ],
)
def test_a_value_outside_is_one_line_naming_the_range(name: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        knobs.check(name, value)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "sent"),
    [
        ("temperature", np.float32(0.7), 0.7),  # its own shortest text, not 0.699999988
        ("temperature", np.float64(0.3), 0.3),
        ("top_p", np.float16(0.5), 0.5),
        ("temperature", np.int64(1), 1),
        ("seed", np.int64(3), 3),
        ("seed", np.uint8(9), 9),
        ("max_tokens", np.int32(64), 64),
        ("logprobs", np.True_, True),
        ("dimensions", np.int64(256), 256),
    ],
)
def test_numpy_scalars_become_python_numbers(name: str, value: Any, sent: Any) -> None:
    got = knobs.check(name, value)
    assert got == sent and type(got) is type(sent)


def test_numpy_scalars_outside_the_range_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="between 0 and 2, got np.float32"):
        knobs.check("temperature", np.float32(2.5))
    with pytest.raises(InvalidInputError, match="must be True or False"):
        knobs.check("logprobs", np.int64(1))


def test_the_magics_and_panels_read_their_ranges_from_the_table() -> None:
    # One table: %%chat's options are the knobs' own entries, not a second table.
    assert options.KNOBS is knobs.KNOBS and options.Knob is knobs.Knob
    assert knobs.KNOBS["top_p"].option == "--top-p"
    assert not knobs.KNOBS["budget"].request  # the workbench's own option: never sent
    g = Playground("hi", models=["m"])
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        control = g.knobs[name].control
        assert (control.min, control.max) == (knobs.KNOBS[name].low, knobs.KNOBS[name].high)
    assert g.knobs["max_tokens"].control.min == knobs.KNOBS["max_tokens"].low
    p = SweepPanel("hi", models=["m"])
    assert (p.temperature.control.min, p.temperature.control.max) == (0, 2)
    assert (p.top_p.control.min, p.top_p.control.max) == (0, 1)


# -- every front end refuses the same values, before anything is sent ------------------------

# Values outside the API's range, each with the words of the range its refusal must name.
OUTSIDE: list[tuple[str, Any, str]] = [
    ("temperature", 2.5, "between 0 and 2"),
    ("temperature", -0.5, "between 0 and 2"),
    ("top_p", 1.5, "between 0 and 1"),
    ("top_p", -0.1, "between 0 and 1"),
    ("presence_penalty", 2.5, "between -2 and 2"),
    ("presence_penalty", -3, "between -2 and 2"),
    ("frequency_penalty", 2.01, "between -2 and 2"),
    ("frequency_penalty", -2.5, "between -2 and 2"),
    ("seed", TOO_BIG, "between -2**63 and 2**63-1"),
    ("seed", -TOO_BIG, "between -2**63 and 2**63-1"),
    ("max_tokens", 0, "at least 1"),
    ("max_tokens", TOO_BIG, "between 1 and 2**63-1"),
    ("max_completion_tokens", 0, "at least 1"),
    ("max_completion_tokens", TOO_BIG, "between 1 and 2**63-1"),
    ("n", 0, "between 1 and 128"),
    ("n", 129, "between 1 and 128"),
    ("stop", ["a", "b", "c", "d", "e"], "at most 4 strings"),
    ("logprobs", 1, "True or False"),
    ("top_logprobs", 21, "between 0 and 20"),
    ("top_logprobs", -1, "between 0 and 20"),
]
# The request knobs with a range (names are checked where they are resolved).
CHAT_KNOBS = sorted(name for name, knob in knobs.KNOBS.items()
                    if knob.request and knob.kind != "text" and name != "dimensions")


def test_every_chat_knob_of_the_table_is_tried() -> None:
    assert sorted({name for name, _, _ in OUTSIDE}) == CHAT_KNOBS


def magic_line(name: str, value: Any) -> str | None:
    """The %%chat options that ask for ``value``, or None when %%chat has no option for it."""
    if name == "stop":
        return " ".join(f"--stop {s}" for s in value)
    knob = options.KNOBS.get(name)
    if knob is None or knob.option is None or isinstance(value, bool):
        return None
    return f"{knob.option} {value}"


def before_the_range(message: str, label: str) -> str:
    """What a refusal says the value must be, without the label and the value given."""
    head = message.split(", got")[0]
    assert head.startswith(f"{label} must be "), message
    return head[len(label):]


@pytest.mark.parametrize(("name", "value", "words"), OUTSIDE)
def test_wb_chat_and_the_magic_refuse_the_same_values_naming_the_range(
    name: str,
    value: Any,
    words: str,
    api: LoopbackAPI,
    shell: TestingShell,
    isolated_store: Path,
) -> None:
    with pytest.raises(InvalidInputError) as python:
        wb.chat("Say hi.", model="gpt-4o-mini", **{name: value})
    assert words in str(python.value) and "\n" not in str(python.value)
    line = magic_line(name, value)
    if line is not None:
        with pytest.raises(UsageError) as magic:
            shell.run_cell(f"%%chat --model gpt-4o-mini {line}\nSay hi.")
        option = line.split()[0]
        assert words in str(magic.value) and "\n" not in str(magic.value)
        # One table, one sentence: only the label differs (--top-p for top_p).
        assert before_the_range(str(magic.value), option) == before_the_range(
            str(python.value), name
        )
    assert api.received == [] and rows(isolated_store) == 0


@pytest.mark.parametrize(("name", "value", "words"), OUTSIDE)
def test_async_chat_and_sweeps_refuse_the_same_values(
    name: str, value: Any, words: str, api: LoopbackAPI, isolated_store: Path
) -> None:
    import asyncio

    with pytest.raises(InvalidInputError, match=words.replace("*", r"\*")):
        asyncio.run(wb.achat("Say hi.", model="gpt-4o-mini", **{name: value}))
    # A swept list with one bad value among good ones: refused before the sweep sends any.
    good = knobs.KNOBS[name].low if name not in ("stop", "logprobs") else None
    good_values = {"stop": ["x"], "logprobs": True}.get(name, good)
    with pytest.raises(InvalidInputError, match=words.replace("*", r"\*")):
        wb.sweep("Say hi.", model="gpt-4o-mini", grid={name: [good_values, value]}).run()
    with pytest.raises(InvalidInputError, match=words.replace("*", r"\*")):
        wb.sweep("Say {{x}}.", vars={"x": ["a", "b"]}, model="gpt-4o-mini", **{name: value})
    assert api.received == [] and rows(isolated_store) == 0


def test_a_swept_list_is_checked_before_its_template_is_rendered(api: LoopbackAPI) -> None:
    # A million-point grid with its bad value last: refused from the list itself.
    with pytest.raises(InvalidInputError, match=r"seed must be .*, got 1180591620717411303424"):
        wb.sweep("hi", grid={"seed": [*range(1_000_000), TOO_BIG]})
    assert api.received == []


def test_the_magics_sweep_refuses_a_bad_value_in_a_list(
    api: LoopbackAPI, shell: TestingShell, isolated_store: Path
) -> None:
    with pytest.raises(UsageError) as info:
        shell.run_cell(f"%%chat --model gpt-4o-mini --seed 1,{TOO_BIG}\nSay hi.")
    assert str(info.value) == (
        f"--seed 1,{TOO_BIG}: {TOO_BIG} is not a whole number between -2**63 and 2**63-1"
    )
    with pytest.raises(UsageError, match="is not a number between 0 and 2"):
        shell.run_cell("%%chat --model gpt-4o-mini -t 0:3\nSay hi.")
    assert api.received == [] and rows(isolated_store) == 0


def test_the_panels_refuse_the_same_values(api: LoopbackAPI, isolated_store: Path) -> None:
    g = Playground("hi", models=["gpt-4o-mini"])
    g.stream.value = False
    g.knobs["seed"].check.value = True
    g.knobs["seed"].control.value = TOO_BIG
    g.run_button.click()
    assert "seed must be a whole number between -2**63 and 2**63-1" in g.message.value
    p = SweepPanel("hi", models=["gpt-4o-mini"])
    p.seeds.value = f"1, {TOO_BIG}"
    assert "between -2**63 and 2**63-1" in p.estimate.value
    p.run_button.click()
    assert "between -2**63 and 2**63-1" in p.message.value
    assert api.received == [] and rows(isolated_store) == 0


# -- the other arguments: types checked before sending ---------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"experiment": 123}, "experiment must be text (a str), got 123"),
        ({"model": 5}, "model must be text (a str), got 5"),
        ({"system": ["be brief"]}, "system must be text (a str), got ['be brief']"),
        ({"provider": b"openai"}, "provider must be text (a str), got b'openai'"),
        ({"stream": "yes"}, "stream must be True or False, got 'yes'"),
        ({"fresh": 1}, "fresh must be True or False, got 1"),
        ({"budget": "lots"}, "budget must be an amount in USD"),
        ({"on_delta": "print"}, "on_delta must be a function"),
        ({"experiment": "caf\udce9"}, "experiment is not valid Unicode"),
    ],
)
def test_wrong_types_of_other_arguments_are_refused_before_sending(
    kwargs: dict[str, Any], message: str, api: LoopbackAPI, isolated_store: Path
) -> None:
    with pytest.raises(InvalidInputError) as info:
        wb.chat("Say hi.", **({"model": "gpt-4o-mini"} | kwargs))
    assert str(info.value).startswith(message)
    assert api.received == [] and rows(isolated_store) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dimensions": TOO_BIG}, "dimensions must be a whole number between 1 and 2**63-1"),
        ({"dimensions": 0}, "dimensions must be a whole number, at least 1"),
        ({"experiment": 123}, "experiment must be text (a str), got 123"),
        ({"model": 5}, "model must be text (a str), got 5"),
    ],
)
def test_embed_arguments_are_checked_before_sending(
    kwargs: dict[str, Any], message: str, api: LoopbackAPI, isolated_store: Path
) -> None:
    with pytest.raises(InvalidInputError) as info:
        wb.embed(["a", "b"], **({"model": "text-embedding-3-small"} | kwargs))
    assert str(info.value).startswith(message)
    assert api.received == [] and rows(isolated_store) == 0


def test_numpy_knobs_are_sent_and_stored_as_numbers(api: LoopbackAPI) -> None:
    first = wb.chat(
        "Say hi.",
        model="gpt-4o-mini",
        temperature=np.float32(0.7),
        top_p=np.float64(0.9),
        seed=np.int64(3),
        max_tokens=np.int32(16),
        logprobs=np.bool_(False),
    )
    body = api.received[-1].body
    assert (body["temperature"], body["top_p"], body["seed"], body["max_tokens"]) == (
        0.7, 0.9, 3, 16,
    )
    assert body["logprobs"] is False
    row = wb.runs().iloc[-1]
    assert (row.temperature, row.seed, row.max_tokens) == (0.7, 3, 16)
    # The same knobs as plain numbers are the same request: answered from the table.
    again = wb.chat(
        "Say hi.", model="gpt-4o-mini", temperature=0.7, top_p=0.9, seed=3, max_tokens=16,
        logprobs=False,
    )
    assert again.cache_hit and again.run_id != first.run_id
    assert api.count("/chat/completions") == 1


def test_numpy_dimensions_embed(api: LoopbackAPI) -> None:
    wb.embed(["a"], model="text-embedding-3-small", dimensions=np.int64(3))
    assert api.received[-1].body["dimensions"] == 3


def test_a_sweep_over_numpy_values_sends_python_numbers(api: LoopbackAPI) -> None:
    s = wb.sweep(
        "Say hi.",
        model="gpt-4o-mini",
        grid={"temperature": np.linspace(0, 1, 3, dtype=np.float32), "seed": np.arange(1, 3)},
        max_tokens=np.int64(8),
    )
    assert s.grid["temperature"] == [0.0, 0.5, 1.0]
    assert all(type(v) is float for v in s.grid["temperature"])
    assert all(type(v) is int for v in s.grid["seed"])
    s.run()
    sent = sorted((r.body["temperature"], r.body["seed"], r.body["max_tokens"])
                  for r in api.received)
    assert sent == [(t, seed, 8) for t in (0.0, 0.5, 1.0) for seed in (1, 2)]
    assert len(wb.runs()) == 6
