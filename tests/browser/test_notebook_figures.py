"""Every view of the shipped notebooks in both themes, and every figure following the
theme (issue 22, item 5).

Each notebook of ``notebooks/`` is opened in a real JupyterLab (the shared Lab and
Chromium of conftest.py) in the light theme, with the outputs it is shipped with: what a
person sees on opening it, as an untrusted notebook (Lab then strips ``<style>`` from
HTML outputs, the hard case for a figure). With ``WORKBENCH_RUN_NOTEBOOKS=1`` each is run
in the browser instead (about 4 minutes more: `make test` already executes them with
nbval). The page is then switched to the dark theme through Lab's own Settings menu, so
the same outputs are seen in both. Every output is saved as
``test-artifacts/notebook-<name>-<cell>-<theme>.png``; every image output as
``figure-<name>-<cell>-<k>-<theme>.png``, checked by its pixels: the figure's margin
(where nothing is drawn) is the page's background, light in the light theme and dark in
the dark one, and its text stands out from that background.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from PIL import Image

from .notebook import ARTIFACTS, REPO, Lab, RunCells, run_cells, set_theme

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(900)]

NOTEBOOKS = REPO / "notebooks"
EVERY = sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))
# The notebooks with a figure (wb.plots, board.plot(), result.figure(), an %%embed heatmap).
DRAWING = sorted(
    path.stem for path in NOTEBOOKS.glob("*.ipynb")
    if any(word in path.read_text()
           for word in ("wb.plots.", ".plot()", ".figure()", "%%embed"))
)


def code_cells(name: str) -> list[str]:
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


@contextmanager
def shown_notebook(lab: Lab, browser: Any, name: str) -> Iterator[RunCells]:
    """The notebook in the light theme: as shipped, or run (WORKBENCH_RUN_NOTEBOOKS)."""
    if os.environ.get("WORKBENCH_RUN_NOTEBOOKS"):
        with run_cells(lab, browser, code_cells(name), f"notebook-{name}", "light") as run:
            assert run.errors() == [], run.errors()
            yield run
        return
    copy = f"shipped-{name}.ipynb"
    shutil.copy(NOTEBOOKS / f"{name}.ipynb", lab.root / copy)
    set_theme(lab, "light")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab.base}/lab/tree/{copy}?reset")
        page.wait_for_selector(".jp-Notebook .jp-CodeCell .cm-content", timeout=60_000)
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'",
                               timeout=30_000)
        yield RunCells(page, "light")
    finally:
        page.close()


def switch_theme(page: Any, theme: str) -> None:
    """Pick the theme in Lab's Settings menu, as a person would, and wait until the page
    has it (Lab reloads no output: the same pixels, restyled)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    label = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}[theme]
    page.locator(".lm-Menu-itemLabel", has_text=label).first.click()
    page.wait_for_function(
        "(light) => document.body.dataset.jpThemeLight === light",
        arg="true" if theme == "light" else "false", timeout=30_000,
    )
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)  # the theme's stylesheet applies after the attribute


def _luminance(rgb: Any) -> Any:
    c = np.asarray(rgb, dtype="float64") / 255
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return c @ np.array([0.2126, 0.7152, 0.0722])


def check_figure(png: bytes, theme: str, where: str) -> None:
    """The figure's margin is the theme's background and its text reads on it."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    frame = np.concatenate([rgb[:3].reshape(-1, 3), rgb[-3:].reshape(-1, 3),
                            rgb[:, :3].reshape(-1, 3), rgb[:, -3:].reshape(-1, 3)])
    background = float(np.median(_luminance(frame)))
    if theme == "light":
        assert background > 0.8, f"{where}: a dark figure in the light theme ({background:.2f})"
    else:
        assert background < 0.05, f"{where}: a bright box in the dark theme ({background:.2f})"
    lum = _luminance(rgb.reshape(-1, 3))
    contrast = (np.maximum(lum, background) + 0.05) / (np.minimum(lum, background) + 0.05)
    assert (contrast >= 3).sum() > 200, f"{where}: no text that reads on the background"


def shoot_outputs(run: RunCells, name: str, theme: str) -> int:
    """Screenshot every cell with an output; check every image output. Returns how many
    figures were checked."""
    figures = 0
    cells = run.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")
    for index in range(cells.count()):
        outputs = run.output(index).locator(".jp-OutputArea-output")
        if outputs.count() == 0:
            continue
        run.screenshot(index, f"notebook-{name}-{index:02d}")
        images = run.output(index).locator(".jp-OutputArea-output img")
        for k in range(images.count()):
            image = images.nth(k)
            image.scroll_into_view_if_needed()
            where = f"{name} cell {index} image {k} ({theme})"
            path = ARTIFACTS / f"figure-{name}-{index:02d}-{k}-{theme}.png"
            check_figure(image.screenshot(path=str(path)), theme, where)
            figures += 1
    return figures


@pytest.mark.parametrize("name", EVERY)
def test_every_view_of_the_notebook_in_both_themes(lab: Lab, chromium: Any, name: str) -> None:
    with shown_notebook(lab, chromium, name) as run:
        run.page.wait_for_timeout(1000)  # images decode and outputs settle
        light = shoot_outputs(run, name, "light")
        switch_theme(run.page, "dark")
        dark = shoot_outputs(RunCells(run.page, "dark"), name, "dark")
    assert light == dark
    assert (light > 0) == (name in DRAWING), f"{light} figures in {name}"


def test_the_notebooks_with_figures_are_all_checked() -> None:
    # A notebook that starts drawing is checked without editing this file.
    assert {"decide", "embeddings", "evaluation", "quickstart", "sweeps"} <= set(DRAWING)
