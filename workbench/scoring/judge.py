"""LLM-as-judge: a model grades each output by a rubric, through ordinary chat calls.

A judge's calls are rows of the experiment table like any other (tokens, cost, cache,
replay, budget), in the experiment ``<experiment of the judged run>:judge``; the score
points at its call by ``judge_run_id``. Temperature 0 and a fixed seed make a verdict
repeatable, and an identical judge request is replayed from the table for free.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import BadRequestError, InvalidInputError, WorkbenchError
from .base import Item, ModelScorer, Score

if TYPE_CHECKING:
    from ..estimate import Estimate
    from ..session import Message, Session

__all__ = ["judge", "Judge", "parse_verdict", "JUDGE_SUFFIX", "judge_experiment"]

JUDGE_SUFFIX = ":judge"

# At most this many judge calls at once: enough to overlap a remote API's latency, few
# enough not to trip a rate limit that the sweep itself is already near.
_JUDGE_CONCURRENCY = 4

_SYSTEM = (
    "You are a careful, strict grader. Grade the answer against the rubric. Reply with "
    'JSON only, with two keys: "score" ({what}) and "reason" (why, in a few words).'
)

# (provider name, model) pairs that refused response_format: ask them for plain JSON.
_NO_STRUCTURED_OUTPUT: set[tuple[str, str]] = set()
_NO_STRUCTURED_LOCK = threading.Lock()


def judge_experiment(experiment: str) -> str:
    """Where the judge calls about runs of ``experiment`` are logged."""
    return experiment if experiment.endswith(JUDGE_SUFFIX) else experiment + JUDGE_SUFFIX


def _scale_of(scale: Any) -> tuple[int, int] | None:
    """(low, high) for a numeric scale; None for "pass/fail"."""
    if scale == "pass/fail":
        return None
    if (
        isinstance(scale, (tuple, list))
        and len(scale) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in scale)
        and scale[0] < scale[1]
        and scale[1] - scale[0] <= 100
    ):
        return int(scale[0]), int(scale[1])
    raise InvalidInputError(
        f"judge(scale=...) must be (low, high) whole numbers like (1, 5), or 'pass/fail'; "
        f"got {scale!r}"
    )


def parse_verdict(text: str, scale: tuple[int, int] | None) -> tuple[float | None, str]:
    """The grade in a judge's answer and its reason, read leniently.

    Accepts the JSON asked for, JSON inside prose or a code fence, ``score: 4``,
    ``4/5`` or a lone pass/fail. Returns (None, why) when no grade can be read.
    """
    data = _json_object(text)
    if data is not None:
        raw = data.get("score", data.get("grade", data.get("passed", data.get("verdict"))))
        reason = str(data.get("reason") or data.get("explanation") or "").strip()
        grade = _grade(raw, scale)
        if grade is not None:
            return grade, reason
    match = re.search(
        r"""["']?(?:score|grade|verdict|rating)["']?\s*[:=]\s*["']?([A-Za-z]+|\d+(?:\.\d+)?)""",
        text,
        re.IGNORECASE,
    )
    if match:
        grade = _grade(match.group(1), scale)
        if grade is not None:
            return grade, _reason_in(text)
    if scale is None:
        words = set(re.findall(r"\b(pass|fail|passed|failed)\b", text.lower()))
        verdicts = {w.removesuffix("ed") for w in words}
        if len(verdicts) == 1:
            return (1.0 if verdicts == {"pass"} else 0.0), _reason_in(text)
    else:
        out_of = re.search(rf"\b(\d+(?:\.\d+)?)\s*/\s*{scale[1]}\b", text)
        candidates = [out_of.group(1)] if out_of else re.findall(r"\b\d+(?:\.\d+)?\b", text)
        if len(candidates) == 1:
            grade = _grade(candidates[0], scale)
            if grade is not None:
                return grade, _reason_in(text)
    shown = " ".join(text.split())[:120]
    return None, f"could not read a grade in the judge's answer: {shown!r}"


def _json_object(text: str) -> dict[str, Any] | None:
    candidates = [text.strip()]
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        candidates.append(fenced.group(1).strip())
    braces = re.search(r"\{.*\}", text, re.DOTALL)
    if braces:
        candidates.append(braces.group(0))
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


def _grade(raw: Any, scale: tuple[int, int] | None) -> float | None:
    if scale is None:
        if isinstance(raw, bool):
            return 1.0 if raw else 0.0
        word = str(raw).strip().lower()
        if word in ("pass", "passed", "yes", "true"):
            return 1.0
        if word in ("fail", "failed", "no", "false"):
            return 0.0
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    low, high = scale
    return value if low <= value <= high else None


def _reason_in(text: str) -> str:
    match = re.search(r"""["']?reason["']?\s*[:=]\s*["']?([^"'\n}]*)""", text, re.IGNORECASE)
    return (match.group(1) if match else " ".join(text.split()))[:300].strip()


class Judge(ModelScorer):
    """See :func:`judge`."""

    kind = "judge"

    def __init__(
        self,
        rubric: str,
        *,
        model: str | None,
        scale: Any,
        threshold: float | None,
        temperature: float,
        seed: int | None,
        max_tokens: int,
        name: str | None,
    ) -> None:
        from ..checks import number, whole
        from ..templates import TemplateError, variables_of

        if not isinstance(rubric, str) or not rubric.strip():
            raise InvalidInputError("judge(rubric) must be non-empty text")
        try:
            self.variables = set(variables_of(rubric))
        except TemplateError as exc:
            raise InvalidInputError(f"judge(rubric) is not a valid template: {exc}") from None
        self.scale = _scale_of(scale)
        if threshold is not None:
            number("judge(threshold=...)", threshold)
            if self.scale is not None and not self.scale[0] <= threshold <= self.scale[1]:
                raise InvalidInputError(
                    f"judge(threshold={threshold}) is outside the scale {self.scale}"
                )
        whole("judge(max_tokens=...)", max_tokens, low=1)
        self.rubric, self.model, self.threshold = rubric, model, threshold
        self.temperature, self.seed, self.max_tokens = temperature, seed, max_tokens
        super().__init__(
            name,
            {
                "rubric": rubric,
                "model": model,
                "scale": "pass/fail" if self.scale is None else list(self.scale),
                "threshold": threshold,
                "temperature": temperature,
                "seed": seed,
                "max_tokens": max_tokens,
            },
        )

    # -- the request --------------------------------------------------------------

    def _schema(self) -> dict[str, Any]:
        if self.scale is None:
            grade: dict[str, Any] = {"type": "string", "enum": ["pass", "fail"]}
        else:
            grade = {"type": "integer", "enum": list(range(self.scale[0], self.scale[1] + 1))}
        # score before reason: an answer cut off by max_tokens still carries its grade.
        return {
            "type": "object",
            "properties": {"score": grade, "reason": {"type": "string"}},
            "required": ["score", "reason"],
            "additionalProperties": False,
        }

    def messages(self, item: Item) -> list[Message]:
        """The judge's request for one run (what the rubric sees: input, output,
        expected and the run's template variables)."""
        from ..templates import render

        namespace = {
            **dict(item.vars),
            "input": item.input,
            "output": item.output,
            "expected": "" if item.expected is None else item.expected,
        }
        missing = self.variables - set(namespace)
        if missing:
            raise InvalidInputError(
                f"the judge's rubric uses {sorted(missing)}, which this run does not have"
            )
        text = render(self.rubric, namespace, what="judge rubric")
        # A rubric that does not place the answer itself gets the usual sections after it.
        if "output" not in self.variables:
            text += f"\n\nQuestion:\n{item.input}\n\nAnswer to grade:\n{item.output}"
            if item.expected is not None and "expected" not in self.variables:
                text += f"\n\nReference answer:\n{item.expected}"
        if self.scale is None:
            what = '"pass" or "fail"'
        else:
            what = f"a whole number from {self.scale[0]} (worst) to {self.scale[1]} (best)"
        system = _SYSTEM.format(what=what)
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]

    def _target(self, session: Session) -> tuple[Any, str]:
        provider, model = session.resolve(self.model, None)
        return provider, session.chat_model_for(provider, model)

    # -- scoring -------------------------------------------------------------------

    def score_many(
        self,
        items: Sequence[Item],
        session: Session,
        *,
        fresh: bool,
        on_cost: Callable[[float | None], None] | None = None,
    ) -> list[Score]:
        provider, model = self._target(session)

        def one(item: Item) -> Score:
            if on_cost is not None:
                on_cost(None)  # may raise BudgetExceededError before anything is sent
            return self._ask(session, provider.name, model, item, fresh, on_cost)

        if len(items) <= 1:
            return [one(item) for item in items]
        with ThreadPoolExecutor(_JUDGE_CONCURRENCY, thread_name_prefix="judge") as pool:
            return list(pool.map(one, items))

    def _ask(
        self,
        session: Session,
        provider: str,
        model: str,
        item: Item,
        fresh: bool,
        on_cost: Callable[[float | None], None] | None,
    ) -> Score:
        messages = self.messages(item)
        experiment = judge_experiment(str(item.run.get("experiment") or session.experiment))
        knobs: dict[str, Any] = {
            "model": model,
            "provider": provider,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "experiment": experiment,
            "fresh": fresh,
        }
        structured = (provider, model) not in _NO_STRUCTURED_OUTPUT
        if structured:
            knobs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "grade", "strict": True, "schema": self._schema()},
            }
        try:
            response = session.chat(messages, **knobs)
        except BadRequestError as exc:
            if not structured or "response_format" not in str(exc).lower() and (
                "json_schema" not in str(exc).lower()
            ):
                return Score(None, None, f"judge call failed: {exc}"[:300])
            with _NO_STRUCTURED_LOCK:  # this server has no structured output: plain JSON
                _NO_STRUCTURED_OUTPUT.add((provider, model))
            return self._ask(session, provider, model, item, fresh, on_cost)
        except WorkbenchError as exc:
            return Score(None, None, f"judge call failed: {exc}"[:300])
        if on_cost is not None:
            on_cost(response.cost_usd or 0.0)
        grade, reason = parse_verdict(response.text, self.scale)
        if grade is None:
            return Score(None, None, reason, judge_run_id=response.run_id)
        if self.scale is None:
            passed: bool | None = grade >= 1.0
        else:
            passed = None if self.threshold is None else grade >= self.threshold
        return Score(grade, passed, reason[:500], judge_run_id=response.run_id)

    def estimate(self, items: Sequence[Item], session: Session) -> Estimate:
        from ..estimate import Estimate, estimate_messages

        provider, model = self._target(session)
        memo: dict[Any, Any] = {}
        total = Estimate.zero()
        for item in items:
            experiment = judge_experiment(str(item.run.get("experiment") or session.experiment))
            total += estimate_messages(
                self.messages(item),
                model=model,
                provider=provider,
                session=session,
                max_tokens=self.max_tokens,
                experiment=experiment,
                memo=memo,
            )
        return total


def judge(
    rubric: str,
    *,
    model: str | None = None,
    scale: tuple[int, int] | str = (1, 5),
    threshold: float | None = None,
    temperature: float = 0.0,
    seed: int | None = 0,
    max_tokens: int = 200,
    name: str | None = None,
) -> Judge:
    """A model grades each output by ``rubric`` (a template: ``{{input}}``, ``{{output}}``,
    ``{{expected}}`` and the run's own variables; without ``{{output}}`` the question, the
    answer and the reference are appended). ``scale=(1, 5)`` gives a grade, passed when
    ``>= threshold``; ``scale="pass/fail"`` gives 1/0. ``model=None``: the session's
    default chat model (name one to pin it: the model is part of the scorer's id)."""
    return Judge(
        rubric,
        model=model,
        scale=scale,
        threshold=threshold,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        name=name,
    )


