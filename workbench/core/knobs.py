"""The knobs and the values each accepts: one table for every front end.

``wb.chat``/``wb.achat``, ``wb.embed``, ``wb.sweep``, ``%%chat``/``%%embed`` and the panels
check a request knob with :func:`check` (keyed by the API parameter's name), so a value is
refused with the same range everywhere, before anything is sent. Ranges are the OpenAI
API's. The same table holds each knob's magic option (``--top-p``), whether a list of its
values makes a sweep, and the workbench's own options (``--budget``, ``--repeat``), which
are not sent.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from workbench.core.errors import InvalidInputError

__all__ = ["Knob", "KNOBS", "INT64_MIN", "INT64_MAX", "check", "checked", "plain_number"]

# SQLite stores integers in 64 bits and the API's integer parameters are int64: a larger
# value was sent, paid for, and then could not be stored (OverflowError after the call).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_SHOWN_BOUNDS = {INT64_MIN: "-2**63", INT64_MAX: "2**63-1"}

Kind = Literal["number", "whole", "flag", "stops", "text"]


@dataclass(frozen=True)
class Knob:
    """One knob: what kind of value it takes and its range (both ends in), its option in
    the magics, and whether it is a request parameter at all."""

    name: str
    kind: Kind
    low: float | None = None
    high: float | None = None  # for "stops": how many strings at most
    option: str | None = None  # in %%chat / %%embed: "--top-p"
    sweepable: bool = True  # in %%chat, a list or range of values makes a sweep
    request: bool = True  # sent to the API; False: the workbench's own (--budget)
    words: str | None = None  # what a text or workbench option takes, for messages

    @property
    def convert(self) -> Any:
        """How a magic's text becomes the value: float, int, or the text as it is."""
        return {"number": float, "whole": int}.get(self.kind, str)

    def describe(self) -> str:
        """What the knob takes, as the end of "x must be ...": "a number between 0 and 2"."""
        if self.words is not None:
            return self.words
        if self.kind == "flag":
            return "True or False"
        if self.kind == "stops":
            return f"a string or a list of at most {self.high:g} strings"
        kind = "a number" if self.kind == "number" else "a whole number"
        if self.low is not None and self.high is not None:
            return f"{kind} between {_bound(self.low)} and {_bound(self.high)}"
        if self.low is not None:
            return f"{kind}, at least {_bound(self.low)}"
        return kind

    def check(self, value: Any, *, label: str | None = None, shown: str | None = None) -> Any:
        """``value`` as it will be sent (numpy scalars become Python numbers), or one
        :class:`InvalidInputError` line naming the range. ``None`` (not sent) passes.

        ``label`` names the knob in the message (``--temperature`` in a magic);
        ``shown`` is the value as the person typed it.
        """
        if value is None or self.kind == "text" or not self.request:
            return value  # names are checked where they are resolved; own options by options
        label = label or self.name
        plain = self._plain(value)
        if plain is None:
            got = shown if shown is not None else _shown(value)
            raise InvalidInputError(f"{label} must be {self.describe()}, got {got}")
        if self.kind == "whole" and not INT64_MIN <= plain <= INT64_MAX:
            got = shown if shown is not None else _shown(value)
            bounded = replace(
                self,
                low=INT64_MIN if self.low is None else self.low,
                high=INT64_MAX if self.high is None else self.high,
            )
            raise InvalidInputError(f"{label} must be {bounded.describe()}, got {got}")
        return plain

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is of this knob's kind and within its range (no message)."""
        return self._plain(value) is not None

    def _plain(self, value: Any) -> Any:
        """The value as sent, or None when it is not one this knob takes."""
        if self.kind == "flag":
            dtype_kind = getattr(getattr(value, "dtype", None), "kind", "")
            is_flag = isinstance(value, bool) or dtype_kind == "b"  # numpy.bool_ too
            return bool(value) if is_flag else None
        if self.kind == "stops":
            return _stops(value, int(self.high or 0))
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
        if self.kind == "whole" and not isinstance(value, numbers.Integral):
            return None
        number = plain_number(value)
        if isinstance(number, float) and not math.isfinite(number):
            return None
        if (self.low is not None and number < self.low) or (
            self.high is not None and number > self.high
        ):
            return None
        return number


