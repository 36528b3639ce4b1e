"""LLM-as-judge: a model grades each output by a rubric, through ordinary chat calls.

A judge's calls are rows of the experiment table like any other (tokens, cost, cache,
replay, budget), in the experiment ``<experiment of the judged run>:judge``; the score
points at its call by ``judge_run_id``. Temperature 0 and a fixed seed make a verdict
repeatable, and an identical judge request is replayed from the table for free.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.calls.budget.estimate import Estimate
from workbench.core.checks import number, whole
from workbench.core.errors import BadRequestError, InvalidInputError, WorkbenchError
from workbench.scoring.base import Item, ModelScorer, PartialScores, Score
from workbench.scoring.calls import ModelCalls, Outcome, PartialSend
from workbench.scoring.verdict import read_verdict

if TYPE_CHECKING:
    from workbench.calls.results import ChatResponse
    from workbench.calls.session import Message, PreparedChat

__all__ = ["judge", "Judge", "parse_verdict", "JUDGE_SUFFIX", "judge_experiment"]

JUDGE_SUFFIX = ":judge"

# How many times an unreadable verdict is asked again, one more each time it is scored.
_MAX_RETRIES = 5

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


def parse_verdict(
    text: str, scale: tuple[int, int] | None, *, quoted: tuple[str, ...] = ()
) -> tuple[float | None, str]:
    """The grade in a judge's answer and its reason, read honestly (see
    :mod:`workbench.scoring.verdict`): (None, "unreadable verdict: ...") when the answer
    states no unambiguous verdict."""
    verdict = read_verdict(text, scale, quoted=quoted)
    return verdict.value, verdict.reason


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
        api: str | None = None,
    ) -> None:
        # deferred: at the top, import workbench would load jinja2
        from workbench.core.templates import TemplateError, variables_of

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
        self.api = api
        definition = {
            "rubric": rubric,
            "model": model,
            "scale": "pass/fail" if self.scale is None else list(self.scale),
            "threshold": threshold,
            "temperature": temperature,
            "seed": seed,
            "max_tokens": max_tokens,
        }
        if api is not None:  # only when given: the ids of earlier judges stay as they were
            definition["api"] = api
        super().__init__(name, definition)

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
        # deferred: at the top, import workbench would load jinja2
        from workbench.core.templates import render

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

    # -- scoring -------------------------------------------------------------------

    def _request(self, calls: ModelCalls, provider: Any, model: str, item: Item,
                 sample: int = 0) -> PreparedChat:
        experiment = judge_experiment(str(item.run.get("experiment") or calls.experiment))
        knobs: dict[str, Any] = {
            "model": model,
            "provider": provider.name,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "experiment": experiment,
            "sample_index": sample,
        }
        if self.api is not None:
            knobs["api"] = self.api
        if (provider.name, model) not in _NO_STRUCTURED_OUTPUT:
            knobs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "grade", "strict": True, "schema": self._schema()},
            }
        return calls.prepare(self.messages(item), **knobs)

    def score_many(self, items: Sequence[Item], calls: ModelCalls, *, fresh: bool) -> list[Score]:
        """Every item's grade: replayed from the table where this exact request was
        answered, else sent (claimed first, so that it is paid once) through the
        dispatcher at ``calls.concurrency``. A failure is a None score saying why."""
        provider, model = calls.target(self.model)
        scores: list[Score | None] = [None] * len(items)
        requests: dict[int, PreparedChat] = {}
        for i, item in enumerate(items):
            try:
                requests[i] = self._request(calls, provider, model, item)
            except WorkbenchError as exc:
                scores[i] = Score(None, None, f"judge not asked: {exc}"[:300])
        todo = list(requests)
        if not fresh:
            todo = [i for i in todo if not self._replayed(calls, provider, model, items[i],
                                                          requests, scores, i)]
        for _ in range(2):  # a second go without response_format if the server refused it
            try:
                outcomes = calls.send_claimed([requests[i] for i in todo], claim=not fresh)
            except PartialSend as partial:  # a budget: these scores, then stop
                for i, outcome in zip(todo, partial.outcomes, strict=True):
                    scores[i] = self._outcome(outcome, items[i])
                raise PartialScores(_filled(scores, "not scored"), partial.cause) from None
            refused = []
            for i, outcome in zip(todo, outcomes, strict=True):
                if _no_structured_output(outcome, requests[i]):
                    refused.append(i)
                else:
                    scores[i] = self._outcome(outcome, items[i])
            if not refused:
                break
            with _NO_STRUCTURED_LOCK:  # this server has no structured output: plain JSON
                _NO_STRUCTURED_OUTPUT.add((provider.name, model))
            for i in refused:
                sample = requests[i].record.sample_index
                requests[i] = self._request(calls, provider, model, items[i], sample)
            todo = refused
        return _filled(scores, "not scored")

    def _replayed(self, calls: ModelCalls, provider: Any, model: str, item: Item,
                  requests: dict[int, PreparedChat], scores: list[Score | None], i: int) -> bool:
        """True when the table answers item ``i``: its judge call was made before and its
        verdict reads. An answer whose verdict was unreadable is a failed score, and
        scoring again asks again: the next sample of the same request (sample_index 1,
        2, ...), itself replayed where someone has asked it already. So each scoring
        pass pays at most one new call for a failed verdict, and two kernels retrying it
        claim the same sample and pay it once."""
        for sample in range(_MAX_RETRIES + 1):
            if sample:
                requests[i] = self._request(calls, provider, model, item, sample)
            hit = calls.cached(requests[i])
            if hit is None:
                return False  # this sample is to be asked
            score = scores[i] = self._read(hit, item)
            if score.value is not None:
                return True
        return True  # asked _MAX_RETRIES times already: the last reading stands

    def _outcome(self, outcome: Outcome, item: Item) -> Score:
        if outcome.response is None:
            return Score(None, None, outcome.error[:300])
        return self._read(outcome.response, item)

    def _read(self, response: ChatResponse, item: Item) -> Score:
        quoted = tuple(str(q) for q in (item.output, item.expected) if q)
        grade, reason = parse_verdict(response.text, self.scale, quoted=quoted)
        if grade is None:
            return Score(None, None, reason, judge_run_id=response.run_id)
        if self.scale is None:
            passed: bool | None = grade >= 1.0
        else:
            passed = None if self.threshold is None else grade >= self.threshold
        return Score(grade, passed, reason[:500], judge_run_id=response.run_id)

    def estimate(self, items: Sequence[Item], calls: ModelCalls) -> Estimate:
        provider, model = calls.target(self.model)
        memo: dict[Any, Any] = {}
        total = Estimate.zero()
        for item in items:
            experiment = judge_experiment(str(item.run.get("experiment") or calls.experiment))
            total += calls.estimate(
                self.messages(item),
                model=model,
                provider=provider,
                max_tokens=self.max_tokens,
                experiment=experiment,
                memo=memo,
            )
        return total


def _no_structured_output(outcome: Outcome, prepared: PreparedChat) -> bool:
    """A 400 about response_format: the server has no structured output."""
    if not isinstance(outcome.exc, BadRequestError) or "response_format" not in prepared.body:
        return False
    text = str(outcome.exc).lower()
    return "response_format" in text or "json_schema" in text


def _filled(scores: Sequence[Score | None], why: str) -> list[Score]:
    return [Score(None, None, why) if s is None else s for s in scores]


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
    api: str | None = None,
) -> Judge:
    """A model grades each output by ``rubric`` (a template: ``{{input}}``, ``{{output}}``,
    ``{{expected}}`` and the run's own variables; without ``{{output}}`` the question, the
    answer and the reference are appended). ``scale=(1, 5)`` gives a grade, passed when
    ``>= threshold``; ``scale="pass/fail"`` gives 1/0. ``model=None``: the session's
    default chat model (name one to pin it: the model is part of the scorer's id).
    ``api="responses"`` grades through the Responses API (None: as any call chooses)."""
    return Judge(
        rubric,
        model=model,
        scale=scale,
        threshold=threshold,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        name=name,
        api=api,
    )


