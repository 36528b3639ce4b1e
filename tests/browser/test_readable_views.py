"""What a person reads after a run, in a real JupyterLab, light and dark (issue 13).

For each theme one notebook (the shared Lab and Chromium of conftest.py) runs a
``%%chat`` sweep on the local model, a bare ``s.table()`` of it, ``wb.compare`` of it, an
estimate (a line with three dollar amounts), a SweepPanel after a run, a SweepPanel
showing an error and a Playground after a (cut) answer. From the DOM: no MathJax in a
cost line, the sweep tables scroll sideways inside the output, compare cells are
left-aligned, error text has a contrast of 4.5:1 or more. Screenshots go to
``test-artifacts/<view>-<theme>.png``.

Issue 22's finding 5: at 1,400 px, the 4-combination sweep table, ``wb.compare`` with 5
columns, ``%workbench runs`` / ``wb.browse``, a one-row ``wb.stability``, ``s.points.head()``,
``wb.runs()`` and ``wb.scores()`` each fit the notebook or scroll inside their own box
(nothing runs past the output's edge, and a box that scrolls sideways has its scrollbar
within a window's height of its top).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .notebook import Lab, RunCells, contrast, run_cells

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(900)]

CELLS = [
    "%load_ext workbench\nimport workbench as wb\nfrom decimal import Decimal\n"
    "from workbench.calls.budget.estimate import Estimate",
    "%%chat --temperature 0,1 --seed 1:2 --max-tokens 24 --experiment views --out s\n"
    "Describe a harbour at dusk in one sentence.",
    "s.table()",
    "wb.compare(wb.runs(experiment='views'), by='temperature')",
    "Estimate(3, 600, 120, 300, Decimal('0.00042'), Decimal('0.0012'), Decimal('0.0031'))",
    "panel = wb.SweepPanel('Name one thing found in {{place}}.', vars={'place': ['a kitchen',"
    " 'a forest']})\npanel.max_tokens.value = 12\npanel.temperature_steps.value = 2\n"
    "panel.run(); panel.wait(240)\npanel",
    "broken = wb.SweepPanel('')\nbroken.run(); broken.wait(30)\nbroken.message",
    "play = wb.Playground('Name two colours of the sea.')\n"
    "play.knobs['max_tokens'].control.value = 8\nplay.run()\nplay",
    "%%chat --temperature 0.7 --repeat 3 --max-tokens 12 --experiment views --out r\n"
    "Name one colour of the sea.",
    "wb.stability(r)",
    "s.points.head()",
    "wb.compare(wb.runs(experiment='views'), by=['temperature', 'seed'])",
    "wb.runs(experiment='views')",
    "%workbench runs",
    "wb.browse(experiment='views')",
    "_ = wb.score(s, wb.scorers.contains('harbour'))\nwb.scores()",
]
SWEEP, TABLE, COMPARE, ESTIMATE, PANEL, BROKEN, PLAYGROUND = range(1, 8)
REPEATED, STABILITY, POINTS, COMPARE5, RUNS, RUNS_MAGIC, BROWSE, SCORES = range(8, 16)
WIDE_VIEWS = {  # cell -> screenshot name
    SWEEP: "sweep-table", COMPARE5: "compare-5-columns", STABILITY: "stability",
    POINTS: "points-head", RUNS: "runs-frame", RUNS_MAGIC: "runs-magic", BROWSE: "browse",
    SCORES: "scores-frame",
}


@pytest.fixture(scope="module")
def views(lab: Lab, chromium: Any, theme: str) -> Iterator[RunCells]:
    with run_cells(lab, chromium, CELLS, "readable", theme) as run:
        assert run.errors() == []
        run.page.wait_for_selector(".wb-results table", timeout=60_000)
        run.page.wait_for_timeout(1500)  # MathJax typesets after the outputs land
        yield run


def _scrolls_sideways_with_a_sticky_first_column(output: Any) -> None:
    scroller = output.locator(".wb-sweep-scroll")
    assert scroller.count() == 1
    assert scroller.evaluate("n => getComputedStyle(n).overflowX") == "auto"
    assert scroller.evaluate("n => getComputedStyle(n).overflowY") == "auto"  # a max-height box
    assert output.locator("tbody th").first.evaluate(
        "n => getComputedStyle(n).position") == "sticky"
    assert "tok" in output.locator(".wb-meta").first.inner_text()


def _sticking_out(output: Any) -> list[str]:
    """The widgets in ``output`` whose right edge is past the output's (their border cut)."""
    return list(output.evaluate(
        "o => { const edge = o.querySelector('.jp-OutputArea-output').getBoundingClientRect()"
        ".right; return [...o.querySelectorAll('.jupyter-widgets:not(.widget-box)')]"
        ".filter(n => n.getBoundingClientRect().right > edge + 0.5)"
        ".map(n => n.className + ' ' + (n.getBoundingClientRect().right - edge)); }"))


