"""The SweepPanel in a real JupyterLab, driven by a real Chromium.

Runs the notebook cell that shows ``wb.SweepPanel()``, moves the temperature slider,
checks that the live estimate follows, clicks Run, and waits for the side-by-side
results and the token plot (the shared Lab and Chromium of conftest.py, light theme). The
screenshot ``test-artifacts/sweep-panel-readme-light.png`` is the README's picture.
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
    from workbench.store import ExperimentStore

    with ExperimentStore(store_path) as store:
        return set(store.runs()["run_id"])


def test_sweep_panel_in_a_real_browser(lab: Lab, chromium: Any) -> None:
    before_ids = _run_ids(lab.store)  # the Lab's store is shared with the other tests
    with run_cells(lab, chromium, [_panel_cell()], "panel", "light") as run:
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
    # The kernel logged real rows: one per run of the sweep it showed.
    runs = int(re.match(r"(\d+) runs?", after).group(1))  # type: ignore[union-attr]
    from workbench.store import ExperimentStore

    with ExperimentStore(lab.store) as store:
        df = store.runs()
    df = df[~df["run_id"].isin(before_ids)]
    assert len(df) == runs and set(df.status) == {"ok"} and df.sweep_id.nunique() == 1
