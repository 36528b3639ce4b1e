"""A sweep's definition turned into prepared calls: prompts rendered per point, each point
a request body and the row it will become, and the sweep's identity (its sweep_id).

No I/O but the session's provider resolution; :mod:`workbench.sweeps.sweep` runs the plan.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workbench.calls.prepare import build_chat, check_chat_input
from workbench.calls.progress import Bar
from workbench.core.checks import sendable
from workbench.core.errors import InvalidInputError
from workbench.core.gcpause import gc_paused
from workbench.core.identity import STREAM_ONLY_KEYS, canonical_json
from workbench.core.templates import (
    TemplateError,
    is_template,
    parse_template,
    render,
    variables_of,
)
from workbench.core.tokens import count_chat_tokens
from workbench.scoring.datasets import case_variables, mark_run, template_columns
from workbench.store.nul import NUL
from workbench.sweeps.grid import GridPoint, expand

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.session import PreparedChat, Session
    from workbench.core.record import RunRecord
    from workbench.scoring.datasets import Dataset

__all__ = ["PlannedRun", "Prompts", "Shape", "plan_runs", "sweep_id_of", "points_frame",
           "stamp_sweep_id", "requests_to_check"]

# Grid or fixed keys that choose where a call goes or what it says, not body parameters.
ROUTING = ("model", "provider", "system")
# Keys a sweep sets itself: a sweep does not stream, and its messages come from the template.
_NOT_SETTABLE = ("stream", "stream_options", "messages")


class Prompts:
    """The template and system prompts of a sweep, rendered per point (``{{name}}``)."""

    def __init__(
        self,
        template: str,
        systems: Sequence[str],
        swept: Sequence[str],
        context: Mapping[str, Any] | None,
    ) -> None:
        self.template = template
        needed = {name for text in [template, *systems] for name in variables_of(text)}
        context = context or {}
        missing = sorted(needed - set(swept) - set(context))
        if missing:
            raise TemplateError(
                f"Undefined variable(s) {', '.join(missing)} in the sweep's template: give "
                "them values in vars=... (swept) or context=... (fixed)",
                tuple(missing),
            )
        unused = sorted(set(swept) - needed)
        if unused:
            # Every value of an unused variable would give the same request.
            raise TemplateError(
                f"vars {', '.join(unused)} do not appear in the template or system prompt "
                f"(write {{{{{unused[0]}}}}} where the value goes)"
            )
        self.fixed = {name: context[name] for name in sorted(needed - set(swept))}
        self._parts = _plain_parts(template)
        self._checked = 0

    def render(self, variables: Mapping[str, Any], system: str | None) -> tuple[str, str | None]:
        """The prompt and the system prompt of one point."""
        values = {**self.fixed, **variables} if self.fixed else variables
        prompt = self._render_prompt(values)
        system_text = None if system is None else render(system, values, what="system prompt")
        return prompt, system_text

    def _render_prompt(self, values: Mapping[str, Any]) -> str:
        parts = self._parts
        if parts is None:
            return render(self.template, values)
        # Text and {{name}} only: Jinja's output is the text and str() of each value,
        # joined (~2 us a point instead of ~35). The first points are checked against
        # Jinja itself; a difference there sends every point through Jinja.
        fast = "".join(part if literal else str(values[part]) for literal, part in parts)
        if self._checked < _CHECKED_POINTS:
            self._checked += 1
            slow = render(self.template, values)
            if slow != fast:
                self._parts = None
                return slow
        return fast


# Points whose fast rendering is compared with Jinja's, per sweep.
_CHECKED_POINTS = 64


def _plain_parts(template: str) -> list[tuple[bool, str]] | None:
    """A template made only of text and ``{{name}}`` as (is_text, text or name) parts;
    None for anything else (filters, loops, attributes...) or a template with no names."""
    from jinja2 import nodes  # deferred: keeps import workbench light (jinja2 ~43 ms)


    if not is_template(template):
        return None
    try:
        tree = parse_template(template)
    except TemplateError:
        return None
    parts: list[tuple[bool, str]] = []
    for output in tree.body:
        if not isinstance(output, nodes.Output):
            return None
        for node in output.nodes:
            if isinstance(node, nodes.TemplateData):
                parts.append((True, node.data))
            elif isinstance(node, nodes.Name) and node.ctx == "load":
                parts.append((False, node.name))
            else:
                return None
    return parts


class Shape:
    """What the points of one knob combination (and system prompt) share: the checked
    request parameters, the resolved provider and model, and the request's canonical JSON
    around the prompt, so a point's request hash is one sha256 of three strings instead of
    a body, a row and three JSON documents (those took ~0.1 ms a point in cProfile)."""

    def __init__(
        self,
        session: Session,
        routing: Mapping[str, Any],
        knobs: Mapping[str, Any],
        system_text: str | None,
        experiment: str,
        template: str,
        dataset: Dataset | None,
    ) -> None:
        names = {"model": routing.get("model"), "provider": routing.get("provider"),
                 "system": system_text, "experiment": experiment}
        self.params = check_chat_input(_PLACEHOLDER, names, False, dict(knobs))
        provider, model_name = session.resolve(routing.get("model"), routing.get("provider"))
        self.provider = provider
        self.model = session.chat_model_for(provider, model_name)
        self.system_text = system_text
        self.experiment = experiment
        self.template = template
        self.dataset = dataset
        self.sweep_id: str | None = None
        self.marks: dict[str, str | None] = {}  # lineage columns stamped on each run
        prototype = self.build(_PLACEHOLDER, 0, None)
        self.prototype = prototype
        self._around: tuple[str, str] | None = None
        self._base_tokens: int | None = None
        # The JSON-mode instruction depends on the prompt's words: such points are built
        # one by one, as any single call is.
        if prototype.body["messages"][-1].get("content") == _PLACEHOLDER:
            self._around = _split_around(provider.identity, prototype.body)

    def build(self, prompt: str, sample_index: int, variables: Mapping[str, Any] | None
              ) -> PreparedChat:
        prepared = build_chat(
            prompt, provider=self.provider, model=self.model, experiment=self.experiment,
            system=self.system_text, sample_index=sample_index, template=self.template,
            variables=variables, params=self.params, sweep_id=self.sweep_id,
        )
        for name, value in self.marks.items():  # after the request hash: not identity
            setattr(prepared.record, name, value)
        return prepared

    def request_hash(self, prompt: str) -> str:
        """The request hash of this shape's call of ``prompt`` (see :func:`request_hash`)."""
        if self._around is None:
            return self.build(prompt, 0, None).record.request_hash

        sendable("The user message", prompt)  # what build_chat checks of each message
        before, after = self._around
        text = before + _json_string(prompt) + after  # json.dumps(prompt, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def counted(self) -> bool:
        """Whether a point's prompt tokens are this shape's plus its prompt's own."""
        return self._around is not None

    def base_tokens(self) -> int:
        """Prompt tokens of the request with an empty prompt (system, role, priming)."""
        if self._base_tokens is None:
            messages = [dict(m) for m in self.prototype.body["messages"]]
            messages[-1]["content"] = ""
            self._base_tokens = count_chat_tokens(messages, self.model)
        return self._base_tokens


