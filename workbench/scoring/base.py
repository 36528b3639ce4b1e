"""What a scorer is: a named, hashed definition that maps one run to a :class:`Score`.

Every scorer has a readable ``name`` (the column ``score:<name>`` of ``wb.runs()``) and an
``id`` (name + a hash of its definition), so a changed rubric or pattern is a new scorer
whose scores sit beside the old ones instead of replacing them.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..estimate import Estimate
    from ..session import Session

__all__ = ["Score", "Item", "Scorer", "ModelScorer", "FunctionScorer", "as_scorer", "as_scorers"]


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one run. ``value`` is a number (1/0 for yes/no scorers),
    ``passed`` a verdict where the scorer has one; None in either means "no answer"."""

    value: float | None
    passed: bool | None = None
    reason: str = ""
    judge_run_id: str | None = None  # the row of the model call that produced it, if any


@dataclass(frozen=True)
class Item:
    """What a scorer sees of one run."""

    output: str
    expected: Any = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    input: str = ""  # the rendered user prompt
    run: Mapping[str, Any] = field(default_factory=dict)  # the whole row of wb.runs()


class Scorer:
    """Base of every scorer. Subclasses set ``kind`` and ``definition`` and implement
    :meth:`score`; :meth:`score_many` is the batch path (built-ins make it fast)."""

    kind: str = "scorer"
    uses_model = False  # True: scoring sends model calls (cost, budget, estimates)

    def __init__(self, name: str | None, definition: Mapping[str, Any]) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidInputError(f"a scorer's name must be non-empty text, got {name!r}")
        self.name = name or self.kind
        self.definition = dict(definition)
        canonical = json.dumps(
            {"kind": self.kind, **self.definition}, sort_keys=True, default=str
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        self.id = f"{self.name}:{digest}"

    def score(self, item: Item) -> Score:
        raise NotImplementedError

    def score_many(
        self,
        items: Sequence[Item],
        session: Session,
        *,
        fresh: bool,
        on_cost: Callable[[float | None], None] | None = None,
    ) -> list[Score]:
        """Scores of ``items`` in order. ``session`` and ``fresh`` are for scorers that call
        a model; they report each call's cost to ``on_cost`` (None: "about to send"), which
        raises BudgetExceededError to stop them."""
        return [self.score(item) for item in items]

    def estimate(self, items: Sequence[Item], session: Session) -> Estimate | None:
        """What scoring ``items`` would cost (None: it calls no model)."""
        return None

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.definition.items())
        return f"<scorer {self.id} {self.kind}({shown})>"


class ModelScorer(Scorer):
    """A scorer that calls a model (a judge, embeddings): it scores in batches through
    :meth:`score_many`, which sends, caches and costs the calls in a session."""

    uses_model = True

    def score(self, item: Item) -> Score:  # pragma: no cover - score_many is the path
        from ..session import get_session

        return self.score_many([item], get_session(), fresh=False)[0]


def _source(fn: Callable[..., Any]) -> str:
    # The source is the definition: editing the function makes a new scorer id.
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"


class FunctionScorer(Scorer):
    """Any callable ``fn(output, *, expected=None, vars=None, run=None)`` returning a bool,
    a number or a :class:`Score`; named after the function."""

    kind = "function"

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        self.fn = fn
        wanted = _keywords(fn)
        self._wanted = wanted
        fn_name = getattr(fn, "__name__", None) or type(fn).__name__
        if fn_name == "<lambda>":
            fn_name = "lambda"
        super().__init__(name or fn_name, {"source": _source(fn)})

    def score(self, item: Item) -> Score:
        extra = {"expected": item.expected, "vars": dict(item.vars), "run": dict(item.run)}
        result = self.fn(item.output, **{k: v for k, v in extra.items() if k in self._wanted})
        return to_score(result, self.name)


def _keywords(fn: Callable[..., Any]) -> set[str]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return {"expected", "vars", "run"}
    return {p.name for p in parameters} & {"expected", "vars", "run"}


def to_score(result: Any, name: str) -> Score:
    """A scorer function's return value as a Score: bool, number, Score or None."""
    if isinstance(result, Score):
        return result
    if result is None:
        return Score(None, None, f"{name} returned None")
    if isinstance(result, bool):  # before numbers: True is also the number 1
        return Score(1.0 if result else 0.0, result, "")
    if isinstance(result, numbers.Real) and math.isfinite(float(result)):
        return Score(float(result), None, "")
    raise TypeError(
        f"scorer {name} returned {type(result).__name__}; return a bool, a number or a Score"
    )


def as_scorer(value: Any) -> Scorer:
    """A Scorer, or a callable wrapped as one; anything else is one line naming the fix."""
    if isinstance(value, Scorer):
        return value
    if callable(value) and not isinstance(value, type):
        return FunctionScorer(value)
    raise InvalidInputError(
        f"{value!r} is not a scorer: use one of wb.scorers (contains, regex, judge, ...) or a"
        " function fn(output, *, expected=None, vars=None, run=None)"
    )


def as_scorers(value: Any) -> list[Scorer]:
    """One scorer or a list of them, checked; two different scorers may not share an id."""
    listed = list(value) if isinstance(value, (list, tuple)) else [value]
    if not listed:
        raise InvalidInputError("scorers is empty: pass at least one scorer")
    scorers = [as_scorer(v) for v in listed]
    ids_by_name: dict[str, set[str]] = {}
    for scorer in scorers:
        ids_by_name.setdefault(scorer.name, set()).add(scorer.id)
    for name, ids in ids_by_name.items():
        if len(ids) > 1:
            raise InvalidInputError(
                f"two different scorers are both named {name!r}: give one a name=..."
            )
    return list({s.id: s for s in scorers}.values())
