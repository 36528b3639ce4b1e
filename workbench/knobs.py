"""The request knobs and the values the API accepts for each: one table for every front end.

``wb.chat``/``wb.achat``, ``wb.embed``, ``wb.sweep``, ``%%chat``/``%%embed`` and the panels
check a knob with :func:`check` (keyed by the API parameter's name), so a value is refused
with the same range everywhere, before anything is sent. Ranges are the OpenAI API's.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from .errors import InvalidInputError

__all__ = ["Knob", "KNOBS", "INT64_MIN", "INT64_MAX", "check", "checked", "plain_number"]

# SQLite stores integers in 64 bits and the API's integer parameters are int64: a larger
# value was sent, paid for, and then could not be stored (OverflowError after the call).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_SHOWN_BOUNDS = {INT64_MIN: "-2**63", INT64_MAX: "2**63-1"}

Kind = Literal["number", "whole", "flag", "stops"]


@dataclass(frozen=True)
class Knob:
    """One request parameter: what kind of value it takes and its range (both ends in)."""

    name: str
    kind: Kind
    low: float | None = None
    high: float | None = None  # for "stops": how many strings at most

    def describe(self) -> str:
        """What the knob takes, as the end of "x must be ...": "a number between 0 and 2"."""
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
        if value is None:
            return None
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
        Knob("temperature", "number", 0, 2),
        Knob("top_p", "number", 0, 1),
        Knob("presence_penalty", "number", -2, 2),
        Knob("frequency_penalty", "number", -2, 2),
        Knob("seed", "whole", INT64_MIN, INT64_MAX),
        Knob("max_tokens", "whole", 1),
        Knob("max_completion_tokens", "whole", 1),
        Knob("n", "whole", 1, 128),
        Knob("stop", "stops", high=4),
        Knob("logprobs", "flag"),
        Knob("top_logprobs", "whole", 0, 20),
        Knob("dimensions", "whole", 1),  # embeddings
    )
}


def check(name: str, value: Any, *, label: str | None = None, shown: str | None = None) -> Any:
    """``value`` checked against the table's entry for ``name`` (see :meth:`Knob.check`);
    a parameter the table does not know is returned as given."""
    knob = KNOBS.get(name)
    return value if knob is None else knob.check(value, label=label, shown=shown)


def checked(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of a request, each known knob checked and made plain."""
    return {name: check(name, value) for name, value in params.items()}