# The C function json.dumps(text, ensure_ascii=False) ends in, without a JSONEncoder a call.
_json_string = json.encoder.encode_basestring

_PLACEHOLDER = "workbench-prompt-placeholder-5d0c3e8a9b1f4c27"


def _split_around(provider: str, body: Mapping[str, Any]) -> tuple[str, str]:
    """The canonical JSON of the request (as :func:`request_hash` hashes it) before and
    after the placeholder prompt's JSON string."""
    asked = {k: v for k, v in body.items() if k not in STREAM_ONLY_KEYS}
    text = canonical_json({"provider": provider, "body": asked})
    before, _, after = text.partition(json.dumps(_PLACEHOLDER, ensure_ascii=False))
    return before, after


class PlannedRun:
    """One point of the grid and the call it becomes. The call (its body and row) is
    built when first asked for: a million-row dataset's rows and bodies did not fit in
    2 GB; the plan keeps what identity needs (the prompt and its request hash)."""

    __slots__ = ("point", "shape", "prompt", "request_hash", "_prepared", "_fixed")

    def __init__(self, point: GridPoint, shape: Shape, prompt: str, fixed: Mapping[str, Any]
                 ) -> None:
        self.point = point
        self.shape = shape
        self.prompt = prompt
        self._fixed = fixed  # the context's variables the template uses (shared)
        self.request_hash = shape.request_hash(prompt)
        self._prepared: PreparedChat | None = None

    @property
    def identity(self) -> tuple[str, int]:
        return self.request_hash, self.point.sample_index

    @property
    def model(self) -> str:
        return self.shape.model

    @property
    def item_id(self) -> str | None:
        dataset, case = self.shape.dataset, self.point.case
        return None if dataset is None or case is None else dataset.item_ids[case]

    @property
    def expected(self) -> str | None:
        """The reference answer its row will hold (a dataset sweep's)."""
        dataset, case = self.shape.dataset, self.point.case
        return None if dataset is None or case is None else dataset.expected_text(case)

    @property
    def prepared(self) -> PreparedChat:
        if self._prepared is None:
            shape = self.shape
            used = {**self._fixed, **self.point.variables}
            prepared = shape.build(self.prompt, self.point.sample_index, used)
            if shape.dataset is not None and self.point.case is not None:
                mark_run(prepared.record, shape.dataset, self.point.case)
            self._prepared = prepared
        return self._prepared


