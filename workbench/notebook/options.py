"""What a ``%%chat`` or ``%%embed`` cell asks for: its options checked and held in a request.

Every knob value is read here: :func:`parse_knob` for options that take one value,
:func:`parse_knob_values` for ``%%chat`` knobs, where a list or range
(``--temperature 0,0.7 --seed 1:4``, read by :func:`workbench.sweeps.grid.parse_values`)
makes the cell a sweep.
"""

from __future__ import annotations

import argparse
import csv
import json
import keyword
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.core.errors import InvalidInputError
from workbench.core.knobs import KNOBS, Knob
from workbench.core.knobs import check as check_api_knob
from workbench.core.names import closest_name
from workbench.sweeps.grid import parse_values

__all__ = [
    "OptionError",
    "closest_name",
    "Knob",
    "KNOBS",
    "CHAT_KNOBS",
    "parse_knob",
    "parse_knob_values",
    "ChatRequest",
    "EmbedRequest",
    "split_texts",
]


class OptionError(ValueError):
    """A mistake on a magic's line or in its cell; the message names the fix."""


# The knobs a %%chat sends as request parameters, in the order the footer and table use.
CHAT_KNOBS = (
    "temperature",
    "top_p",
    "seed",
    "max_tokens",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",  # reasoning models only (workbench.api.reasoning)
    "api",  # Chat Completions or the Responses API (workbench.api.responses)
)


def _looks_like_sweep(name: str, text: str) -> bool:
    if "," in text:
        return True
    # Model names may hold colons (provider:model, llama3:8b); numbers never do.
    return name != "model" and ":" in text


def _range_words(knob: Knob) -> str:
    if knob.low is not None and knob.high is not None:
        return f"between {knob.low:g} and {knob.high:g}"
    return f"at least {knob.low:g}" if knob.low is not None else ""


def _in_range(knob: Knob, value: Any, shown: str, prefix: str = "") -> Any:
    """``value`` checked against the API's range (the one table ``wb.chat`` uses) or,
    for the workbench's own options, the knob's; one :class:`OptionError` line if not."""
    option = knob.option or knob.name
    if knob.request:
        try:
            return check_api_knob(knob.name, value, label=option, shown=shown)
        except InvalidInputError as exc:
            if prefix:  # a value of a list: say which one, in the list's words
                raise OptionError(f"{prefix}{shown} is not {knob.describe()}") from None
            raise OptionError(str(exc)) from None
    if _out_of_range(knob, value):
        if prefix:
            raise OptionError(f"{prefix}{shown} is not {_range_words(knob)}")
        raise OptionError(f"{option} must be {_range_words(knob)}, got {shown}")
    return value


def _out_of_range(knob: Knob, value: Any) -> bool:
    too_low = knob.low is not None and value < knob.low
    too_high = knob.high is not None and value > knob.high
    return too_low or too_high or (isinstance(value, float) and not math.isfinite(value))


def parse_knob(name: str, raw: str | None) -> Any:
    """One option value, converted and range-checked; ``None`` stays ``None``.

    A list or range is refused: only :func:`parse_knob_values` (``%%chat``) reads them.
    """
    if raw is None:
        return None
    knob = KNOBS[name]
    text = raw.strip()
    if knob.sweepable and _looks_like_sweep(name, text):
        raise OptionError(
            f"{knob.option} {raw}: give one value here (lists and ranges of values make "
            "a sweep, in %%chat only)"
        )
    try:
        value = knob.convert(text)
    except ValueError:
        raise OptionError(f"{knob.option} must be {knob.describe()}, got {raw!r}") from None
    if isinstance(value, str):
        if not value:
            raise OptionError(f"{knob.option} needs a value")
        return value
    return _in_range(knob, value, text)


