"""Notebook panels (ipywidgets): ``SweepPanel`` to plan, estimate, run and compare a sweep,
and ``Playground`` to turn every knob of one prompt.

The panels only read their controls and call the engine (:mod:`workbench.sweeps`, the
session); errors show inside the panel as one line, never as a traceback. Results are
HTML and PNG values of widgets, so they also update from the sweep's thread.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .errors import WorkbenchError
from .grid import parse_values, spaced, unique
from .knobs import KNOBS
from .money import NO_MATHS_CLASS, money_html
from .scoring.datasets import FILE_SUFFIXES, Dataset, as_dataset
from .session import Session, get_session, one_line
from .sidebyside import token_usage_svg
from .sweeps import Sweep

if TYPE_CHECKING:
    import pandas as pd

    from .progress import SweepProgress
    from .sweeps import VarsInput

__all__ = ["SweepPanel", "Playground", "available_models", "parse_variables"]

# The full width less the widgets' own margins: 100% stuck out 2 px past the output and
# cut off the boxes' right borders.
_WIDE = {"width": "calc(100% - 2 * var(--jp-widgets-margin))"}
# Model lists mix in models that cannot chat (OpenAI's lists audio, image and moderation).
_NOT_CHAT = re.compile(r"embed|whisper|tts|dall-e|moderation|transcribe", re.IGNORECASE)


def _api_range(name: str, **ui: Any) -> dict[str, Any]:
    """A control's ``min``/``max`` from the API's range in the knob table (the one
    ``wb.chat`` and ``%%chat`` check), where it has one; ``ui`` gives what it lacks."""
    knob = KNOBS[name]
    bounds = {"min": knob.low, "max": knob.high}
    return {**ui, **{k: v for k, v in bounds.items() if v is not None}}


def available_models(session: Session) -> list[str]:
    """Chat models to offer: the default provider's plain, named providers' as
    ``name:model``. A provider that cannot be listed is left out (it may be offline)."""
    from .local import CHAT_MODEL_ALIAS
    from .providers import LOCAL, known_providers

    default, _ = session.resolve(None, None)
    providers = [default] + [
        p for name, p in known_providers().items() if name not in (LOCAL, "openai", default.name)
    ]
    names: list[str] = []
    for provider in providers:
        if provider.local:
            listed = [CHAT_MODEL_ALIAS]  # listing would start both local servers
        else:
            try:
                listed = list(session.models(provider))
            except WorkbenchError:
                listed = [provider.default_chat_model() or ""]
        prefix = "" if provider is default else f"{provider.name}:"
        names += [prefix + m for m in listed if m and not _NOT_CHAT.search(m)]
    return unique(names)


def parse_variables(text: str) -> dict[str, list[Any]]:
    """Template variables from lines of ``name = value, value`` (values as for knobs)."""
    variables: dict[str, list[Any]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, equals, values = line.partition("=")
        if not equals or not name.strip().isidentifier():
            raise ValueError(f"variables, line {number}: write it as `name = value, value`")
        variables[name.strip()] = parse_values(values)
    return variables


class _Knob:
    """A control with a check box: unchecked, the knob is not sent at all."""

    def __init__(self, name: str, control: Any, *, on: bool) -> None:
        self.control = control
        self.check = w.Checkbox(value=on, description=name, indent=False, layout={"width": "110px"})
        control.disabled = not on
        self.check.observe(
            lambda change: setattr(control, "disabled", not change["new"]), names="value"
        )

    @property
    def on(self) -> bool:
        return bool(self.check.value)


_LABELLED: dict[str, Any] = {"style": {"description_width": "80px"}}


def _note_html(text: str) -> str:
    return f'<div style="color: var(--jp-warn-color0)">⚠ {html.escape(text)}</div>'


def _error_html(exc: BaseException) -> str:
    text = html.escape(one_line(exc))
    # The theme's error colour: a fixed red has 2.6:1 contrast on the dark theme.
    return f'<span style="color: var(--jp-error-color1)">⚠ {text}</span>'


class _Panel:
    """Shows as its ``widget``; failures go to its ``message`` line."""

    widget: Any
    message: Any
    session: Session

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _show_error(self, exc: BaseException) -> None:
        self.message.value = _error_html(exc)

    def _model_options(self, models: Sequence[str] | None) -> list[str]:
        """The models to offer: as given, else the providers' lists; a provider that
        cannot be asked leaves the list empty and says why in the message line."""
        try:
            return list(models) if models is not None else available_models(self.session)
        except WorkbenchError as exc:
            self._show_error(exc)
            return []


class SweepPanel(_Panel):
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
        text = {"layout": _WIDE, "continuous_update": False}
        # A label beside each box: a placeholder alone vanishes once something is typed.
        self.template = w.Textarea(
            value=template or "", placeholder="Prompt; {{name}} for a variable", rows=4,
            description="prompt", **text, **_LABELLED,
        )
        self.system = w.Textarea(
            placeholder="System prompt (optional)", rows=2, description="system", **text,
            **_LABELLED,
        )
        self.variables = w.Textarea(
            placeholder="name = value, value (one per line), or a .csv/.jsonl/.parquet path",
            rows=2, description="variables", **text, **_LABELLED,
        )
        if self.cases is not None:
            self.variables.value = repr(self.cases)
            self.variables.disabled = True
        elif isinstance(vars, Mapping):
            self.variables.value = "\n".join(
                f"{name} = {', '.join(map(str, values))}" for name, values in vars.items()
            )
        self.models = w.SelectMultiple(
            options=options, value=options[:1], rows=4, description="models", **_LABELLED
        )
        self.temperature = _Knob(
            "temperature",
            w.FloatRangeSlider(value=(0.0, 1.0), step=0.05, **_api_range("temperature")),
            on=True,
        )
        self.temperature_steps = w.BoundedIntText(value=3, min=1, max=21, description="steps")
        self.top_p = _Knob(
            "top_p", w.FloatRangeSlider(value=(1.0, 1.0), step=0.05, **_api_range("top_p")),
            on=False,
        )
        self.top_p_steps = w.BoundedIntText(value=1, min=1, max=21, description="steps")
        self.seeds = w.Text(placeholder="e.g. 1,2,3 or 1:10", description="seeds", **text)
        self.max_tokens = w.BoundedIntText(
            value=128, description="max_tokens", **_api_range("max_tokens", max=1_000_000)
        )
        self.repeats = w.BoundedIntText(value=1, min=1, max=1000, description="repeats")
        self.concurrency = w.BoundedIntText(value=4, min=1, max=256, description="concurrency")
        # The Batch API (workbench.batch): half price on OpenAI, answers within 24 hours.
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
        self._idle.set()
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        # Stable CSS hooks, so that a browser (and the browser test) can find the parts.
        for part, name in (
            (self.estimate, "estimate"), (self.run_button, "run"), (self.stop_button, "stop"),
            (self.results, "results"), (self.plot, "plot"), (self.message, "message"),
            (self.temperature.control, "temperature"), (self.top_p.control, "top-p"),
            (self.progress, "progress"), (self.status, "status"), (self.batch, "batch"),
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
        try:
            sweep = self.build()
            total, to_send = sweep.estimate(), sweep.estimate(remaining=True)
        except Exception as exc:  # noqa: BLE001 - half-typed input is normal here
            self.estimate.value = _error_html(exc)
            return
        answered = total.runs - to_send.runs
        note = f" ({answered} already in the table, free)" if answered else ""
        # Say which values the sweep will try: a moved slider shows up here at once.
        knobs = "; ".join(
            f"{name} = {', '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in values)}"
            for name, values in sweep.grid.items()
        )
        from .decide.planning import planned_detectable

        detectable = planned_detectable(sweep)  # what this many cases can tell apart
        self.estimate.value = html.escape(f"{total}{note}") + (
            f"<br><small>{html.escape(knobs)}</small>" if knobs else ""
        ) + (f"<br><small>{html.escape(str(detectable))}</small>" if detectable else "")
        self.estimate_runs = total.runs

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
            from .cellsweep import SweepDisplay

            shown = SweepDisplay(sweep)  # the same table as a %%chat sweep's
            df, self.table = shown.df, shown.table
            self.results.value = shown.html()
            if not df.empty:
                self.plot.value = token_usage_svg(df, list(sweep.grid))
            self.update_estimate()  # what is now in the table costs nothing
        except Exception as exc:  # noqa: BLE001 - shown in the panel
            self._show_error(exc)
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True
            self._idle.set()


class Playground(_Panel):
    """One prompt and a slider for every knob; Run shows the answer and its footer."""

    def __init__(
        self,
        prompt: str = "",
        *,
        models: Sequence[str] | None = None,
        session: Session | None = None,
    ) -> None:
        self.session = session or get_session()
        self.message = w.HTML()
        options = self._model_options(models)
        self.prompt = w.Textarea(
            value=prompt, placeholder="Prompt", rows=4, layout=_WIDE, description="prompt",
            **_LABELLED,
        )
        self.system = w.Textarea(
            placeholder="System prompt (optional)", rows=2, layout=_WIDE, description="system",
            **_LABELLED,
        )
        self.model = w.Dropdown(
            options=options, value=options[0] if options else None, description="model"
        )
        self.knobs = {
            "temperature": _Knob(
                "temperature", w.FloatSlider(0.7, step=0.05, **_api_range("temperature")), on=True
            ),
            "top_p": _Knob(
                "top_p", w.FloatSlider(1.0, step=0.01, **_api_range("top_p")), on=False
            ),
            "max_tokens": _Knob(
                "max_tokens", w.IntSlider(256, **_api_range("max_tokens", max=4096)), on=True
            ),
            # A typed seed beyond the API's range is refused by the chat call, as one line.
            "seed": _Knob("seed", w.IntText(1), on=False),
            "presence_penalty": _Knob(
                "presence",
                w.FloatSlider(0.0, step=0.1, **_api_range("presence_penalty")),
                on=False,
            ),
            "frequency_penalty": _Knob(
                "frequency",
                w.FloatSlider(0.0, step=0.1, **_api_range("frequency_penalty")),
                on=False,
            ),
        }
        self.stream = w.Checkbox(value=True, description="stream", indent=False)
        self.fresh = w.Checkbox(value=False, description="fresh (skip the table)", indent=False)
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        # The answer as text in the theme's colours: a disabled text box looked greyed out.
        # Width auto: stretched to the panel; 100% plus the widgets' margin stuck out 2 px,
        # cutting off the box's right border.
        self.answer = w.HTML(layout={"width": "auto"})
        self.text = ""  # the answer so far, as plain text
        self.footer = w.HTML()
        self.response: Any = None
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        for part, name in ((self.answer, "answer"), (self.footer, "footer"),
                           (self.run_button, "run"), (self.stop_button, "stop"),
                           (self.message, "message")):
            part.add_class(f"wb-{name}")
        self.widget = w.VBox(
            [
                self.prompt,
                self.system,
                self.model,
                *[w.HBox([knob.check, knob.control]) for knob in self.knobs.values()],
                w.HBox([self.stream, self.fresh, self.run_button, self.stop_button]),
                self.message,
                self.answer,
                self.footer,
            ]
        )

    def params(self) -> dict[str, Any]:
        """The knobs that are switched on, as request parameters."""
        return {name: knob.control.value for name, knob in self.knobs.items() if knob.on}

    def start(self) -> threading.Thread:
        """Run in a thread (the Run button), so that Stop can be pressed meanwhile."""
        self._idle.clear()

        def work() -> None:
            try:
                self.run()
            finally:
                self._idle.set()

        thread = threading.Thread(target=work, daemon=True, name="workbench-playground")
        thread.start()
        return thread

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the answer is shown (for scripts, tests)."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        """Stop a streamed answer (the Stop button): what came so far is kept as a row."""
        self._stop.set()

    def run(self) -> None:
        """Send the prompt (or answer it from the table) and show the answer. Run is
        disabled meanwhile; Stop (streamed answers) ends the call."""
        if not self._busy.acquire(blocking=False):
            return  # already generating
        self._stop.clear()
        stream = bool(self.stream.value)
        self.run_button.disabled, self.stop_button.disabled = True, not stream
        try:
            self._run(stream)
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True
            self._busy.release()

    def _run(self, stream: bool) -> None:
        from .display import footer
        from .finish import finish_note

        self.message.value = self.footer.value = ""
        self._show_text("")
        try:
            if not self.prompt.value.strip():
                raise ValueError("Write a prompt first")
            self.response = self.session.chat(
                self.prompt.value,
                model=self.model.value or None,
                system=self.system.value.strip() or None,
                stream=stream,
                fresh=bool(self.fresh.value),
                on_delta=self._delta if stream else None,
                **self.params(),
            )
        except KeyboardInterrupt:  # Stop: the partial answer is stored as a failed row
            self.message.value = _note_html("stopped; what came so far is kept in the table")
            return
        except Exception as exc:  # noqa: BLE001 - a panel shows every failure as a message
            self._show_error(exc)
            return
        self._show_text(self.response.text)
        response = self.response
        notes = [finish_note(response.finish_reason, response.usage.completion_tokens)]
        if response.refusal:
            notes.append(f"refused: {response.refusal}")
        if response.cache_hit:
            notes.append("answered from the table · tick fresh for a new sample")
        self.message.value = "".join(_note_html(n) for n in notes if n)
        self.footer.value = money_html(footer(response))

    def _show_text(self, text: str) -> None:
        self.text = text
        self.answer.value = (
            '<div class="' + NO_MATHS_CLASS + '" style="white-space: pre-wrap; '
            "color: var(--jp-content-font-color1); background: var(--jp-layout-color0); "
            "border: 1px solid var(--jp-border-color2); border-radius: 2px; padding: .5em .7em; "
            f'min-height: 4em; line-height: 1.45">{html.escape(text)}</div>'
        )

    def _delta(self, text: str) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt  # ends the stream; the session keeps the partial text
        self._show_text(self.text + text)
