"""What a ``%%chat`` or ``%%embed`` cell asks for: its options checked and held in a request.

Every knob value goes through :func:`parse_knob`, the one place that will later turn a
list or range (``--temperature 0,0.7 --seed 1:4``) into a sweep; for now it refuses them.
"""

from __future__ import annotations

import argparse
import keyword
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "OptionError",
    "Knob",
    "KNOBS",
    "CHAT_KNOBS",
    "parse_knob",
    "ChatRequest",
    "EmbedRequest",
    "split_texts",
]


class OptionError(ValueError):
    """A mistake on a magic's line or in its cell; the message names the fix."""


@dataclass(frozen=True)
class Knob:
    """How to read one option's value, and the range OpenAI accepts for it."""

    option: str
    convert: Callable[[str], Any]
    kind: str  # for messages: "a number", "an integer"
    low: float | None = None
    high: float | None = None
    sweepable: bool = True  # a later version accepts lists and ranges here


def _text(raw: str) -> str:
    return raw


KNOBS: dict[str, Knob] = {
    "model": Knob("--model", _text, "a model name"),
    "temperature": Knob("--temperature", float, "a number", 0, 2),
    "top_p": Knob("--top-p", float, "a number", 0, 1),
    "seed": Knob("--seed", int, "an integer"),
    "max_tokens": Knob("--max-tokens", int, "an integer", 1),
    "presence_penalty": Knob("--presence-penalty", float, "a number", -2, 2),
    "frequency_penalty": Knob("--frequency-penalty", float, "a number", -2, 2),
    "dimensions": Knob("--dimensions", int, "an integer", 1),
    "budget": Knob("--budget", float, "an amount in USD", 0, sweepable=False),
}
# The knobs a %%chat sends as request parameters, in the order the footer and table use.
CHAT_KNOBS = (
    "temperature",
    "top_p",
    "seed",
    "max_tokens",
    "presence_penalty",
    "frequency_penalty",
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


def parse_knob(name: str, raw: str | None) -> Any:
    """One option value, converted and range-checked; ``None`` stays ``None``."""
    if raw is None:
        return None
    knob = KNOBS[name]
    text = raw.strip()
    if knob.sweepable and _looks_like_sweep(name, text):
        raise OptionError(
            f"{knob.option} {raw}: lists and ranges of values (sweeps) come in a later "
            f"version; give {knob.option} one value"
        )
    try:
        value = knob.convert(text)
    except ValueError:
        raise OptionError(f"{knob.option} must be {knob.kind}, got {raw!r}") from None
    if isinstance(value, str):
        if not value:
            raise OptionError(f"{knob.option} needs a value")
        return value
    too_low = knob.low is not None and value < knob.low
    too_high = knob.high is not None and value > knob.high
    if too_low or too_high or (isinstance(value, float) and not math.isfinite(value)):
        raise OptionError(f"{knob.option} must be {_range_words(knob)}, got {raw}")
    return value


def _variable_name(option: str, name: str | None) -> str | None:
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise OptionError(f"{option} needs a Python variable name, got {name!r}")
    return name


def _unescape(text: str) -> str:
    # `--stop "\n"` arrives as backslash + n; a newline is what people mean by it.
    return text.replace("\\n", "\n").replace("\\t", "\t")


@dataclass(frozen=True)
class ChatRequest:
    """A ``%%chat`` cell: the prompt template, where it goes, and every knob to send."""

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

    @classmethod
    def from_args(cls, args: argparse.Namespace, cell: str) -> ChatRequest:
        if not cell.strip():
            raise OptionError("The cell is empty: write the prompt on the lines below %%chat")
        if args.json and args.schema:
            raise OptionError("Use --json or --schema, not both (--schema already asks for JSON)")
        if args.run_tools and not args.tools:
            raise OptionError("--run-tools needs --tools VAR: the functions to run")
        params = {name: parse_knob(name, getattr(args, name)) for name in CHAT_KNOBS}
        if args.stop:
            params["stop"] = [_unescape(s) for s in args.stop]
        return cls(
            # A cell's trailing newline and blank lines around it are layout, not prompt.
            prompt=cell.rstrip().lstrip("\r\n"),
            system=args.system,
            model=parse_knob("model", args.model),
            provider=args.provider,
            params={k: v for k, v in params.items() if v is not None},
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