def _running_past_the_output(output: Any) -> list[str]:
    """What makes the notebook cell scroll sideways: the output wider than its box, or an
    element past the output's right edge that no scroll box of its own holds in; and
    each box that does scroll sideways, if its scrollbar is more than 900 px down."""
    return list(output.evaluate("""o => {
      const out = o.querySelector('.jp-OutputArea-output');
      const box = out.getBoundingClientRect();
      const bad = [];
      if (out.scrollWidth > out.clientWidth + 1)
        bad.push('output ' + out.scrollWidth + ' px wide in ' + out.clientWidth);
      const scrolls = (n) => ['auto', 'scroll'].includes(getComputedStyle(n).overflowX);
      for (const n of out.querySelectorAll('*')) {
        const r = n.getBoundingClientRect();
        if (r.width === 0 || r.right <= box.right + 0.5) continue;
        let p = n.parentElement, held = false;
        while (p && p !== out) {
          if (scrolls(p) && p.getBoundingClientRect().right <= box.right + 0.5) {
            held = true; break;
          }
          p = p.parentElement;
        }
        if (!held) bad.push(`${n.tagName}.${n.className} ends ${r.right - box.right} px out`);
      }
      for (const n of out.querySelectorAll('*')) {
        if (!scrolls(n) || n.scrollWidth <= n.clientWidth + 1) continue;
        const bottom = n.getBoundingClientRect().bottom - box.top;
        if (bottom > 900) bad.push(`${n.className} scrolls sideways, its bar ${bottom} px down`);
      }
      return bad.slice(0, 8);
    }"""))


def _fits(scroller: Any) -> bool:
    return bool(scroller.evaluate("n => n.scrollWidth <= n.clientWidth + 1"))


@pytest.mark.parametrize("index", list(WIDE_VIEWS), ids=list(WIDE_VIEWS.values()))
def test_each_wide_view_fits_or_scrolls_inside_itself(views: RunCells, index: int) -> None:
    output = views.output(index)
    if index in (RUNS_MAGIC, BROWSE):
        output.locator(".wb-browse table tbody tr").first.wait_for(timeout=60_000)
    views.screenshot(index, WIDE_VIEWS[index])
    bad = _running_past_the_output(output)
    assert not bad, bad


def test_four_combinations_and_five_compare_columns_fit_at_1400_px(views: RunCells) -> None:
    sweep = views.output(SWEEP).locator(".wb-sweep-scroll")
    assert views.output(SWEEP).locator("thead th").count() == 5  # the corner and 4 columns
    assert _fits(sweep), "the 4-combination sweep table scrolls sideways"
    compare = views.output(COMPARE5).locator(".wb-scroll")
    assert views.output(COMPARE5).locator("thead th").count() == 6
    assert _fits(compare), "wb.compare with 5 columns scrolls sideways"
    for index in (STABILITY, POINTS):  # one-row and five-row results fit whole
        assert _fits(views.output(index).locator(".wb-frame-scroll")), index
    # Formatted: no raw missing values, floats to 3 significant digits.
    text = views.output(STABILITY).inner_text() + views.output(RUNS).inner_text()
    assert "<NA>" not in text and "NaN" not in text and "None" not in text
    assert "1.000000" not in views.output(SCORES).inner_text()


