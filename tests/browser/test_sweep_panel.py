"""The SweepPanel in a real JupyterLab (light and dark theme), driven by a real Chromium.

Runs the notebook cell that shows ``wb.SweepPanel()``, moves the temperature slider,
checks that the live estimate follows, clicks Run, and waits for the side-by-side
results and the token plot; then Run again and Stop: the last sweep's table and chart are
gone while the new one runs, and what is shown after Stop is the new sweep's; a bad field
turns Run off. Screenshots ``test-artifacts/sweep-panel-readme-<theme>.png`` (the light
one is the README's picture), ``sweep-panel-stopped-<theme>.png`` and
``sweep-panel-error-<theme>.png``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .notebook import Lab, run_cells

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "notebooks" / "sweeps.ipynb"


def _panel_cell() -> str:
    """The shared notebook's panel cell, after its import."""
    source = nbformat.read(SOURCE, as_version=4)
    code = [c for c in source.cells if c.cell_type == "code"]
    panel_cells = [c for c in code if "SweepPanel(" in c.source]
    assert panel_cells, f"{SOURCE.name} has no cell that shows wb.SweepPanel()"
    return "import workbench as wb\n" + panel_cells[0].source


def _run_ids(store_path: Path) -> set[str]:
    from workbench.store import SQLiteStore

    with SQLiteStore(store_path) as store:
        return set(store.runs()["run_id"])


def _type(page: Any, selector: str, text: str) -> None:
    """Type into a panel's text box and commit it (the boxes update on Enter / blur)."""
    box = page.locator(f"{selector} input")
    box.fill(text)
    box.press("Enter")


def _boxes_overlap(page: Any, first: str, second: str) -> float:
    """How many pixels the bottom of ``first`` reaches into ``second`` (<= 0: none)."""
    return float(page.evaluate(
        "([a, b]) => document.querySelector(a).getBoundingClientRect().bottom"
        " - document.querySelector(b).getBoundingClientRect().top",
        [first, second],
    ))


def test_sweep_panel_in_a_real_browser(lab: Lab, chromium: Any, theme: str) -> None:
    before_ids = _run_ids(lab.store)  # the Lab's store is shared with the other tests
    with run_cells(lab, chromium, [_panel_cell()], f"panel-{theme}", theme) as run:
        page = run.page
        estimate = page.locator(".wb-estimate")
        estimate.wait_for(timeout=90_000)
        page.wait_for_function(
            "() => document.querySelector('.wb-estimate').innerText.includes('runs')"
        )
        before = estimate.inner_text()

        # Move the upper temperature handle: the estimate must follow.
        handle = page.locator(".wb-temperature .noUi-handle-upper")
        handle.focus()
        for _ in range(4):
            page.keyboard.press("ArrowLeft")
        page.wait_for_function(
            "(before) => document.querySelector('.wb-estimate').innerText !== before",
            arg=before,
            timeout=30_000,
        )
        # Six temperatures: a table wider than the output, so it scrolls sideways.
        _type(page, ".wb-temperature-steps", "6")
        page.wait_for_function(
            "() => document.querySelector('.wb-estimate').innerText.startsWith('6 runs')",
            timeout=30_000,
        )
        after = estimate.inner_text()
        assert re.search(r"temperature = ", after) and after != before

        page.locator("button.wb-run").click()
        page.wait_for_selector(".wb-results table", timeout=240_000)
        page.wait_for_function(
            "() => { const svg = document.querySelector('.wb-plot svg');"
            " return svg && svg.getBoundingClientRect().width > 0; }",
            timeout=60_000,
        )
        results = page.locator(".wb-results table").inner_text()
        assert "temperature" in results
        assert page.locator(".wb-message").inner_text().strip() == ""
        # The README's picture of the panel (notebooks/images/sweep-panel.png).
        shot = run.screenshot(0, "sweep-panel-readme")
        assert shot.stat().st_size > 10_000
        # The table scrolls sideways inside the panel, and its scrollbar ends above the
        # chart, not under it.
        geometry = page.evaluate(
            "() => [...document.querySelectorAll('.wb-results, .wb-results .wb-sweep-scroll,"
            " .wb-plot, .wb-plot svg')].map(n => { const r = n.getBoundingClientRect();"
            " return [n.className.baseVal ?? n.className, r.top, r.bottom, r.width,"
            " n.scrollWidth, n.clientWidth]; })"
        )
        scroller = page.locator(".wb-results .wb-sweep-scroll")
        assert scroller.evaluate("n => n.scrollWidth > n.clientWidth"), geometry
        results = page.locator(".wb-results")  # the panel itself does not scroll sideways
        assert results.evaluate("n => n.scrollWidth <= n.clientWidth + 1"), geometry
        assert _boxes_overlap(page, ".wb-results .wb-sweep-scroll", ".wb-plot svg") <= 0, geometry
        assert _boxes_overlap(page, ".wb-results", ".wb-plot") <= 0, geometry
        first_sweep = _run_ids(lab.store) - before_ids

        # Run again with more cases, and Stop at once.
        page.locator(".wb-temperature-steps input").fill("9")
        page.locator(".wb-temperature-steps input").press("Enter")
        page.wait_for_function(
            "() => document.querySelector('.wb-estimate').innerText.startsWith('9 runs')",
            timeout=30_000,
        )
        page.locator("button.wb-run").click()
        page.wait_for_function(  # the last sweep's table and chart are gone meanwhile
            "() => !document.querySelector('.wb-results table')"
            " && !document.querySelector('.wb-plot svg')", timeout=30_000,
        )
        page.locator("button.wb-stop").click()
        page.wait_for_function(
            "() => document.querySelector('.wb-status').innerText.includes('stopped')",
            timeout=60_000,
        )
        page.wait_for_selector("button.wb-run:not([disabled])", timeout=60_000)
        stopped_table = page.locator(".wb-results table")
        if stopped_table.count():  # what came before Stop: the new sweep's columns only
            # 6 steps of 0 to 0.8 had 0.16; 9 steps (0, 0.1, ... 0.8) do not.
            assert "temperature=0.16" not in stopped_table.inner_text()
        run.screenshot(0, "sweep-panel-stopped")

        # A field with an error: Run is off until it is fixed.
        _type(page, ".wb-seeds", "1,x")
        page.wait_for_function(
            "() => document.querySelector('.wb-estimate').innerText.includes('whole numbers')",
            timeout=30_000,
        )
        # Two widgets' updates: the browser may draw the message a moment before the button.
        page.wait_for_selector("button.wb-run[disabled]", timeout=5_000)
        run.screenshot(0, "sweep-panel-error")
        _type(page, ".wb-seeds", "1")
        page.wait_for_selector("button.wb-run:not([disabled])", timeout=30_000)

    # The kernel logged real rows: one per run of the first sweep it showed.
    runs = int(re.match(r"(\d+) runs?", after).group(1))  # type: ignore[union-attr]
    from workbench.store import SQLiteStore

    with SQLiteStore(lab.store) as store:
        df = store.runs()
    df = df[df["run_id"].isin(first_sweep)]
    assert len(df) == runs and set(df.status) == {"ok"} and df.sweep_id.nunique() == 1
