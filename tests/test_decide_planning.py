"""The detectable-difference line of a planned sweep, and the SweepPanel showing it."""

from __future__ import annotations

from typing import Any

import pytest
from decide_server import PassRateServer

import workbench as wb
from workbench.decide.planning import planned_detectable


def test_a_planned_sweep_says_what_it_can_detect(start_api: Any) -> None:
    start_api(PassRateServer({("gpt-4o-mini", s): 0.9 for s in ("a", "b")}))
    s = wb.sweep("Question {{i}}", vars={"i": list(range(40))}, grid={"system": ["a", "b"]},
                 model="gpt-4o-mini", repeats=2, max_tokens=5)
    line = planned_detectable(s)
    assert line is not None and (line.cases, line.repeats, line.measured_runs) == (40, 2, 0)
    assert line.difference == pytest.approx(wb.detectable_difference(40, 0.5))
    # The inverse: 40 cases are about what sample_size asks for that difference.
    assert abs(wb.sample_size(line.difference, 0.5) - 40) <= 1
    assert str(line).startswith("with 40 cases x 2 repeats you can detect a difference of")
    s.run(progress=False)
    wb.score(s, wb.scorers.contains("yes"))
    measured = planned_detectable(s)
    assert measured is not None and measured.measured_runs == 160
    assert measured.pass_rate == pytest.approx(s.df["score:contains"].mean())
    assert measured.difference < line.difference  # a 90 % pass rate varies less than 50 %


def test_one_variant_has_nothing_to_compare(start_api: Any) -> None:
    start_api(PassRateServer({}))  # a hosted model's sweep needs a server and a key
    s = wb.sweep("Question {{i}}", vars={"i": [1, 2, 3]}, model="gpt-4o-mini")
    assert planned_detectable(s) is None


def test_the_sweep_panel_shows_the_line(start_api: Any) -> None:
    from workbench.notebook.widgets import SweepPanel

    start_api(PassRateServer({}))
    p = SweepPanel("Capital of {{country}}?", models=["gpt-4o-mini", "gpt-4o"])
    p.variables.value = "country = France, Japan, Peru, Chad"
    assert "with 4 cases no difference" in p.estimate.value  # 3 temperatures: 3 variants
    p.variables.value = "country = " + ", ".join(f"c{i}" for i in range(60))
    assert "with 60 cases you can detect a difference of about" in p.estimate.value


def test_a_sweeps_estimate_says_what_it_can_detect(start_api: Any) -> None:
    start_api(PassRateServer({}))
    s = wb.sweep("Question {{i}}", vars={"i": list(range(40))}, grid={"system": ["a", "b"]},
                 model="gpt-4o-mini", repeats=2, max_tokens=5)
    estimate = s.estimate()
    assert estimate.planning == str(planned_detectable(s))
    for shown in (str(estimate), estimate._repr_html_()):
        assert "with 40 cases x 2 repeats you can detect a difference of about" in shown
    # One variant: nothing to compare, so the estimate says nothing about it.
    single = wb.sweep("Question {{i}}", vars={"i": [1, 2, 3]}, model="gpt-4o-mini")
    assert single.estimate().planning is None
    assert "detect" not in str(single.estimate())
