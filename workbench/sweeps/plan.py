"""A sweep's definition turned into prepared calls: prompts rendered per point, each point
a request body and the row it will become, and the sweep's identity (its sweep_id).

No I/O but the session's provider resolution; :mod:`workbench.sweeps.sweep` runs the plan.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError
from workbench.core.templates import TemplateError, render, variables_of
from workbench.sweeps.grid import GridPoint, expand

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.session import PreparedChat, Session
    from workbench.scoring.datasets import Dataset

__all__ = ["PlannedRun", "Prompts", "plan_runs", "sweep_id_of", "points_frame"]

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
        self._fixed = {name: context[name] for name in sorted(needed - set(swept))}

    def render(
        self, variables: Mapping[str, Any], system: str | None
    ) -> tuple[str, str | None, dict[str, Any]]:
        """The prompt, the system prompt, and every variable they used."""
        values = {**self._fixed, **variables}
        prompt = render(self.template, values)
        system_text = None if system is None else render(system, values, what="system prompt")
        return prompt, system_text, values


@dataclass(frozen=True)
class PlannedRun:
    """One point of the grid and the call it becomes."""

    point: GridPoint
    prepared: PreparedChat

    @property
    def identity(self) -> tuple[str, int]:
        return self.prepared.record.request_hash, self.prepared.record.sample_index


def plan_runs(
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
    """Every point of the grid as a prepared call, in the grid's order. Raises ValueError
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
        from workbench.scoring.datasets import case_variables, template_columns

        swept = template_columns(dataset, [template, *texts], context)
        cases = case_variables(dataset, swept)
    prompts = Prompts(template, texts, swept, context)
    plan: list[PlannedRun] = []
    seen: dict[tuple[str, int], GridPoint] = {}
    points = expand(grid, variables, repeats, cases)
    bar = _planning_bar(len(points))
    for point in points:
        if bar is not None and point.index and point.index % _BAR_STEP == 0:
            bar.update(_BAR_STEP)
        knobs = {**fixed, **point.knobs}
        routing = {name: knobs.pop(name) for name in ROUTING if name in knobs}
        prompt, system_text, used = prompts.render(point.variables, routing.get("system", system))
        prepared = session.prepare_chat(
            prompt,
            model=routing.get("model"),
            provider=routing.get("provider"),
            system=system_text,
            experiment=experiment,
            sample_index=point.sample_index,
            template=template,
            variables=used,
            **knobs,
        )
        if dataset is not None and point.case is not None:
            from workbench.scoring.datasets import mark_run

            mark_run(prepared.record, dataset, point.case)
        planned = PlannedRun(point, prepared)
        if planned.identity in seen:
            raise _same_request(seen[planned.identity], point)
        seen[planned.identity] = point
        plan.append(planned)
    if bar is not None:
        bar.update(len(points) - bar.n)
        bar.close()
    return plan


# Below this many points a plan takes about a second (~0.2-0.6 ms a point): no bar.
PROGRESS_FROM = 10_000
_BAR_STEP = 1_000  # a redraw per point cost more than the planning of it


def _planning_bar(total: int) -> Any:
    """A tqdm.auto bar (a widget in a notebook, text in a terminal) for a long plan."""
    if total < PROGRESS_FROM:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="planning", unit="run", dynamic_ncols=True)


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
    identities = [list(p.identity) for p in plan]
    key: list[Any] = [experiment, identities]
    first = plan[0].prepared.record if plan else None
    if first is not None and first.dataset_version is not None:
        # A changed answer or another dataset name is another sweep: its rows must say so.
        items = [p.prepared.record.item_id for p in plan]
        key.append([first.dataset, first.dataset_version, items])
    text = json.dumps(key, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{digest}-{time.time_ns():x}" if fresh else digest


def points_frame(plan: Sequence[PlannedRun]) -> pd.DataFrame:
    """The planned runs in order: point, variables, knobs, sample_index, provider, model,
    prompt, request_hash (and item_id in a dataset sweep)."""
    import pandas as pd

    rows = []
    for planned in plan:
        record = planned.prepared.record
        row: dict[str, Any] = {"point": planned.point.index}
        row.update(planned.point.variables)
        row.update(planned.point.knobs)
        for name in ("sample_index", "provider", "model", "prompt", "request_hash"):
            row.setdefault(name, getattr(record, name))
        if record.item_id is not None:
            row.setdefault("item_id", record.item_id)  # the test case, for dataset sweeps
        rows.append(row)
    return pd.DataFrame(rows)