def plan_runs(*args: Any, **kwargs: Any) -> list[PlannedRun]:
    """See :func:`_plan_runs`; the collector is paused meanwhile (:mod:`gcpause`)."""
    with gc_paused():
        return _plan_runs(*args, **kwargs)


def _plan_runs(
    session: Session,
    template: str,
    *,
    grid: Mapping[str, Sequence[Any]],
    variables: Mapping[str, Sequence[Any]],
    fixed: Mapping[str, Any],
    repeats: int,
    system: str | None,
    experiment: str,
    context: Mapping[str, Any] | None,
    dataset: Dataset | None = None,
) -> list[PlannedRun]:
    """Every point of the grid as a planned call, in the grid's order. Raises ValueError
    (TemplateError for templates) on a definition that cannot be a sweep. With a
    ``dataset``, its rows are the template variables (one point per row, times the grid)
    and each run records the test case it answers."""
    for name in _NOT_SETTABLE:
        if name in grid or name in fixed:
            raise ValueError(f"{name!r} cannot be set in a sweep")
    clash = sorted(set(grid) & set(fixed))
    if clash:
        raise ValueError(f"{clash} given both in the grid and as fixed parameters")
    systems = [system, *grid.get("system", []), fixed.get("system")]
    texts = [s for s in systems if isinstance(s, str)]
    swept, cases = list(variables), None
    if dataset is not None:
        swept = template_columns(dataset, [template, *texts], context)
        cases = case_variables(dataset, swept)
    prompts = Prompts(template, texts, swept, context)
    plan: list[PlannedRun] = []
    seen: dict[tuple[str, int], GridPoint] = {}
    shapes: dict[tuple[int, str | None], Shape] = {}
    requests: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    points = expand(grid, variables, repeats, cases)
    bar = _planning_bar(len(points))
    for point in points:
        if bar is not None and point.index and point.index % _BAR_STEP == 0:
            bar.update(_BAR_STEP)
        # The grid's knob dicts are shared by its points (grid.expand): worked out once each.
        request = requests.get(id(point.knobs))
        if request is None:
            knobs = {**fixed, **point.knobs}
            routing = {name: knobs.pop(name) for name in ROUTING if name in knobs}
            request = requests[id(point.knobs)] = (knobs, routing)
        knobs, routing = request
        prompt, system_text = prompts.render(point.variables, routing.get("system", system))
        key = (id(point.knobs), system_text)
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = Shape(
                session, routing, knobs, system_text, experiment, template, dataset
            )
        planned = PlannedRun(point, shape, prompt, prompts.fixed)
        if planned.identity in seen:
            raise _same_request(seen[planned.identity], point)
        seen[planned.identity] = point
        plan.append(planned)
    if bar is not None:
        bar.update(len(points) - bar.n)
        bar.close()
    return plan


def stamp_sweep_id(plan: Sequence[PlannedRun], sweep_id: str) -> None:
    """Give every planned run (and the calls built from them later) the sweep's id."""
    for shape in {id(p.shape): p.shape for p in plan}.values():
        shape.sweep_id = sweep_id
    for planned in plan:
        if planned._prepared is not None:  # noqa: SLF001 - built before the id was known
            planned._prepared.record.sweep_id = sweep_id  # noqa: SLF001


def stamp_marks(plan: Sequence[PlannedRun], marks: Mapping[str, str | None]) -> None:
    """Give every planned run's row (built now or later) the lineage columns ``marks``."""
    for shape in {id(p.shape): p.shape for p in plan}.values():
        shape.marks = dict(marks)
    for planned in plan:
        if planned._prepared is not None:  # noqa: SLF001 - built before the marks were known
            for name, value in marks.items():
                setattr(planned._prepared.record, name, value)  # noqa: SLF001


