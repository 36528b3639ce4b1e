"""What the notebook panels share: their widths and labels, a knob control with an on/off
box, the models they offer, and the one-line messages they show for notes and errors.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from workbench.api.local import CHAT_MODEL_ALIAS
from workbench.api.providers import LOCAL, known_providers
from workbench.calls.session import Session, one_line
from workbench.core.errors import WorkbenchError
from workbench.core.knobs import KNOBS
from workbench.sweeps.grid import parse_values, unique

__all__ = ["WIDE", "LABELLED", "KnobControl", "Panel", "api_range", "available_models",
           "parse_variables", "note_html", "error_html"]

# The full width less the widgets' own margins: 100% stuck out 2 px past the output and
# cut off the boxes' right borders.
WIDE = {"width": "calc(100% - 2 * var(--jp-widgets-margin))"}
# Model lists mix in models that cannot chat (OpenAI's lists audio, image and moderation).
_NOT_CHAT = re.compile(r"embed|whisper|tts|dall-e|moderation|transcribe", re.IGNORECASE)


def api_range(name: str, **ui: Any) -> dict[str, Any]:
    """A control's ``min``/``max`` from the API's range in the knob table (the one
    ``wb.chat`` and ``%%chat`` check), where it has one; ``ui`` gives what it lacks."""
    knob = KNOBS[name]
    bounds = {"min": knob.low, "max": knob.high}
    return {**ui, **{k: v for k, v in bounds.items() if v is not None}}


def available_models(session: Session) -> list[str]:
    """Chat models to offer: the default provider's plain, named providers' as
    ``name:model``. A provider that cannot be listed is left out (it may be offline)."""
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


class KnobControl:
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


LABELLED: dict[str, Any] = {"style": {"description_width": "80px"}}


def note_html(text: str) -> str:
    return f'<div style="color: var(--jp-warn-color0)">⚠ {html.escape(text)}</div>'


def error_html(exc: BaseException) -> str:
    text = html.escape(one_line(exc))
    # The theme's error colour: a fixed red has 2.6:1 contrast on the dark theme.
    return f'<span style="color: var(--jp-error-color1)">⚠ {text}</span>'


class Panel:
    """Shows as its ``widget``; failures go to its ``message`` line."""

    widget: Any
    message: Any
    session: Session

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # All that shows where the widget cannot (a saved notebook opened again: Lab
        # restores no widget by default, GitHub never). ipywidgets' own text is the widget
        # tree's repr, "VBox(children=(Textarea(value=...".
        bundle["text/plain"] = f"{type(self).__name__} (a widget: run the cell to use it)"
        return bundle

    def _show_error(self, exc: BaseException) -> None:
        self.message.value = error_html(exc)

    def _model_options(self, models: Sequence[str] | None) -> list[str]:
        """The models to offer: as given, else the providers' lists; a provider that
        cannot be asked leaves the list empty and says why in the message line."""
        try:
            return list(models) if models is not None else available_models(self.session)
        except WorkbenchError as exc:
            self._show_error(exc)
            return []
