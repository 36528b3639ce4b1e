"""wb.optimize's result in a real JupyterLab, light and dark: the summary with the diff of
the best prompt, and the score-over-spend figure (dark-adapted by core.figures). From the
DOM: the diff marks words, the figure is an image in its output; screenshots go to
``test-artifacts/optimize-<view>-<theme>.png`` to be looked at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from .notebook import Lab, RunCells, run_cells

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(900)]

CELLS = [
    "import workbench as wb",
    "cases = [{'country': c, 'expected': city} for c, city in [('France', 'Paris'),"
    " ('Italy', 'Rome'), ('Japan', 'Tokyo'), ('Peru', 'Lima')]]\n"
    "result = wb.optimize('What is the capital of {{country}}?', system='Answer briefly.',"
    " data=cases, scorers=wb.scorers.contains(), max_candidates=1, minibatch=2,"
    " temperature=0, max_tokens=8, reflection_max_tokens=40, progress=False)\nresult",
    "result.figure()",
]
SUMMARY, FIGURE = 1, 2


@pytest.fixture(scope="module")
def views(lab: Lab, chromium: Any, theme: str) -> Iterator[RunCells]:
    with run_cells(lab, chromium, CELLS, "optimize", theme) as run:
        assert run.errors() == []
        run.page.wait_for_selector(".jp-OutputArea-output img", timeout=120_000)
        yield run


def test_the_summary_and_the_figure_show_in_both_themes(views: RunCells) -> None:
    summary = views.output(SUMMARY)
    counted = re.search(r"optimize: (\d+) (candidates?), best #", summary.inner_text())
    assert counted and (counted[2] == "candidate") == (counted[1] == "1")  # "1 candidate"
    assert "validation" in summary.inner_text()
    image = views.output(FIGURE).locator(".jp-OutputArea-output img")
    assert image.count() == 1 and image.evaluate("n => n.naturalWidth") > 300
    views.screenshot(SUMMARY, "optimize-summary")
    views.screenshot(FIGURE, "optimize-figure")