def requests_to_check(plan: Iterable[PlannedRun]) -> Iterator[RunRecord]:
    """The rows a store checks before ``plan``'s calls are sent (``store.check_writable``:
    PostgreSQL refuses a NUL in text), without building every call: each is built by the
    worker that sends it (building 1,000 first took 0.3-0.7 s of a cold sweep's start).

    Each shape's prototype holds what its points share (provider, model, system prompt,
    template, knobs, experiment, user); a point's call is built only when its own text (its
    prompt, its expected answer) or what is stamped on it (marks, dataset name) holds a
    NUL, and then checked like any call, so the store's refusal names its column. The
    rest of a row is JSON (messages, variables, params: json.dumps writes a NUL as
    ``\\u0000``) or made here (ids, hashes)."""
    stamped: dict[int, bool] = {}  # per shape: do its marks or dataset name hold a NUL?
    for planned in plan:
        shape = planned.shape
        marked = stamped.get(id(shape))
        if marked is None:
            yield shape.prototype.record
            dataset = shape.dataset
            marks = [*shape.marks.values(), None if dataset is None else dataset.name]
            marked = stamped[id(shape)] = _holds_nul(marks)
        if marked or _holds_nul([planned.prompt, planned.expected]):
            yield planned.prepared.record


def _holds_nul(texts: Iterable[str | None]) -> bool:
    return any(text is not None and NUL in text for text in texts)


# Below this many points a plan takes about a second (~0.2-0.6 ms a point): no bar.
PROGRESS_FROM = 10_000
_BAR_STEP = 1_000  # a redraw per point cost more than the planning of it


def _planning_bar(total: int) -> Bar | None:
    """A bar (a widget in a notebook, text in a terminal) for a long plan."""
    return Bar(total, "planning", "run") if total >= PROGRESS_FROM else None


def _same_request(first: GridPoint, second: GridPoint) -> ValueError:
    if first.case is not None and second.case is not None and first.case != second.case:
        return InvalidInputError(
            f"rows {first.case} and {second.case} of the dataset give the same request (the "
            "columns the template uses are equal): drop one, or use the column that differs"
        )
    return ValueError(
        f"points {first.index} and {second.index} of the sweep are the same request (same "
        "model, messages and parameters): drop one value"
    )


def sweep_id_of(experiment: str, plan: Sequence[PlannedRun], *, fresh: bool) -> str:
    """A hash of the experiment and every run's identity: the same sweep defined again
    (a notebook re-run) has the same id. Fresh samples make a new sweep each time."""
    # The JSON text of [experiment, [[request_hash, sample_index], ...]] (plus the
    # dataset's [name, version, [item_id, ...]]), as json.dumps(key, separators=(",", ":"))
    # writes it, joined by hand: a million identities as lists through json.dumps took
    # ~3 s. Hashes and item ids are hex and sample indexes whole numbers: nothing to escape.
    parts = [f"[{json.dumps(experiment)},["]
    parts.append(",".join([f'["{p.request_hash}",{int(p.point.sample_index)}]' for p in plan]))
    parts.append("]")
    dataset = plan[0].shape.dataset if plan else None
    if dataset is not None and plan[0].point.case is not None and dataset.version is not None:
        # A changed answer or another dataset name is another sweep: its rows must say so.
        items = ",".join([f'"{p.item_id}"' for p in plan])
        parts.append(f",[{json.dumps(dataset.name)},{json.dumps(dataset.version)},[{items}]]")
    parts.append("]")
    text = "".join(parts)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{digest}-{time.time_ns():x}" if fresh else digest


def points_frame(plan: Sequence[PlannedRun]) -> pd.DataFrame:
    """The planned runs in order: point, variables, knobs, sample_index, provider, model,
    prompt, request_hash (and item_id in a dataset sweep)."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    rows = []
    for planned in plan:
        row: dict[str, Any] = {"point": planned.point.index}
        row.update(planned.point.variables)
        row.update(planned.point.knobs)
        row.setdefault("sample_index", planned.point.sample_index)
        row.setdefault("provider", planned.shape.provider.identity)
        row.setdefault("model", planned.model)
        row.setdefault("prompt", planned.prompt)
        row.setdefault("request_hash", planned.request_hash)
        if planned.item_id is not None:
            row.setdefault("item_id", planned.item_id)  # the test case, for dataset sweeps
        rows.append(row)
    return pd.DataFrame(rows)
