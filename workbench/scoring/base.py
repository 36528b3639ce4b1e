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
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import BudgetExceededError, InvalidInputError

if TYPE_CHECKING:
    from workbench.calls.budget.estimate import Estimate
    from workbench.scoring.calls import ModelCalls

__all__ = ["Score", "Item", "Scorer", "ModelScorer", "FunctionScorer", "as_scorer", "as_scorers",
           "PartialScores", "checked_score", "safe_score"]


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

    def score_many(self, items: Sequence[Item], calls: ModelCalls, *, fresh: bool) -> list[Score]:
        """Scores of ``items`` in order. ``calls`` (how model calls are sent, the budget,
        the concurrency) and ``fresh`` are for scorers that call a model; the others run
        up to ``calls.concurrency`` items at once, so a slow scorer does not hold a sweep.
        A scorer that raises or returns something that is no score spoils only that
        item's score (None, with a reason naming the scorer and the run)."""
        if len(items) <= 1 or calls.concurrency <= 1:
            return [safe_score(self, self.score, item) for item in items]

        workers = min(calls.concurrency, len(items))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"scorer-{self.name}") as pool:
            return list(pool.map(lambda item: safe_score(self, self.score, item), items))

    def estimate(self, items: Sequence[Item], calls: ModelCalls) -> Estimate | None:
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
        raise NotImplementedError(
            f"{self.kind} scorers call a model: score with wb.score(...) or a sweep's scorers="
        )


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
    """A scorer function's return value as a Score: bool, number (numpy's too), Score or
    None; anything else raises InvalidInputError saying what to return."""
    if isinstance(result, Score):
        return checked_score(result, name)
    if result is None:
        return Score(None, None, f"{name} returned None")
    flag = _flag(result)
    if flag is not None:  # before numbers: True is also the number 1
        return Score(1.0 if flag else 0.0, flag, "")
    number = _number(result)
    if number is not None and math.isfinite(number):
        return Score(number, None, "")
    raise InvalidInputError(
        f"scorer {name} returned {_shown(result)}; return a bool, a finite number or a Score"
    )


def checked_score(score: Score, name: str) -> Score:
    """``score`` with plain Python types (numpy's numbers and booleans accepted), or
    InvalidInputError: a value that is no finite number, a verdict with no value."""
    value, passed = score.value, score.passed
    if value is not None:
        number = _number(value) if _flag(value) is None else float(bool(value))
        if number is None or (not math.isfinite(number) and not math.isnan(number)):
            raise InvalidInputError(
                f"scorer {name} returned Score({_shown(value)}); a Score's value is a finite "
                "number or None"
            )
        value = None if math.isnan(number) else number
    if passed is not None:
        flag = _flag(passed)
        if flag is None:
            raise InvalidInputError(
                f"scorer {name} returned Score(passed={_shown(passed)}); passed is True, False"
                " or None"
            )
        if value is None:
            raise InvalidInputError(
                f"scorer {name} returned Score({_shown(score.value)}, passed={flag}); a verdict"
                " needs a finite value (1.0 / 0.0 for pass / fail)"
            )
        passed = flag
    if value is score.value and passed is score.passed:
        return score
    return Score(value, passed, str(score.reason or ""), score.judge_run_id)


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if type(value).__module__ == "numpy":
        import numpy as np  # loaded already when a scorer hands back one of its values

        if isinstance(value, np.bool_):
            return bool(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class PartialScores(Exception):
    """A scorer stopped part-way (a budget): the scores it has, and why it stopped."""

    def __init__(self, scores: list[Score], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.scores, self.cause = scores, cause


def safe_score(scorer: Scorer, compute: Callable[[Item], Any], item: Item) -> Score:
    """``compute(item)``'s score, checked; when it raises or returns no score, a None score
    whose reason names the scorer, the run and the error (and a warning says so)."""

    run_id = str(item.run.get("run_id"))
    try:
        return to_score(compute(item), scorer.name)
    except BudgetExceededError:
        raise
    except Exception as exc:  # noqa: BLE001 - a scorer's bug must not stop the sweep
        line = " ".join(str(exc).split())[:300]
        message = f"scorer {scorer.name} failed on run {run_id}: {type(exc).__name__}: {line}"
        warnings.warn(message, RuntimeWarning, stacklevel=4)
        return Score(None, None, message[:500])


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
