"""Run notebook cells in a real JupyterLab page and look at what a person sees.

One Lab serves every browser test (a Lab start is ~10 s); each call of
:func:`run_cells` writes a fresh notebook, sets the theme, creates its kernel session
(see lab.py for why first), opens the page, runs the cells in order with Shift+Enter and
waits until every cell has finished (or one failed: :meth:`RunCells.errors`).
:meth:`RunCells.screenshot` saves
``test-artifacts/<view>-<theme>.png``; :func:`contrast` measures text against its
background from computed styles (WCAG 2 formula).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat

from .lab import start_kernel_session

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
_RUN_TIMEOUT_MS = 400_000  # a sweep and a SweepPanel run on the local model
# The notebook on show: a Lab may keep other notebooks open in hidden tabs.
_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
_CELLS = _PANEL + " .jp-CodeCell"
# Errors and tracebacks: Lab renders both with this MIME type.
_ERRORS = ' .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


@dataclass
class Lab:
    base: str
    root: Path
    store: Path


def set_theme(lab: Lab, theme: str) -> None:
    """Set Lab's theme through its settings API (kept in the test Lab's own settings
    directory, never the user's): the page opened next starts in that theme. Cells are
    all rendered (no windowing), so an output scrolled out of view is still there."""
    settings = {
        "@jupyterlab/apputils-extension:themes": {"theme": THEMES[theme]},
        "@jupyterlab/notebook-extension:tracker": {
            "windowingMode": "none", "autoStartDefaultKernel": True,
        },
    }
    with httpx.Client(base_url=lab.base, timeout=30) as client:
        client.get("/lab")
        for plugin, values in settings.items():
            response = client.put(
                f"/lab/api/settings/{plugin}",
                json={"raw": json.dumps(values)},
                headers={"X-XSRFToken": client.cookies.get("_xsrf", "")},
            )
            response.raise_for_status()


@dataclass
class RunCells:
    page: Any  # playwright's Page
    theme: str

    def cell(self, index: int) -> Any:
        return self.page.locator(_CELLS).nth(index)

    def output(self, index: int) -> Any:
        self.cell(index).scroll_into_view_if_needed()
        return self.cell(index).locator(".jp-OutputArea")

    def errors(self) -> list[str]:
        """The text of every error (or stderr) output on the page, in cell order."""
        return [str(t) for t in self.page.locator(_CELLS + _ERRORS).all_inner_texts()]

    def screenshot(self, index: int, view: str) -> Path:
        """The cell (input and output) as ``test-artifacts/<view>-<theme>.png``."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{view}-{self.theme}.png"
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        # A cell taller than the window would be cut off under Lab's status bar: make the
        # window tall enough for the whole cell, then put it back.
        size = self.page.viewport_size
        height = int(cell.bounding_box()["height"]) + 200
        if height > size["height"]:
            self.page.set_viewport_size({"width": size["width"], "height": height})
            cell.scroll_into_view_if_needed()
        try:
            cell.screenshot(path=str(path))
        finally:
            self.page.set_viewport_size(size)
        return path


@contextmanager
def run_cells(
    lab: Lab, browser: Any, cells: list[str], name: str, theme: str
) -> Iterator[RunCells]:
    """Open a notebook of ``cells`` in ``theme`` ("light" or "dark"), run every cell and
    yield the page once all have finished."""
    notebook = f"{name}-{theme}.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, lab.root / notebook)
    set_theme(lab, theme)
    start_kernel_session(lab.base, notebook)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab.base}/lab/tree/{notebook}?reset")  # ?reset: no tabs of earlier pages
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
        page.wait_for_function(
            "(dark) => document.body.dataset.jpThemeLight === (dark ? 'false' : 'true')",
            arg=theme == "dark", timeout=30_000,
        )
        # A Shift+Enter pressed while the page is still connecting to the kernel can be
        # lost with the cell left "[ ]" and never run (seen under load: the run then
        # waited until pytest's timeout). Keys go in once the page shows the kernel idle.
        page.wait_for_selector(_PANEL + ' .jp-Notebook-ExecutionIndicator[data-status="idle"]',
                               timeout=120_000)
        try:
            _run_all(page, len(cells))
        finally:  # the whole page, to see what went wrong when a wait times out
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"page-{name}-{theme}.png"))
        yield RunCells(page, theme)
    finally:
        page.close()


def _run_all(page: Any, count: int) -> None:
    first = page.locator(_CELLS).first.locator(".cm-content")
    # A fresh Lab may drop the first key press (NOTES.md): press until cell 1 starts.
    for _ in range(3):
        first.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                "(cells) => { const p = document.querySelector(cells + ' .jp-InputPrompt');"
                " return p && /\\[(\\*|\\d+)\\]/.test(p.innerText); }",
                arg=_CELLS, timeout=20_000,
            )
            break
        except Exception:  # noqa: BLE001 - retried, then failed below
            continue
    else:
        raise AssertionError("the first cell never started (see test-artifacts/page-*.png)")
    if count > 1:  # from the second cell on, wherever the retries left the cursor
        page.locator(_CELLS).nth(1).locator(".cm-content").click()
    for _ in range(count - 1):  # Shift+Enter runs a cell and moves on: queue the rest
        page.keyboard.press("Shift+Enter")
    # Done when every cell has run, or when a cell failed and Lab dropped the cells queued
    # after it (none is left running or queued: "[*]").
    page.wait_for_function(
        "([cells, errors, n]) => {"
        " const ps = [...document.querySelectorAll(cells + ' .jp-InputPrompt')].slice(0, n);"
        " if (ps.length < n || ps.some(p => p.innerText.includes('*'))) return false;"
        " return ps.every(p => /\\[\\d+\\]/.test(p.innerText))"
        "   || document.querySelector(cells + errors) !== null; }",
        arg=[_CELLS, _ERRORS, count], timeout=_RUN_TIMEOUT_MS,
    )


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


def _luminance(rgb: list[float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(locator: Any) -> float:
    """WCAG contrast ratio of the element's text colour against the first opaque
    background behind it, from computed styles."""
    colour, background = locator.evaluate(_COLOURS_JS)
    lighter, darker = sorted((_luminance(colour), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
