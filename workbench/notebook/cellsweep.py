"""A ``%%chat`` cell that is a sweep (a list or range on a knob, or ``--repeat K``): planned
as a :class:`~workbench.sweeps.sweep.Sweep`, its estimate shown, run with a progress bar, and its
outputs shown side by side with a one-line summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from workbench.api.keycheck import warn_if_key
from workbench.calls.session import Session, get_session, one_line
from workbench.core.errors import SweepInterrupted, WorkbenchError
from workbench.core.money import money_html
from workbench.core.pricing import is_estimated
from workbench.core.templates import TemplateError, render
from workbench.notebook.cells import check_model, response_format_of, scorers_of
from workbench.notebook.display import Note, format_cost, show
from workbench.notebook.options import ChatRequest, OptionError
from workbench.scoring.columns import score_columns
from workbench.scoring.live import compact_row
from workbench.sweeps.grid import unique
from workbench.sweeps.sidebyside import table_html
from workbench.sweeps.sweep import Sweep

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.budget.estimate import Estimate

__all__ = ["plan_sweep", "run_sweep", "SweepDisplay", "SweepInterrupted"]

Bundle = tuple[dict[str, Any], dict[str, Any]]
_PLAIN_WIDTH = 40  # characters of each output in the text table; the HTML has them all


def plan_sweep(
    request: ChatRequest, namespace: Mapping[str, Any], *, session: Session | None = None
) -> Sweep:
    """The sweep a ``%%chat`` cell asks for; nothing is sent. The notebook's variables
    fill the template (they are not swept), so a missing one is the single call's error."""
    prompt = render(request.prompt, namespace)
    system = None if request.system is None else render(request.system, namespace, what="--system")
    warn_if_key("%%chat", [prompt, system])  # before anything is sent, as for one call
    response_format, _ = response_format_of(request, namespace)
    fixed: dict[str, Any] = {
        "model": request.model,
        "provider": request.provider,
        "response_format": response_format,
        **request.params,
    }
    try:
        sweep = Sweep(
            request.prompt,
            grid=request.grid,
            repeats=request.repeat,
            system=request.system,
            experiment=request.experiment,
            budget=request.budget,
            deadline=request.deadline,
            fresh=request.fresh,
            context=namespace,
            fixed={name: value for name, value in fixed.items() if value is not None},
            session=session or get_session(),
            scorers=scorers_of(request, namespace),
        )
    except TemplateError:
        raise
    except ValueError as exc:  # e.g. two points that are the same request
        raise OptionError(f"Cannot run this sweep: {one_line(exc)}") from None
    if request.concurrency is not None:  # checked (1 or more) when the line was read
        sweep.concurrency = request.concurrency
    return sweep


def run_sweep(
    sweep: Sweep,
    request: ChatRequest,
    *,
    display: Callable[[object], Any] = show,
    progress: bool = True,
) -> None:
    """Show the estimate, run what is missing with a progress bar, show the table.

    Ctrl-C stops the calls in flight, shows what finished and is raised again (as
    :class:`SweepInterrupted`, one line, no traceback), so "Run all" stops there; running
    the cell again sends only the missing runs.
    """
    to_send = sweep.estimate(remaining=True)
    if to_send.runs:  # a replay needs no server, so a shared notebook re-runs offline
        for model in request.grid.get("model", (request.model,)):
            if model:
                check_model(sweep.session, model, request.provider)
    display(plan_note(sweep, to_send))
    try:
        sweep.run(mode="batch" if request.batch else "live", progress=progress)
    except KeyboardInterrupt:
        display(SweepDisplay(sweep))
        raise SweepInterrupted(len(sweep.df), len(sweep), "run the cell again") from None
    except WorkbenchError:
        if sweep.progress.state == "failed":  # some runs may have finished: show them
            display(SweepDisplay(sweep))
        raise
    display(SweepDisplay(sweep))


def _shape(sweep: Sweep) -> str:
    axes = [f"{name}×{len(values)}" for name, values in sweep.grid.items()]
    return " · ".join(axes + ([f"repeat×{sweep.repeats}"] if sweep.repeats > 1 else []))


def plan_note(sweep: Sweep, to_send: Estimate) -> Note:
    """What running the sweep will do: how many runs, how many are in the table already,
    and the estimate of those to send."""
    df = sweep.df
    done = int((df["status"] == "ok").sum()) if len(df) else 0
    replayed = len(sweep) - done - to_send.runs
    parts = [f"{len(sweep)} runs ({_shape(sweep)})"]
    if done:
        parts.append(f"{done} already done")
    if replayed:
        parts.append(f"{replayed} from the table, free")
    waiting = sweep.batch.open_rows()  # submitted by an earlier run of the cell
    if waiting:
        ids = ", ".join(row.batch_id for row in waiting)
        parts.append(f"batch {ids} in progress: collecting it")
    else:
        parts.append(f"to send: {to_send}" if to_send.runs else "nothing to send")
    text = " · ".join(parts)
    # HTML, not Markdown: JupyterLab typesets "$...$" as maths, even escaped as "\\$",
    # and an estimate has three dollar amounts.
    return Note(f"Sweep {text}", f"Sweep {text}", html=f"<b>Sweep</b> {money_html(text)}")


