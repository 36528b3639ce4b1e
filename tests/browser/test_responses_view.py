"""A Responses API answer in a real JupyterLab, light and dark (issue 23): its reasoning
summary folded above the answer (closed until clicked, theme-coloured text) and the line
saying a seed was not sent. Screenshots: ``test-artifacts/responses-<theme>.png``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .notebook import Lab, RunCells, contrast, run_cells

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(600)]

# The local model writes no reasoning summary: the cell shows a row that has one, as the
# magic would after a reasoning model's answer through the Responses API.
CELLS = [
    "%load_ext workbench\n"
    "from workbench.calls.results import ChatResponse\n"
    "from workbench.core.record import RunRecord\n"
    "from workbench.notebook.cells import ChatOutcome\n"
    "from workbench.notebook.display import ChatDisplay",
    "record = RunRecord(kind='chat', provider='openai', model='o3-mini', api='responses',\n"
    "    seed=3, output='Paris.', finish_reason='stop', prompt_tokens=12,\n"
    "    completion_tokens=90, reasoning_tokens=64, total_tokens=102, cost_usd=0.0004,\n"
    "    reasoning_summary='The question asks for a capital.\\nFrance: its capital is Paris.')\n"
    "ChatDisplay(ChatOutcome([ChatResponse(record=record)]))",
]


@pytest.fixture(scope="module")
def shown(lab: Lab, chromium: Any, theme: str) -> Iterator[RunCells]:
    with run_cells(lab, chromium, CELLS, "responses", theme) as run:
        assert run.errors() == []
        yield run


def test_the_summary_is_folded_and_readable(shown: RunCells) -> None:
    output = shown.output(1)
    folded = output.locator("details")
    assert folded.count() == 1 and folded.get_attribute("open") is None
    assert "Reasoning summary" in output.inner_text()
    assert "seed not sent" in output.inner_text()
    folded.locator("summary").click()
    text = folded.locator("div")
    text.wait_for(state="visible")
    assert "its capital is Paris" in text.inner_text()
    assert contrast(text) >= 4.5
    shown.screenshot(1, "responses")
