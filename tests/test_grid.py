"""Knob values from text, slider spacing, and the cartesian product of a sweep (no I/O)."""

from __future__ import annotations

import pytest

from workbench.sweeps.grid import (
    MAX_RANGE_VALUES,
    count_points,
    expand,
    knob_label,
    parse_scalar,
    parse_values,
    spaced,
    unique,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0,0.7,1.2", [0, 0.7, 1.2]),
        ("1:3", [1, 2, 3]),
        ("1:4", [1, 2, 3, 4]),
        ("0:1:0.5", [0.0, 0.5, 1.0]),
        ("5:1:-2", [5, 3, 1]),
        ("0:1:0.3", [0.0, 0.3, 0.6, 0.9]),  # up to stop, never past it
        ("1:3, 7", [1, 2, 3, 7]),
        ("7", [7]),
        ("gpt-4o, gpt-4o-mini", ["gpt-4o", "gpt-4o-mini"]),
        ("ollama:llama3:8b,local:x", ["ollama:llama3:8b", "local:x"]),  # colons, not ranges
        ('"a, b",c', ["a, b", "c"]),
        ("none,0.9", [None, 0.9]),
        ("true,False", [True, False]),
        ("1e-3,2.5e1", [0.001, 25.0]),
    ],
)
def test_parse_values(text: str, expected: list[object]) -> None:
    values = parse_values(text)
    assert values == expected
    # ints stay ints and floats stay floats: they are different request bodies
    assert [type(v) for v in values] == [type(v) for v in expected]


def test_decimal_steps_give_clean_values() -> None:
    values = parse_values("0:1:0.1")
    assert len(values) == 11
    assert values == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert repr(values[3]) == "0.3" and repr(values[7]) == "0.7"
    assert all(isinstance(v, float) for v in values)
    assert parse_values("0.1:0.3:0.1") == [0.1, 0.2, 0.3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no values"),
        ("  ", "no values"),
        ("1,,2", "empty value"),
        ("1:3:0", "step cannot be 0"),
        ("3:1", "empty"),
        ("1:3:-1", "empty"),
        (f"1:{MAX_RANGE_VALUES + 1}", "at most"),
    ],
)
def test_parse_values_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_values(text)


def test_parse_scalar() -> None:
    assert parse_scalar(" 42 ") == 42 and parse_scalar("-3") == -3
    assert parse_scalar("0.5") == 0.5 and parse_scalar("nan") == "nan"
    assert parse_scalar("null") is None and parse_scalar("hello") == "hello"


def test_spaced_is_inclusive_rounded_and_unique() -> None:
    assert spaced(0, 1, 3) == [0.0, 0.5, 1.0]
    assert spaced(0, 1, 4) == [0.0, 0.333333, 0.666667, 1.0]
    assert spaced(0.1, 0.3, 3) == [0.1, 0.2, 0.3]
    assert spaced(0.7, 0.7, 5) == [0.7]
    assert spaced(0.2, 0.9, 1) == [0.2]
    with pytest.raises(ValueError):
        spaced(0, 1, 0)


def test_unique_keeps_first_and_tells_int_from_float() -> None:
    assert unique([1, 2, 1, 1.0, "1"]) == [1, 2, 1.0, "1"]


def test_expand_order_counts_and_sample_indexes() -> None:
    points = expand(
        grid={"temperature": [0, 1], "seed": [1, 2, 3]},
        variables={"word": ["cat", "dog"]},
        repeats=2,
    )
    assert (
        len(points)
        == 2 * 2 * 3 * 2
        == count_points({"temperature": [0, 1], "seed": [1, 2, 3]}, {"word": ["cat", "dog"]}, 2)
    )
    assert [p.index for p in points] == list(range(24))
    # variables slowest, then knobs in their order (the last fastest), then the repeats
    first = [
        (p.variables["word"], p.knobs["temperature"], p.knobs["seed"], p.sample_index)
        for p in points[:8]
    ]
    assert first == [
        ("cat", 0, 1, 0),
        ("cat", 0, 1, 1),
        ("cat", 0, 2, 0),
        ("cat", 0, 2, 1),
        ("cat", 0, 3, 0),
        ("cat", 0, 3, 1),
        ("cat", 1, 1, 0),
        ("cat", 1, 1, 1),
    ]
    assert points[12].variables == {"word": "dog"}
    assert {p.sample_index for p in points} == {0, 1}
    # the same definition expands the same way every time
    assert expand({"temperature": [0, 1], "seed": [1, 2, 3]}, {"word": ["cat", "dog"]}, 2) == points


def test_expand_without_axes_is_one_point_per_repeat() -> None:
    points = expand(repeats=3)
    assert [(p.variables, p.knobs, p.sample_index) for p in points] == [
        ({}, {}, 0),
        ({}, {}, 1),
        ({}, {}, 2),
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"grid": {"temperature": 0.5}}, TypeError, "needs a list"),
        ({"grid": {"model": "gpt-4o"}}, TypeError, "needs a list"),
        ({"grid": {"seed": []}}, ValueError, "no values"),
        ({"grid": {"seed": [1, 1]}}, ValueError, "twice"),
        ({"variables": {"x": [1]}, "grid": {"x": [2]}}, ValueError, "both"),
        ({"repeats": 0}, ValueError, "repeats"),
        ({"repeats": 1.5}, ValueError, "repeats"),
    ],
)
def test_expand_refuses(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        expand(**kwargs)  # type: ignore[arg-type]


def test_knob_label() -> None:
    assert knob_label({"model": "gpt-4o", "temperature": 0.7, "seed": None}) == (
        "model=gpt-4o · temperature=0.7 · seed=null"
    )
    assert knob_label({}) == ""
    assert knob_label({"system": "x" * 60}).endswith("…")