def test_the_runs_browser_shows_the_answer_with_even_rows_and_says_its_order(
    views: RunCells,
) -> None:
    grid = views.output(BROWSE)
    grid.locator(".wb-browse table tbody tr").first.wait_for(timeout=60_000)
    scroller = grid.locator(".wb-browse-scroll")
    # The output column is in view without scrolling sideways.
    assert grid.locator("th[data-column=output]").evaluate(
        "(n) => n.getBoundingClientRect().right <= "
        "n.closest('.wb-browse-scroll').getBoundingClientRect().right + 1")
    heights = grid.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => Math.round(r.getBoundingClientRect().height))")
    assert len(set(heights)) == 1, heights  # even rows
    assert "runs, newest first" in grid.locator(".wb-browse-count").inner_text()
    grid.locator("th[data-column=cost]").click()
    assert "by cost, largest first" in grid.locator(".wb-browse-count").inner_text()
    grid.locator("th[data-column=model]").click()
    assert "by model, A to Z" in grid.locator(".wb-browse-count").inner_text()
    # No sticky column for text to slide under.
    assert grid.locator("tbody td").first.evaluate(
        "n => getComputedStyle(n).position") != "sticky"
    assert scroller.evaluate("n => getComputedStyle(n).overflowY") == "auto"
    views.screenshot(BROWSE, "browse-sorted")


def test_a_sweep_table_scrolls_inside_the_output(views: RunCells) -> None:
    _scrolls_sideways_with_a_sticky_first_column(views.output(SWEEP))
    views.screenshot(SWEEP, "sweep-table")


def test_a_bare_table_cell_shows_the_same_readable_table(views: RunCells) -> None:
    output = views.output(TABLE)
    _scrolls_sideways_with_a_sticky_first_column(output)
    assert output.locator("table.wb-sweep").count() == 1
    assert output.locator("mjx-container, .MathJax").count() == 0
    views.screenshot(TABLE, "sweep-table-bare")


def test_the_compare_view_is_left_aligned_in_theme_colours(views: RunCells) -> None:
    compare = views.output(COMPARE).locator("table.wb-compare")
    texts = compare.locator("td .wb-text")
    assert texts.count() >= 2
    for i in range(texts.count()):
        assert texts.nth(i).evaluate("n => getComputedStyle(n).textAlign") in ("left", "start")
    assert compare.locator("td").first.evaluate(
        "n => getComputedStyle(n.closest('td')).textAlign") == "left"
    assert contrast(texts.first) >= 4.5
    views.screenshot(COMPARE, "compare")


def test_cost_lines_are_never_typeset_as_maths(views: RunCells) -> None:
    for index in (SWEEP, ESTIMATE, PANEL):
        output = views.output(index)
        assert "$" in output.inner_text()
        assert output.locator("mjx-container, .MathJax").count() == 0, index
    assert "$0.0012 expected ($0.00042 to $0.0031)" in views.cell(ESTIMATE).inner_text()
    views.screenshot(ESTIMATE, "cost-line")


def test_the_sweep_panel_after_a_run_shows_the_magics_table(views: RunCells) -> None:
    panel = views.cell(PANEL)
    assert panel.locator("img").count() == 0
    assert panel.locator(".wb-plot svg").count() == 1
    assert panel.locator(".wb-results .wb-sweep-scroll").count() == 1
    assert "stopped: stopped" not in panel.inner_text()
    out = _sticking_out(views.output(PANEL))
    assert not out, out
    views.screenshot(PANEL, "sweep-panel")


def test_a_panel_error_reads_on_the_theme_background(views: RunCells) -> None:
    error = views.output(BROKEN).locator("span").filter(has_text="Write a prompt")
    assert error.count() == 1
    assert contrast(error.first) >= 4.5, views.theme
    views.screenshot(BROKEN, "panel-error")


def test_the_playground_answer_reads_as_text_and_says_it_was_cut(views: RunCells) -> None:
    output = views.output(PLAYGROUND)
    answer = output.locator(".wb-answer div").first
    assert answer.inner_text().strip()
    assert contrast(answer) >= 4.5
    assert "cut at 8 tokens" in output.inner_text()
    # Every box ends inside the output (the answer's right border was cut off).
    out = _sticking_out(output)
    assert not out, out
    assert output.locator("button.wb-run").is_enabled()
    assert output.locator("mjx-container, .MathJax").count() == 0
    views.screenshot(PLAYGROUND, "playground")