def _listed_value(knob: Knob, raw: str, value: Any) -> Any:
    """One value of a list or range, as :func:`parse_knob` would check it alone."""
    if value is None:  # `none` in a list: the knob is not sent (the server's default)
        return None
    shown = value if isinstance(value, str) else json.dumps(value)
    prefix = f"{knob.option} {raw}: "
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"{prefix}{shown!r} is not {knob.describe()}")
    if knob.kind == "whole" and not isinstance(value, int):
        raise OptionError(f"{prefix}{shown} is not {knob.describe()}")
    value = int(value) if knob.kind == "whole" else float(value)
    return _in_range(knob, value, shown, prefix)


def parse_knob_values(name: str, raw: str | None) -> list[Any]:
    """Every value of one ``%%chat`` knob: none, one, or a list or range (a sweep).

    ``0,0.7,1.2`` is a list; ``1:4`` and ``0:1:0.5`` are ranges that include both ends
    (:func:`workbench.sweeps.grid.parse_values`). Model names are split on commas only, since
    they hold colons. Each value is checked as :func:`parse_knob` checks one.
    """
    if raw is None:
        return []
    knob = KNOBS[name]
    text = raw.strip()
    if not knob.sweepable or not _looks_like_sweep(name, text):
        return [parse_knob(name, raw)]
    if knob.kind == "text":
        values: list[Any] = [item.strip() for item in next(csv.reader([text]))]
        if not all(values):
            raise OptionError(f"{knob.option} {raw}: an empty name in the list")
    else:
        try:
            parsed = parse_values(text)
        except ValueError as exc:  # an empty item, an empty or endless range
            raise OptionError(f"{knob.option} {raw}: {exc}") from None
        values = [_listed_value(knob, raw, value) for value in parsed]
    for i, value in enumerate(values):
        if value in values[:i]:  # two values, one request: the sweep would refuse it
            shown = "none" if value is None else value
            raise OptionError(f"{knob.option} {raw}: {shown} is listed twice; list each once")
    return values


def _variable_name(option: str, name: str | None) -> str | None:
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise OptionError(f"{option} needs a Python variable name, got {name!r}")
    return name


def _unescape(text: str) -> str:
    # `--stop "\n"` arrives as backslash + n; a newline is what people mean by it.
    return text.replace("\\n", "\n").replace("\\t", "\t")


# What a sweep cannot do: each is one conversation or one exchange, not a grid of calls.
_NOT_IN_SWEEPS = {
    "thread": "--thread",
    "tools": "--tools",
    "run_tools": "--run-tools",
    "image": "--image",
}


