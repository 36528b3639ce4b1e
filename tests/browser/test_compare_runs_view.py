"""``wb.compare_runs`` in a real JupyterLab, light and dark: both sides named, flipped
cases as ``name = value``, and the sentence on reading the interval beside p, in theme
colours. Screenshot: ``test-artifacts/compare-runs-<theme>.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .notebook import Lab, contrast, run_cells

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _store_two_sides(path: Path, theme: str) -> tuple[str, str]:
    """Five cases; the candidate fixes four (interval above 0, p = 0.125)."""
    from workbench.core.record import RunRecord
    from workbench.scoring.table import NewScores, write_scores
    from workbench.store import SQLiteStore

    base, cand = f"base-{theme}", f"cand-{theme}"
    scores = NewScores(scorer="contains", scorer_id=f"contains-{theme}")
    with SQLiteStore(path) as store:
        for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima", "Riga"]):
            for experiment, value in ((base, 0.0), (cand, 1.0 if i < 4 else 0.0)):
                record = RunRecord(kind="chat", provider="local", model="local",
                                   experiment=experiment, status="ok", output=city,
                                   prompt=f"Where is {city}?",
                                   variables=json.dumps({"city": city}),
                                   request_hash=f"{experiment}-{i}")
                store.append(record)
                scores.run_ids.append(record.run_id)
                scores.values.append(value)
                scores.passed.append(value >= 1)
                scores.reasons.append("")
                scores.judge_run_ids.append(None)
        write_scores(store, scores)
    return base, cand


def test_compare_runs_reads_in_both_themes(lab: Lab, chromium: Any, theme: str) -> None:
    base, cand = _store_two_sides(lab.store, theme)
    cell = (f"import workbench as wb\n"
            f"wb.compare_runs({base!r}, {cand!r}, scorer='contains')")
    with run_cells(lab, chromium, [cell], "compare-runs", theme) as run:
        output = run.output(0)
        output.locator("table").wait_for(timeout=60_000)
        text = output.inner_text()
        assert f"{base} · mean 0" in text and f"{cand} · mean 0.8" in text
        assert "city = Paris: fixed" in text and '{"city"' not in text
        assert "here they disagree" in text
        reading = output.get_by_text("two different methods")
        assert contrast(reading) >= 4.5
        run.screenshot(0, "compare-runs")
