"""``wb.Playground`` in a real JupyterLab, light and dark: an undefined ``{{thing}}`` is
refused as one line in the panel, in the theme's error colour, and nothing is sent (as
``%%chat`` refuses it). Screenshot: ``test-artifacts/playground-undefined-<theme>.png``."""

from __future__ import annotations

from typing import Any

import pytest

from .notebook import Lab, contrast, run_cells

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_an_undefined_variable_is_refused_in_the_panel(lab: Lab, chromium: Any,
                                                       theme: str) -> None:
    cell = ("import workbench as wb\n"
            "g = wb.Playground('Tell me about {{thing}}.', models=['smollm2-135m-instruct'])\n"
            "g")
    with run_cells(lab, chromium, [cell], "playground-undefined", theme) as run:
        output = run.output(0)
        output.locator("button.wb-run").click()
        message = output.locator(".wb-message span")
        message.wait_for(timeout=60_000)
        text = message.inner_text()
        assert text.startswith("⚠ Undefined variable thing in the prompt: define thing")
        assert "\n" not in text.strip()
        assert contrast(message) >= 4.5
        answer = output.locator(".wb-answer .widget-html-content")
        assert answer.inner_text().strip() == ""  # nothing was sent, nothing answered
        run.screenshot(0, "playground-undefined")
