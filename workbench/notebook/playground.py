"""``wb.Playground``: one prompt and a slider for every knob; Run shows the answer as it
streams, and its footer (tokens, cost, latency)."""

from __future__ import annotations

import html
import threading
from collections.abc import Sequence
from typing import Any

import ipywidgets as w
from IPython import get_ipython

from workbench.calls.session import Session, get_session
from workbench.core.finish import finish_note
from workbench.core.money import NO_MATHS_CLASS, money_html
from workbench.core.templates import render, variables_of
from workbench.notebook.display import footer
from workbench.notebook.panelparts import LABELLED, WIDE, KnobControl, Panel, api_range, note_html

__all__ = ["Playground"]


def notebook_namespace() -> dict[str, Any]:
    """The running notebook's variables (empty outside IPython): what ``%%chat`` reads."""
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


class Playground(Panel):
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
            value=prompt, placeholder="Prompt", rows=4, layout=WIDE, description="prompt",
            **LABELLED,
        )
        self.system = w.Textarea(
            placeholder="System prompt (optional)", rows=2, layout=WIDE, description="system",
            **LABELLED,
        )
        self.model = w.Dropdown(
            options=options, value=options[0] if options else None, description="model"
        )
        self.knobs = {
            "temperature": KnobControl(
                "temperature", w.FloatSlider(0.7, step=0.05, **api_range("temperature")), on=True
            ),
            "top_p": KnobControl(
                "top_p", w.FloatSlider(1.0, step=0.01, **api_range("top_p")), on=False
            ),
            "max_tokens": KnobControl(
                "max_tokens", w.IntSlider(256, **api_range("max_tokens", max=4096)), on=True
            ),
            # A typed seed beyond the API's range is refused by the chat call, as one line.
            "seed": KnobControl("seed", w.IntText(1), on=False),
            "presence_penalty": KnobControl(
                "presence",
                w.FloatSlider(0.0, step=0.1, **api_range("presence_penalty")),
                on=False,
            ),
            "frequency_penalty": KnobControl(
                "frequency",
                w.FloatSlider(0.0, step=0.1, **api_range("frequency_penalty")),
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
        self.message.value = self.footer.value = ""
        self._show_text("")
        try:
            if not self.prompt.value.strip():
                raise ValueError("Write a prompt first")
            prompt, system, columns = self._rendered()  # an undefined {{name}} sends nothing
            self.response = self.session.chat(
                prompt,
                model=self.model.value or None,
                system=system,
                stream=stream,
                fresh=bool(self.fresh.value),
                on_delta=self._delta if stream else None,
                **columns,
                **self.params(),
            )
        except KeyboardInterrupt:  # Stop: the partial answer is stored as a failed row
            self.message.value = note_html("stopped; what came so far is kept in the table")
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
        self.message.value = "".join(note_html(n) for n in notes if n)
        self.footer.value = money_html(footer(response))

    def _rendered(self) -> tuple[str, str | None, dict[str, Any]]:
        """The prompt and system prompt with their ``{{name}}`` filled from the notebook's
        variables, as ``%%chat`` fills them (and refuses an undefined name, as one line),
        and the template columns the table keeps."""
        namespace = notebook_namespace()
        prompt = render(self.prompt.value, namespace)
        system_template = self.system.value.strip() or None
        system = None if system_template is None else render(
            system_template, namespace, what="system prompt"
        )
        names = sorted(set(variables_of(self.prompt.value) + variables_of(system_template or "")))
        if not names:
            return prompt, system, {}
        variables = {n: namespace[n] for n in names}
        return prompt, system, {"template": self.prompt.value, "variables": variables}

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
