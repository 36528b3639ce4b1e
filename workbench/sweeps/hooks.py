"""What the layers above a sweep add to it, by name: the stopping rules of
``s.run(until=...)`` and the notes a sweep's estimate carries.

A sweep sits below the statistics that decide when it may stop (``decide/``), so it
cannot import them; they register here instead (``workbench.decide.wiring``), and the
package's ``__init__`` imports that wiring, so every rule is in place before any sweep
exists (any import of a sweep module runs the package's ``__init__`` first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["StoppingRule", "EstimateNote", "register_stopping_rule", "stopping_rule",
           "register_estimate_note", "estimate_notes"]

# (sweep, *, until, mode, progress, on_progress, **options) -> the sweep's rows
StoppingRule = Callable[..., "pd.DataFrame"]
# sweep -> one line about the sweep as planned, or None when it has nothing to say
EstimateNote = Callable[[Any], "str | None"]

_STOPPING_RULES: dict[str, StoppingRule] = {}
_ESTIMATE_NOTES: dict[str, EstimateNote] = {}


def register_stopping_rule(name: str, rule: StoppingRule) -> None:
    """``s.run(until=name, ...)`` calls ``rule(s, until=name, mode=..., progress=...,
    on_progress=..., **options)``. Registering a name again replaces its rule."""
    _STOPPING_RULES[name] = rule


def stopping_rule(until: str) -> StoppingRule:
    """The rule registered as ``until``, or one line naming the rules there are."""
    if until not in _STOPPING_RULES:
        known = ", ".join(f"until={name!r}" for name in sorted(_STOPPING_RULES)) or "none"
        raise InvalidInputError(f"until={until!r}: no such stopping rule; choose one of: {known}")
    return _STOPPING_RULES[until]


def register_estimate_note(name: str, note: EstimateNote) -> None:
    """Add ``note(sweep)`` to a sweep's :meth:`estimate` (once per ``name``)."""
    _ESTIMATE_NOTES[name] = note


def estimate_notes(sweep: Any) -> list[str]:
    """Every registered note about ``sweep``, in registration order, the empty ones left out."""
    notes = (note(sweep) for note in _ESTIMATE_NOTES.values())
    return [text for text in notes if text]