def _total(df: pd.DataFrame, column: str) -> int:
    return int(df[column].sum(skipna=True)) if len(df) else 0


def _with_scores(sweep: Sweep, table: pd.DataFrame) -> pd.DataFrame:
    """Each cell's output followed by its run's scores, compact: ``[contains ✓ · judge 4]``."""
    columns = score_columns(sweep.df)
    if not columns:
        return table

    per_score = {column: sweep.table(values=column) for column in columns}
    out = table.copy()
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            labels = compact_row({c: per_score[c].iat[i, j] for c in columns})
            if labels:
                text = out.iat[i, j]
                out.iat[i, j] = f"{'' if text is None else text}\n[{labels}]"
    return out


class SweepDisplay:
    """The result of a sweep cell: outputs side by side (one column per knob combination)
    and a summary line: models · runs, ok and errors · tokens · cost · cached · sweep id."""

    def __init__(self, sweep: Sweep, *, resume: str = "run the cell again") -> None:
        self.sweep = sweep
        self.resume = resume  # how to send the rest after a stop (a panel: press Run)
        self.df = sweep.df
        self.table = _with_scores(sweep, sweep.table())
        self.notes = sweep.notes_table()

    @property
    def summary(self) -> str:
        df, sweep = self.df, self.sweep
        models = unique(list(sweep.points["model"]))
        ok = int((df["status"] == "ok").sum()) if len(df) else 0
        errors = len(df) - ok
        runs = f"{len(df)}/{len(sweep)} runs" if len(df) < len(sweep) else f"{len(sweep)} runs"
        parts = [", ".join(map(str, models)), runs, f"{ok} ok"]
        if errors:
            parts.append(f"{errors} error{'s' if errors != 1 else ''}")
        parts.append(f"{_total(df, 'prompt_tokens')}→{_total(df, 'completion_tokens')} tokens")
        parts.append(self._cost_text())
        cached = _total(df, "cache_hit")
        if cached:
            parts.append(f"{cached} cached")
        for column in score_columns(df):  # each scorer's mean over the sweep's runs
            mean = df[column].mean()
            if mean == mean:
                parts.append(f"{column} mean {mean:.3g}")
        state = sweep.progress
        if state.state == "stopped":
            parts.append(f"stopped: {self.resume} to resume")
        elif state.state == "failed":
            parts.append(f"failed: {state.message}")
        parts.append(f"sweep {sweep.sweep_id}")
        return " · ".join(parts)

    @property
    def cost_usd(self) -> float | None:
        """What this sweep's runs cost; None when a price is unknown (never a guess)."""
        ok = self.df[self.df["status"] == "ok"] if len(self.df) else self.df
        if len(ok) and bool(ok["cost_usd"].isna().any()):
            return None
        return float(ok["cost_usd"].sum()) if len(ok) else 0.0

    def _cost_text(self) -> str:
        """``$X``, ``~$X`` (some costs estimated from counted tokens), ``$X + unknown``
        (some prices unknown) or ``cost unknown``: an unknown price is never shown as $0."""
        ok = self.df[self.df["status"] == "ok"] if len(self.df) else self.df
        if not len(ok):
            return format_cost(0.0)
        known = ok[ok["cost_usd"].notna()]
        if not len(known):
            return "cost unknown"
        mark = "~" if any(is_estimated(s) for s in known["price_source"].dropna()) else ""
        spent = mark + format_cost(float(known["cost_usd"].sum()))
        return spent if len(known) == len(ok) else f"{spent} + unknown"

    def html(self) -> str:
        """The table (scrolling sideways, small print per cell) and the summary line; the
        SweepPanel shows the same."""
        summary = f"<div><sub>{money_html(self.summary)}</sub></div>"
        return table_html(self.table, self.notes) + summary

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        data = {"text/html": self.html(), "text/plain": repr(self)}
        df = self.df
        ok = int((df["status"] == "ok").sum()) if len(df) else 0
        metadata = {
            "workbench": {
                "sweep_id": self.sweep.sweep_id,
                "runs": len(self.sweep),
                "ok": ok,
                "errors": len(df) - ok,
                "prompt_tokens": _total(df, "prompt_tokens"),
                "completion_tokens": _total(df, "completion_tokens"),
                "cost_usd": self.cost_usd,
                "cache_hits": _total(df, "cache_hit"),
                "run_ids": list(df["run_id"]) if len(df) else [],
            }
        }
        return data, metadata

    def __repr__(self) -> str:
        return f"{self.table.to_string(max_colwidth=_PLAIN_WIDTH)}\n\n{self.summary}"
