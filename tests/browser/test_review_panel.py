"""The ReviewPanel in a real JupyterLab (light and dark theme), driven by a real Chromium.

Stores four runs of a small sweep in the Lab's store, runs the cell that shows
``wb.ReviewPanel``, rates three outputs with the keyboard (p, f, p; the last p held down,
so the key repeats), and finds exactly the three ratings as ``human`` scores in the store
file. The shared Lab and Chromium of conftest.py, in both themes; screenshots:
``test-artifacts/review-<theme>.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .notebook import Lab, contrast, run_cells

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _store_sweep(path: Path, experiment: str) -> list[str]:
    from workbench.core.record import RunRecord
    from workbench.store import SQLiteStore

    ids = []
    with SQLiteStore(path) as store:
        for i, (city, answer) in enumerate(
            [("France", "Paris"), ("Italy", "Milan"), ("Spain", "Madrid"), ("Peru", "Lima")]
        ):
            record = RunRecord(kind="chat", provider="local", model="local",
                               experiment=experiment, status="ok", output=answer,
                               prompt=f"What is the capital of {city}?",
                               variables=json.dumps({"country": city}),
                               request_hash=f"{experiment}-h{i}")
            record.expected = {"Italy": "Rome"}.get(city, answer)
            store.append(record)
            ids.append(record.run_id)
    return ids


def test_rate_three_outputs_by_keyboard(lab: Lab, chromium: Any, theme: str) -> None:
    experiment = f"capitals-{theme}"  # one store for the Lab: ratings of one theme only
    ids = _store_sweep(lab.store, experiment)
    cell = (
        "import workbench as wb\nfrom workbench.scoring.base import Score\n"
        "def judge(output, **_):  # a judge that passes everything, and says why\n"
        "    return Score(1.0, True, 'looks like a capital city')\n"
        f"wb.score({experiment!r}, judge)\n"
        f"panel = wb.ReviewPanel({experiment!r}, rater='tester')\npanel"
    )
    with run_cells(lab, chromium, [cell], "review", theme) as run:
        page = run.page
        panel = page.locator(".wb-review")
        panel.wait_for(timeout=90_000)
        progress = page.locator(".wb-review-progress")
        assert progress.inner_text() == "0 of 4 rated"
        assert "capital of France" in panel.inner_text()
        # Text sits inside its box, not against the edge (Lab's `pre` rule has no padding).
        assert panel.locator(".wb-review-text").first.evaluate(
            "n => parseFloat(getComputedStyle(n).paddingLeft)") >= 4
        panel.focus()
        for key, rated in (("p", 1), ("f", 2), ("p", 3)):
            if rated < 3:
                page.keyboard.press(key)
            else:  # held down: the key repeats (event.repeat) and still rates one output
                for _ in range(4):
                    page.keyboard.down(key)
                page.keyboard.up(key)
            page.wait_for_function(
                "(text) => document.querySelector('.wb-review-progress').innerText"
                " === text", arg=f"{rated} of 4 rated", timeout=30_000,
            )
        assert "capital of Peru" in panel.inner_text()
        # Which item, of which variant, is on screen.
        assert page.locator(".wb-review-position").inner_text() == "item 4 of 4"
        assert page.locator(".wb-review-variant").inner_text() == "variant: local"
        assert "country = Peru" in panel.inner_text()  # the variables read as name = value
        page.locator(".wb-review-comment").fill("a comment")
        shot = run.screenshot(0, "review")
        assert shot.stat().st_size > 5_000
        # "judge disagrees": Italy (rated fail) with the judge's verdict and its reason.
        page.locator(".wb-review-filter").select_option("disagree")
        page.wait_for_function(
            "() => document.querySelector('.wb-review').innerText.includes('capital of Italy')",
            timeout=30_000,
        )
        verdict = page.locator(".wb-review-verdict")
        assert verdict.inner_text() == "judge: pass (1) · looks like a capital city"
        assert page.locator(".wb-review-position").inner_text() == "item 2 of 4"
        assert contrast(verdict) >= 4.5 and contrast(page.locator(".wb-review-position")) >= 4.5
        run.screenshot(0, "review-disagree")

    from workbench.store import SQLiteStore

    with SQLiteStore(lab.store) as store:
        rows = store._query(
            "SELECT run_id, value, passed, scorer_id FROM scores WHERE scorer = 'human'"
        )
    assert sorted(r for r in rows if r[0] in ids) == sorted([(ids[0], 1.0, 1, "human:tester"),
                                                             (ids[1], 0.0, 0, "human:tester"),
                                                             (ids[2], 1.0, 1, "human:tester")])