def plain_number(value: Any) -> int | float:
    """A Python ``int`` or ``float`` for any real number: numpy's scalars would not encode
    as JSON nor bind as SQLite values. ``int`` and ``float`` come back as they are, so
    ``0`` and ``0.0`` stay distinct (they are different requests)."""
    if type(value) in (int, float):
        return value  # type: ignore[no-any-return]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):  # numpy.float64 is a float: its value is exact already
        return float(value)
    if getattr(getattr(value, "dtype", None), "itemsize", 8) < 8:
        # np.float32(0.7) is 0.699999988...; the person wrote 0.7, which is what its own
        # shortest text says, so a float32 knob is the same request as the float one.
        return float(str(value))
    return float(value)


def _stops(value: Any, most: int) -> list[str] | str | None:
    if isinstance(value, str):
        return value
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= most:
        return None
    if not all(isinstance(item, str) for item in value):
        return None
    return [str(item) for item in value]


def _bound(value: float) -> str:
    return _SHOWN_BOUNDS.get(int(value), f"{value:g}") if value == int(value) else f"{value:g}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


KNOBS: dict[str, Knob] = {
    knob.name: knob
    for knob in (
        Knob("model", "text", option="--model", words="a model name"),
        Knob("temperature", "number", 0, 2, option="--temperature"),
        Knob("top_p", "number", 0, 1, option="--top-p"),
        Knob("seed", "whole", INT64_MIN, INT64_MAX, option="--seed"),
        Knob("max_tokens", "whole", 1, option="--max-tokens"),
        Knob("presence_penalty", "number", -2, 2, option="--presence-penalty"),
        Knob("frequency_penalty", "number", -2, 2, option="--frequency-penalty"),
        Knob("reasoning_effort", "text", option="--reasoning-effort",
             words="an effort such as low or high"),
        Knob("max_completion_tokens", "whole", 1),
        # Which API a chat call goes to (workbench.api.responses); never sent as a field.
        Knob("api", "text", option="--api", words='"chat" or "responses"'),
        Knob("reasoning_summary", "text", words="auto, concise or detailed"),
        Knob("n", "whole", 1, 128),
        Knob("stop", "stops", high=4, option="--stop", sweepable=False),
        Knob("logprobs", "flag"),
        # --logprobs N asks for each token's N likeliest rivals: the API's top_logprobs.
        Knob("top_logprobs", "whole", 0, 20, option="--logprobs", sweepable=False),
        Knob("dimensions", "whole", 1, option="--dimensions"),  # embeddings
        # The workbench's own options: read from a magic's line, never sent.
        Knob("budget", "number", 0, option="--budget", sweepable=False, request=False,
             words="an amount in USD"),
        Knob("deadline", "number", 0.001, option="--deadline", sweepable=False,
             request=False, words="a number of seconds"),
        Knob("repeat", "whole", 1, option="--repeat", sweepable=False, request=False,
             words="a whole number"),
        Knob("concurrency", "whole", 1, option="--concurrency", sweepable=False,
             request=False, words="a whole number"),
    )
}


def check(name: str, value: Any, *, label: str | None = None, shown: str | None = None) -> Any:
    """``value`` checked against the table's entry for ``name`` (see :meth:`Knob.check`);
    a parameter the table does not know (or a name, or the workbench's own option) is
    returned as given."""
    knob = KNOBS.get(name)
    return value if knob is None else knob.check(value, label=label, shown=shown)


def checked(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of a request, each known knob checked and made plain."""
    return {name: check(name, value) for name, value in params.items()}
