"""Sweep grids without I/O: knob values parsed from text, and the cartesian product of a sweep.

Shared by the ``%%chat`` magic (``--temperature 0:1:0.5``), the widget panel (its seeds
box and sliders) and :mod:`workbench.sweeps.sweep`, so a knob value means the same everywhere.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "MAX_RANGE_VALUES",
    "GridPoint",
    "parse_values",
    "parse_scalar",
    "spaced",
    "unique",
    "expand",
    "count_points",
    "knob_label",
]

# A range is typed by a person; ten thousand values from one is surely a typo (1:10000).
MAX_RANGE_VALUES = 10_000
# Knob values from sliders are shown and hashed into a run's identity: keep them short.
_SPACED_DIGITS = 6


def parse_scalar(text: str) -> Any:
    """One value as a person types it: ``3`` int, ``0.7`` float, ``true``, ``none``, else text."""
    word = text.strip()
    lowered = word.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None  # a knob set to None is not sent: compares "default" with values
    try:
        return int(word)
    except ValueError:
        pass
    number = _decimal(word)
    if number is not None:
        return float(number)
    return word


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _range(text: str) -> list[Any] | None:
    """``start:stop[:step]``, both ends included; None when the parts are not numbers.

    Model names contain colons too (``ollama:llama3:8b``), so only all-numeric parts make
    a range. Values are computed in Decimal, so ``0:1:0.1`` gives 0.3, not 0.30000000000000004.
    """
    parts = text.split(":")
    if len(parts) not in (2, 3):
        return None
    numbers = [_decimal(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    start, stop = numbers[0], numbers[1]
    step = numbers[2] if len(numbers) == 3 else Decimal(1)
    assert start is not None and stop is not None and step is not None
    if step == 0:
        raise ValueError(f"range {text!r}: the step cannot be 0")
    if (stop - start) * step < 0:
        raise ValueError(
            f"range {text!r} is empty: it goes from {start} to {stop} by {step} "
            f"(for a falling range give a negative step, e.g. {parts[0]}:{parts[1]}:-1)"
        )
    count = int(((stop - start) / step).to_integral_value(rounding=ROUND_FLOOR)) + 1
    if count > MAX_RANGE_VALUES:
        raise ValueError(f"range {text!r} has {count} values; at most {MAX_RANGE_VALUES}")
    values = [start + i * step for i in range(count)]
    # Written as whole numbers (``1:10``), a range gives ints, as seeds and max_tokens need.
    as_int = all(part.strip().lstrip("+-").isdigit() for part in parts)
    return [int(v) if as_int else float(v) for v in values]


def parse_values(text: str) -> list[Any]:
    """The values of one knob as typed: ``0,0.7,1.2``, ``1:4``, ``0:1:0.25``, ``a,"b,c"``.

    Items are separated by commas (double quotes keep a comma inside a value); each item
    is a range ``start:stop[:step]`` including both ends (step 1 by default) or one value
    (see :func:`parse_scalar`). Raises ValueError on an empty list or a bad range.
    """
    if not text or not text.strip():
        raise ValueError("no values given")
    items = next(csv.reader([text], skipinitialspace=True))
    values: list[Any] = []
    for item in items:
        if not item.strip():
            raise ValueError(f"an empty value in {text!r}")
        expanded = _range(item.strip())
        values.extend(expanded if expanded is not None else [parse_scalar(item)])
    return values


def unique(values: Sequence[Any]) -> list[Any]:
    """``values`` without repeats, first occurrence first (1 and 1.0 are different)."""
    seen: set[str] = set()
    kept: list[Any] = []
    for value in values:
        key = _key(value)
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


def spaced(low: float, high: float, count: int) -> list[float]:
    """``count`` evenly spaced values from ``low`` to ``high`` (both included), rounded to
    six decimals and without repeats; ``count=1`` gives ``[low]``. For range sliders."""
    if count < 1:
        raise ValueError(f"count must be 1 or more, not {count}")
    if count == 1:
        return [float(low)]
    lo, hi = Decimal(repr(float(low))), Decimal(repr(float(high)))
    quantum = Decimal(1).scaleb(-_SPACED_DIGITS)
    values = [(lo + (hi - lo) * i / (count - 1)).quantize(quantum) for i in range(count)]
    return unique([float(v.normalize()) for v in values])


def _key(value: Any) -> str:
    # Two values are the same knob setting when they serialise alike into the request.
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class GridPoint:
    """One planned run: template variables, request knobs, and which repeat it is."""

    index: int
    variables: Mapping[str, Any]
    knobs: Mapping[str, Any]
    sample_index: int
    case: int | None = None  # the dataset row this point answers, for dataset sweeps


def _axes(kind: str, mapping: Mapping[str, Sequence[Any]] | None) -> list[tuple[str, list[Any]]]:
    axes: list[tuple[str, list[Any]]] = []
    for name, values in (mapping or {}).items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(
                f"{kind} {name!r} needs a list of values, not {type(values).__name__} "
                f"(write {name}=[{values!r}] for one value)"
            )
        if not values:
            raise ValueError(f"{kind} {name!r} has no values")
        if len(unique(values)) != len(values):
            raise ValueError(f"{kind} {name!r} lists a value twice: {list(values)!r}")
        axes.append((name, list(values)))
    return axes


def expand(
    grid: Mapping[str, Sequence[Any]] | None = None,
    variables: Mapping[str, Sequence[Any]] | None = None,
    repeats: int = 1,
    cases: Sequence[Mapping[str, Any]] | None = None,
) -> list[GridPoint]:
    """The cartesian product of a sweep, in a fixed order.

    Template variables vary slowest, then request knobs (in the mapping's order, the last
    fastest, as ``itertools.product``), then the repeats: a point's ``sample_index`` is
    0..repeats-1, so repeats of one request are distinct runs. ``cases`` (a dataset's
    rows, each one set of template variables) take the place of ``variables``: each case
    is one value of the slowest axis, not a product of its columns.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a whole number of 1 or more, not {repeats!r}")
    var_axes = _axes("template variable", variables)
    knob_axes = _axes("grid parameter", grid)
    if cases is not None and var_axes:
        raise ValueError("give template variables as value lists or as test cases, not both")
    var_names = {name for name, _ in var_axes} | {name for case in cases or () for name in case}
    both = var_names & {name for name, _ in knob_axes}
    if both:
        raise ValueError(
            f"{sorted(both)} named both as template variables and as request parameters"
        )
    var_sets: list[tuple[int | None, dict[str, Any]]]
    if cases is not None:
        # A dataset's cases are dicts made for the sweep: kept, not copied (a million
        # copies were ~250 MB).
        var_sets = [
            (index, case if type(case) is dict else dict(case))
            for index, case in enumerate(cases)
        ]
    else:
        names = [name for name, _ in var_axes]
        var_sets = [
            (None, dict(zip(names, combo, strict=True)))
            for combo in itertools.product(*(values for _, values in var_axes))
        ]
    knob_names = [name for name, _ in knob_axes]
    knob_sets = [
        dict(zip(knob_names, combo, strict=True))
        for combo in itertools.product(*(values for _, values in knob_axes))
    ]
    points: list[GridPoint] = []
    for case, var_part in var_sets:
        for knob_part in knob_sets:
            for sample in range(repeats):
                points.append(GridPoint(len(points), var_part, knob_part, sample, case))
    return points


def count_points(
    grid: Mapping[str, Sequence[Any]] | None = None,
    variables: Mapping[str, Sequence[Any]] | None = None,
    repeats: int = 1,
    cases: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """How many points :func:`expand` would make, without making them."""
    total = max(repeats, 0) * (1 if cases is None else len(cases))
    for mapping in (grid, variables):
        for values in (mapping or {}).values():
            total *= len(values)
    return total


def knob_label(knobs: Mapping[str, Any]) -> str:
    """A knob combination as a column title: ``temperature=0.7 · seed=1``."""
    return " · ".join(f"{name}={_shown(value)}" for name, value in knobs.items())


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:39] + "…"
    return json.dumps(value, default=str)