@dataclass(frozen=True)
class ChatRequest:
    """A ``%%chat`` cell: the prompt template, where it goes, and every knob to send.

    A knob given several values goes in ``grid`` (``model`` first, then the knobs in
    :data:`CHAT_KNOBS` order), not in ``model``/``params``; with a grid or ``repeat``
    above 1 the cell is a sweep (:attr:`is_sweep`).
    """

    prompt: str
    system: str | None = None
    model: str | None = None
    provider: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # sent as given
    experiment: str | None = None
    out: str | None = None
    thread: str | None = None
    stream: bool = True
    fresh: bool = False
    json: bool = False
    schema: str | None = None  # the name of a variable holding the schema
    tools: str | None = None  # the name of a variable holding the tools
    run_tools: bool = False
    images: tuple[str, ...] = ()
    budget: float | None = None
    deadline: float | None = None  # seconds for each call, retries included
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # knob -> its values
    repeat: int = 1
    concurrency: int | None = None  # None: the sweep engine's default
    score: str | None = None  # the name of a variable holding a scorer or a list of them
    batch: bool = False  # send the sweep through the Batch API (workbench.sweeps.batch)

    @property
    def is_sweep(self) -> bool:
        return bool(self.grid) or self.repeat > 1

    @classmethod
    def from_args(cls, args: argparse.Namespace, cell: str) -> ChatRequest:
        if not cell.strip():
            raise OptionError("The cell is empty: write the prompt on the lines below %%chat")
        if args.json and args.schema:
            raise OptionError("Use --json or --schema, not both (--schema already asks for JSON)")
        if args.run_tools and not args.tools:
            raise OptionError("--run-tools needs --tools VAR: the functions to run")
        values = {name: parse_knob_values(name, getattr(args, name, None)) for name in
                  ("model", *CHAT_KNOBS)}
        grid = {name: tuple(v) for name, v in values.items() if len(v) > 1}
        one = {name: v[0] for name, v in values.items() if len(v) == 1}
        repeat = parse_knob("repeat", args.repeat) or 1
        if grid or repeat > 1:
            _refuse_in_sweep(args, grid, repeat)
        elif getattr(args, "batch", False):
            raise OptionError(
                "--batch sends a sweep through the Batch API: give a knob a list or range "
                "(-t 0,0.7) or --repeat K, or drop --batch to send this one call live"
            )
        model = one.pop("model", None)
        params: dict[str, Any] = one
        if args.stop:
            stops = [_unescape(s) for s in args.stop]
            params["stop"] = _in_range(KNOBS["stop"], stops, f"{len(stops)} of them")
        top_logprobs = parse_knob("top_logprobs", args.logprobs)
        if top_logprobs is not None:  # --logprobs N: each token and its N likeliest rivals
            params.update(logprobs=True, top_logprobs=top_logprobs)
        return cls(
            # A cell's trailing newline and blank lines around it are layout, not prompt.
            prompt=cell.rstrip().lstrip("\r\n"),
            system=args.system,
            model=model,
            provider=args.provider,
            params=params,
            experiment=args.experiment,
            out=_variable_name("--out", args.out),
            thread=args.thread,
            stream=not args.no_stream,
            fresh=args.fresh,
            json=args.json,
            schema=_variable_name("--schema", args.schema),
            tools=_variable_name("--tools", args.tools),
            run_tools=args.run_tools,
            images=tuple(args.image or ()),
            budget=parse_knob("budget", args.budget),
            deadline=parse_knob("deadline", args.deadline),
            grid=grid,
            repeat=repeat,
            concurrency=parse_knob("concurrency", args.concurrency),
            score=_variable_name("--score", getattr(args, "score", None)),
            batch=bool(getattr(args, "batch", False)),
        )


def _refuse_in_sweep(
    args: argparse.Namespace, grid: Mapping[str, tuple[Any, ...]], repeat: int
) -> None:
    for name, option in _NOT_IN_SWEEPS.items():
        if getattr(args, name):
            swept = next(iter(grid), None)
            why = (
                f"{KNOBS[swept].option} {getattr(args, swept)}" if swept else f"--repeat {repeat}"
            )
            raise OptionError(
                f"{option} can't be combined with a sweep ({why}): give each knob one "
                f"value and no --repeat, or drop {option}"
            )


Split = Literal["line", "paragraph"]


def split_texts(cell: str, how: Split = "line") -> list[str]:
    """The texts of an ``%%embed`` cell: each non-empty line, or each paragraph."""
    if how == "paragraph":
        blocks: list[list[str]] = [[]]
        for line in cell.splitlines():
            if line.strip():
                blocks[-1].append(line.strip())
            elif blocks[-1]:
                blocks.append([])
        return [" ".join(block) for block in blocks if block]
    return [line.strip() for line in cell.splitlines() if line.strip()]


@dataclass(frozen=True)
class EmbedRequest:
    """An ``%%embed`` cell: the texts and where they go."""

    texts: tuple[str, ...]
    model: str | None = None
    dimensions: int | None = None
    out: str | None = None
    experiment: str | None = None
    fresh: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, cell: str) -> EmbedRequest:
        texts = split_texts(cell, args.split)
        if not texts:
            raise OptionError("The cell is empty: write one text per line below %%embed")
        return cls(
            texts=tuple(texts),
            model=parse_knob("model", args.model),
            dimensions=parse_knob("dimensions", args.dimensions),
            out=_variable_name("--out", args.out),
            experiment=args.experiment,
            fresh=args.fresh,
        )
