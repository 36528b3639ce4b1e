"""Notebook panels (ipywidgets): ``SweepPanel`` to plan, estimate, run and compare a sweep,
and ``Playground`` to turn every knob of one prompt.

The panels only read their controls and call the engine (:mod:`workbench.sweeps.sweep`, the
session); errors show inside the panel as one line, never as a traceback. Results are
HTML and PNG values of widgets, so they also update from the sweep's thread.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from workbench.calls.session import Session, get_session
from workbench.notebook.cellsweep import SweepDisplay
from workbench.notebook.panelparts import (
    LABELLED,
    WIDE,
    KnobControl,
    Panel,
    api_range,
    available_models,
    error_html,
    parse_variables,
)
from workbench.notebook.playground import Playground
from workbench.notebook.tokenchart import token_usage_svg
from workbench.scoring.datasets import FILE_SUFFIXES, Dataset, as_dataset
from workbench.sweeps.grid import parse_values, spaced, unique
from workbench.sweeps.sweep import Sweep

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.progress import SweepProgress
    from workbench.sweeps.sweep import VarsInput

__all__ = ["SweepPanel", "Playground", "available_models", "parse_variables"]

# An HTML widget's content is a flex item that grows to its widest line (min-width: auto):
# a wide table made the whole panel output scroll, its scrollbar under the chart, instead
# of the table scrolling inside its own box (measured: content 1,514 px in a 964 px panel).
_FIT_WIDTH = "<style>.wb-results > .widget-html-content {min-width: 0}</style>"


class SweepPanel(Panel):
    """Plan a sweep with sliders and boxes, see its cost before running, run and stop it,
    and compare the answers side by side. ``models`` replaces the providers' lists.

    ``vars`` takes test cases as :func:`workbench.sweep` does (a DataFrame, a list of
    dicts, a .csv/.jsonl/.parquet path, ``wb.dataset(...)``), with ``expected`` naming the
    answer column; a file path typed alone in the variables box works too."""

    def __init__(
        self,
        template: str | None = None,
        *,
        vars: VarsInput = None,  # noqa: A002 - the same name as wb.sweep's
        expected: str | None = None,
        models: Sequence[str] | None = None,
        session: Session | None = None,
    ) -> None:
        self.session = session or get_session()
        self.sweep: Sweep | None = None
        self.message = w.HTML()
        # Test cases given to the panel replace its variables box (checked here, at once).
        self.cases: Dataset | None = None
        if vars is not None and not isinstance(vars, Mapping):
            self.cases = as_dataset(vars, expected=expected)
        options = self._model_options(models)
        text = {"layout": WIDE, "continuous_update": False}
        # A label beside each box: a placeholder alone vanishes once something is typed.
        self.template = w.Textarea(
            value=template or "", placeholder="Prompt; {{name}} for a variable", rows=4,
            description="prompt", **text, **LABELLED,
        )
        self.system = w.Textarea(
            placeholder="System prompt (optional)", rows=2, description="system", **text,
            **LABELLED,
        )
        self.variables = w.Textarea(
            placeholder="name = value, value (one per line), or a .csv/.jsonl/.parquet path",
            rows=2, description="variables", **text, **LABELLED,
        )
        if self.cases is not None:
            self.variables.value = repr(self.cases)
            self.variables.disabled = True
        elif isinstance(vars, Mapping):
            self.variables.value = "\n".join(
                f"{name} = {', '.join(map(str, values))}" for name, values in vars.items()
            )
        self.models = w.SelectMultiple(
            options=options, value=options[:1], rows=4, description="models", **LABELLED
        )
        self.temperature = KnobControl(
            "temperature",
            w.FloatRangeSlider(value=(0.0, 1.0), step=0.05, **api_range("temperature")),
            on=True,
        )
        self.temperature_steps = w.BoundedIntText(value=3, min=1, max=21, description="steps")
        self.top_p = KnobControl(
            "top_p", w.FloatRangeSlider(value=(1.0, 1.0), step=0.05, **api_range("top_p")),
            on=False,
        )
        self.top_p_steps = w.BoundedIntText(value=1, min=1, max=21, description="steps")
        self.seeds = w.Text(placeholder="e.g. 1,2,3 or 1:10", description="seeds", **text)
        self.max_tokens = w.BoundedIntText(
            value=128, description="max_tokens", **api_range("max_tokens", max=1_000_000)
        )
        self.repeats = w.BoundedIntText(value=1, min=1, max=1000, description="repeats")
        self.concurrency = w.BoundedIntText(value=4, min=1, max=256, description="concurrency")
        # The Batch API (workbench.sweeps.batch): half price on OpenAI, answers within 24 hours.
        self.batch = w.Checkbox(value=False, description="Batch API (within 24 h)", indent=False)
        self.estimate = w.HTML()
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1)
        self.status = w.HTML()
        self.results = w.HTML()
        # HTML, empty until a run: an empty Image shows a broken-image icon. The chart is
        # an inline SVG drawn in the theme's text colour (crisp, and readable when dark).
        self.plot = w.HTML()
        self.table: pd.DataFrame | None = None  # the last run's side-by-side results
        self.estimate_runs = 0
        self._idle = threading.Event()
        # The estimate is redrawn from the kernel's thread (a control moved) and from the
        # sweep's thread (a run ended): one at a time, or the older one can land last.
        self._estimating = threading.RLock()
        self._idle.set()
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        # Stable CSS hooks, so that a browser (and the browser test) can find the parts.
        for part, name in (
            (self.estimate, "estimate"), (self.run_button, "run"), (self.stop_button, "stop"),
            (self.results, "results"), (self.plot, "plot"), (self.message, "message"),
            (self.temperature.control, "temperature"), (self.top_p.control, "top-p"),
            (self.progress, "progress"), (self.status, "status"), (self.batch, "batch"),
            (self.temperature_steps, "temperature-steps"), (self.seeds, "seeds"),
        ):
            part.add_class(f"wb-{name}")
        controls = [
            self.template,
            self.system,
            self.variables,
            self.models,
            self.seeds,
            self.temperature.control,
            self.temperature.check,
            self.temperature_steps,
            self.top_p.control,
            self.top_p.check,
            self.top_p_steps,
            self.max_tokens,
            self.repeats,
            self.concurrency,
        ]
        for control in controls:
            control.observe(lambda _: self.update_estimate(), names="value")
        self.widget = w.VBox(
            [
                self.template,
                self.system,
                self.variables,
                self.models,
                w.HBox([self.temperature.check, self.temperature.control, self.temperature_steps]),
                w.HBox([self.top_p.check, self.top_p.control, self.top_p_steps]),
                w.HBox([self.seeds, self.max_tokens]),
                w.HBox([self.repeats, self.concurrency, self.batch]),
                self.estimate,
                w.HBox([self.run_button, self.stop_button, self.progress]),
                self.status,
                self.message,
                self.results,
                self.plot,
            ]
        )
        self.update_estimate()

    def build(self) -> Sweep:
        """The sweep the controls describe (nothing is sent)."""
        if not self.template.value.strip():
            raise ValueError("Write a prompt first")
        if not self.models.value:
            raise ValueError("Pick at least one model")
        grid: dict[str, list[Any]] = {"model": list(self.models.value)}
        for name, knob, steps in (
            ("temperature", self.temperature, self.temperature_steps),
            ("top_p", self.top_p, self.top_p_steps),
        ):
            if knob.on:
                low, high = knob.control.value
                grid[name] = spaced(low, high, steps.value)
        if self.seeds.value.strip():
            seeds = unique(parse_values(self.seeds.value))
            if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
                raise ValueError(f"seeds are whole numbers, not {self.seeds.value!r}")
            grid["seed"] = seeds
        # A knob with one value is the same in every column: keep it out of the labels.
        fixed = {k: v[0] for k, v in grid.items() if len(v) == 1}
        grid = {k: v for k, v in grid.items() if len(v) > 1}
        return Sweep(
            self.template.value,
            grid=grid,
            variables=self._variables(),
            repeats=self.repeats.value,
            system=self.system.value.strip() or None,
            concurrency=self.concurrency.value,
            session=self.session,
            fixed={**fixed, "max_tokens": self.max_tokens.value},
        )

    def _variables(self) -> VarsInput:
        """The panel's test cases, a file path typed in the box, or the box's value lists."""
        if self.cases is not None:
            return self.cases
        typed = self.variables.value.strip()
        if "\n" not in typed and typed.lower().endswith(FILE_SUFFIXES):
            return typed
        return parse_variables(self.variables.value)

    def update_estimate(self) -> None:
        """Re-plan from the controls and show runs, tokens and dollars (or the problem)."""
        with self._estimating:
            self._update_estimate()

    def _update_estimate(self) -> None:
        try:
            sweep = self.build()
            total, to_send = sweep.estimate(), sweep.estimate(remaining=True)
        except Exception as exc:  # noqa: BLE001 - half-typed input is normal here
            # Run goes off before the message shows: the browser applies them in order, so
            # nobody sees the message beside a Run that would only fail with it.
            self._ready(False)
            self.estimate.value = error_html(exc)
            return
        self._ready(True)
        answered = total.runs - to_send.runs
        note = f" ({answered} already in the table, free)" if answered else ""
        # Say which values the sweep will try: a moved slider shows up here at once.
        knobs = "; ".join(
            f"{name} = {', '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in values)}"
            for name, values in sweep.grid.items()
        )
        # What this many cases can tell apart (the estimate's planning note), on its own line.
        detectable = total.planning
        self.estimate.value = html.escape(f"{replace(total, planning=None)}{note}") + (
            f"<br><small>{html.escape(knobs)}</small>" if knobs else ""
        ) + (f"<br><small>{html.escape(detectable)}</small>" if detectable else "")
        self.estimate_runs = total.runs

    def _ready(self, valid: bool) -> None:
        """Run is enabled only when the controls describe a sweep and none is running
        (Stop is enabled exactly while one runs)."""
        if self.stop_button.disabled:
            self.run_button.disabled = not valid
            self.run_button.tooltip = "" if valid else "fix the message above first"

    def run(self) -> None:
        """Start the sweep in the background (the Run button)."""
        if self.sweep is not None and self.sweep.running:
            return
        self.message.value = ""
        try:
            sweep = self.build()
        except Exception as exc:  # noqa: BLE001 - a panel shows every failure as a message
            self._show_error(exc)
            return
        self.sweep = sweep
        self.progress.max, self.progress.value = max(len(sweep), 1), 0
        # The last sweep's table and chart would read as this one's until it ends.
        self.results.value = self.plot.value = self.status.value = ""
        self.table = None
        # Before start(): a quick sweep may be over (and the buttons reset) before it returns.
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._idle.clear()
        try:
            mode = "batch" if self.batch.value else "live"
            sweep.start(mode=mode, on_progress=self._show_progress, on_done=self._finished)
        except Exception as exc:  # noqa: BLE001 - e.g. the budget refusal, as a message
            self.run_button.disabled, self.stop_button.disabled = False, True
            self._idle.set()
            self._show_error(exc)

    def stop(self) -> None:
        """Cancel the calls in flight (the Stop button); finished rows stay."""
        if self.sweep is not None:
            self.sweep.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a run and its results display have finished (for scripts, tests)."""
        return self._idle.wait(timeout)

    def _show_progress(self, progress: SweepProgress) -> None:
        self.progress.value = progress.done
        self.status.value = html.escape(progress.summary())

    def _finished(self, sweep: Sweep) -> None:
        # Called from the sweep's thread; widget values may be set from any thread.
        try:
            self._show_progress(sweep.progress)
            try:
                sweep.wait(0)  # raises what made the run fail
            except Exception as exc:  # noqa: BLE001 - shown, and the rows so far still are
                self._show_error(exc)

            shown = SweepDisplay(sweep, resume="press Run again")  # as a %%chat sweep's
            df, self.table = shown.df, shown.table
            self.results.value = _FIT_WIDTH + shown.html()
            self.plot.value = "" if df.empty else token_usage_svg(df, list(sweep.grid))
        except Exception as exc:  # noqa: BLE001 - shown in the panel
            self._show_error(exc)
        finally:
            self.stop_button.disabled = True
            self.update_estimate()  # what is now in the table costs nothing; enables Run
            self._idle.set()
