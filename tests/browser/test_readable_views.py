"""What a person reads after a run, in a real JupyterLab, light and dark (issue 13).

One Lab for the module; for each theme one notebook runs a ``%%chat`` sweep on the local
model, ``wb.compare`` of it, an estimate (a line with three dollar amounts), a SweepPanel
after a run and a SweepPanel showing an error. From the DOM: no MathJax in a cost line,
the sweep table scrolls sideways inside the output, compare cells are left-aligned, error
text has a contrast of 4.5:1 or more. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .lab import CHROMIUM, CHROMIUM_ARGS, running_lab, start_kernel_session
from .notebook import THEMES, contrast, set_theme_at

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
_CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell"

CELLS = [
    "%load_ext workbench\nimport workbench as wb\nfrom decimal import Decimal\n"
    "from workbench.estimate import Estimate",
    "%%chat --temperature 0,1 --seed 1:2 --max-tokens 24 --experiment views\n"
    "Describe a harbour at dusk in one sentence.",
    "wb.compare(wb.runs(experiment='views'), by='temperature')",
    "Estimate(3, 600, 120, 300, Decimal('0.00042'), Decimal('0.0012'), Decimal('0.0031'))",
    "panel = wb.SweepPanel('Name one thing found in {{place}}.', vars={'place': ['a kitchen',"
    " 'a forest']})\npanel.max_tokens.value = 12\npanel.temperature_steps.value = 2\n"
    "panel.run(); panel.wait(240)\npanel",
    "broken = wb.SweepPanel('')\nbroken.run(); broken.wait(30)\nbroken.message",
]


@pytest.fixture(scope="module")
def views_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    root = tmp_path_factory.mktemp("views")
    env = {
        **os.environ,
        "WORKBENCH_STORE": str(root / "experiments.db"),
        "WORKBENCH_THREADS": os.environ.get("WORKBENCH_THREADS", "1"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),  # the theme: not in ~/.jupyter
        "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"),
    }
    env.pop("MPLBACKEND", None)
    with running_lab(root, env, root / "lab.log") as base:
        yield base, root


def _run_all(page: Any, count: int) -> None:
    first = page.locator(_CELLS).first.locator(".cm-content")
    for _ in range(3):  # a fresh Lab may drop the first key press (NOTES.md)
        first.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                "(cells) => { const p = document.querySelector(cells + ' .jp-InputPrompt');"
                " return p && /\\[(\\*|\\d+)\\]/.test(p.innerText); }",
                arg=_CELLS, timeout=20_000,
            )
            break
        except Exception:  # noqa: BLE001 - retried, then the wait below fails
            continue
    for _ in range(count - 1):
        page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        "([cells, n]) => { const ps = [...document.querySelectorAll(cells + ' .jp-InputPrompt')];"
        " if (document.querySelector(cells + ' .jp-OutputArea-output[data-mime-type="
        "\"application/vnd.jupyter.stderr\"]')) return true;"  # a failed cell stops the run
        " return ps.length >= n && ps.slice(0, n).every(p => /\\[\\d+\\]/.test(p.innerText)); }",
        arg=[_CELLS, count], timeout=400_000,
    )
    failed = page.locator(_CELLS + ' .jp-OutputArea-output[data-mime-type='
                          '"application/vnd.jupyter.stderr"]')
    assert failed.count() == 0, failed.first.inner_text()


_COLOURS_JS = """
(node) => {
  const rgba = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const colour = rgba(getComputedStyle(node).color);
  let back = node;
  while (back) {
    const value = rgba(getComputedStyle(back).backgroundColor);
    if (value.length === 3 || (value.length === 4 && value[3] > 0.5)) return [colour, value];
    back = back.parentElement;
  }
  return [colour, [255, 255, 255]];
}
"""


@pytest.mark.timeout(900)
@pytest.mark.parametrize("theme", list(THEMES))
def test_results_read_well_in_both_themes(
    views_lab: tuple[str, Path], theme: str
) -> None:
    from playwright.sync_api import sync_playwright

    base, root = views_lab
    name = f"views-{theme}.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / name)
    set_theme_at(base, theme)
    start_kernel_session(base, name)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{base}/lab/tree/{name}?reset")
            page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
            page.wait_for_function(
                "(dark) => document.body.dataset.jpThemeLight === (dark ? 'false' : 'true')",
                arg=theme == "dark", timeout=30_000,
            )
            try:
                _run_all(page, len(CELLS))
            finally:
                page.screenshot(path=str(ARTIFACTS / f"views-page-{theme}.png"))
            page.wait_for_selector(".wb-results table", timeout=60_000)
            page.wait_for_timeout(1500)  # MathJax typesets after the outputs land

            def cell(index: int) -> Any:
                found = page.locator(_CELLS).nth(index)
                found.scroll_into_view_if_needed()
                return found

            def shoot(index: int, view: str) -> None:
                cell(index).screenshot(path=str(ARTIFACTS / f"{view}-{theme}.png"))

            # A sweep table: scrolls sideways inside the output, prompt column sticky.
            sweep = cell(1).locator(".jp-OutputArea")
            scroller = sweep.locator(".wb-sweep-scroll")
            assert scroller.count() == 1
            assert scroller.evaluate("n => getComputedStyle(n).overflowX") == "auto"
            assert sweep.locator("tbody th").first.evaluate(
                "n => getComputedStyle(n).position") == "sticky"
            assert "tok" in sweep.locator(".wb-meta").first.inner_text()
            shoot(1, "sweep-table")

            # The compare view: left-aligned, theme colours.
            compare = cell(2).locator("table.wb-compare")
            texts = compare.locator("td .wb-text")
            assert texts.count() >= 2
            for i in range(texts.count()):
                assert texts.nth(i).evaluate("n => getComputedStyle(n).textAlign") in (
                    "left", "start")
            assert compare.locator("td").first.evaluate(
                "n => getComputedStyle(n.closest('td')).textAlign") == "left"
            assert contrast(texts.first) >= 4.5
            shoot(2, "compare")

            # Cost lines: never typeset as maths.
            for index in (1, 3, 4):
                output = cell(index).locator(".jp-OutputArea")
                assert "$" in output.inner_text()
                assert output.locator("mjx-container, .MathJax").count() == 0, index
            assert "$0.0012 expected ($0.00042 to $0.0031)" in cell(3).inner_text()
            shoot(3, "cost-line")

            # The SweepPanel after a run: the magic's table, a chart, no broken image.
            panel = cell(4)
            assert panel.locator("img").count() == 0
            assert panel.locator(".wb-plot svg").count() == 1
            assert panel.locator(".wb-results .wb-sweep-scroll").count() == 1
            assert "stopped: stopped" not in panel.inner_text()
            shoot(4, "sweep-panel")

            # An error line: readable on the theme's background.
            error = cell(5).locator(".jp-OutputArea span").filter(has_text="Write a prompt")
            assert error.count() == 1
            assert contrast(error.first) >= 4.5, theme
            shoot(5, "panel-error")
        finally:
            browser.close()
