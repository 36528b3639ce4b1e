"""What a person reads after a run, in a real JupyterLab, light and dark: the runs
browser (driven: sort, search, filter), a plot cell, a streamed %%chat answer and an
error. Screenshots go to test-artifacts/<view>-<theme>.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from .notebook import Lab, RunCells, contrast, run_cells

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SEED_RUNS = """\
from datetime import datetime, timedelta, timezone
import workbench as wb
from workbench.core.record import RunRecord
from workbench.calls.session import get_session

t0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
story = ("Once upon a time a small model wrote a very long answer about the sea, "
         "the wind, the boats and the people who waited on the shore for them. ") * 4
models = ["gpt-4o-mini", "gpt-4o", "smollm2-135m-instruct"]
for i in range(9):
    get_session().store.append(RunRecord(
        kind="chat", provider="openai", model=models[i % 3], experiment=EXPERIMENT,
        created_at=t0 + timedelta(minutes=i), temperature=[0, 0.7, 1.2][i % 3], seed=i,
        max_tokens=120,
        prompt=f"Prompt {i}: " + ("write about the kitten" if i == 4 else story[:90]),
        output=story if i % 2 else f"Answer {i}.", prompt_tokens=10 + i,
        completion_tokens=[40, 7, 90][i % 3], cost_usd=0.00042 * (i + 1), latency_s=0.4 + i / 10,
        request_hash=f"h{i}", status="error" if i == 7 else "ok",
        error="HTTP 429: rate limited, retry later" if i == 7 else None,
    ))
"""
BROWSE = "wb.browse(experiment=EXPERIMENT)"
PLOT = "wb.plots.tokens(wb.runs(experiment=EXPERIMENT))"
LOAD = "%load_ext workbench"
CHAT = "%%chat -t 0 --seed 1 --max-tokens 60 --fresh\nWrite two sentences about rain."  # streamed
ERROR = "%%chat -m smolm2 --max-tokens 5\nhi"  # last: an error stops the cells queued after it
CELLS = [SEED_RUNS, BROWSE, PLOT, LOAD, CHAT, ERROR]  # one Lab, one store: an experiment per theme
BROWSER_CELL, PLOT_CELL, CHAT_CELL, ERROR_CELL = 1, 2, 4, 5


@pytest.fixture(scope="module")
def views(lab: Lab, chromium: Any, theme: str) -> Iterator[RunCells]:
    cells = [f"EXPERIMENT = 'browser-{theme}'\n" + CELLS[0], *CELLS[1:]]
    with run_cells(lab, chromium, cells, "views", theme) as run:
        yield run


def _column(run: RunCells, name: str) -> list[str]:
    grid = run.output(BROWSER_CELL)
    headers = grid.locator("th").all_inner_texts()
    index = [h.split(" ")[0].strip() for h in headers].index(name)
    return grid.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()


def test_runs_browser_is_newest_first_sortable_searchable_filterable(views: RunCells) -> None:
    grid = views.output(BROWSER_CELL)
    grid.locator(".wb-browse table").wait_for(timeout=60_000)
    assert "9 runs, newest first" in grid.locator(".wb-browse-count").inner_text()
    times = _column(views, "time")
    assert times == sorted(times, reverse=True) and len(times) == 9
    views.screenshot(BROWSER_CELL, "runs-browser")
    grid.locator(".wb-browse-scroll").evaluate("e => { e.scrollLeft = e.scrollWidth; }")
    views.screenshot(BROWSER_CELL, "runs-browser-scrolled")
    # Wider than the cell or not, it ends inside the output (scrolling inside itself).
    assert grid.locator(".wb-browse-scroll").evaluate(
        "e => e.getBoundingClientRect().right"
        " <= e.closest('.jp-OutputArea').getBoundingClientRect().right + 1"
    )

    grid.locator("th", has_text="tokens").click()  # numbers sort largest first
    tokens = [int(t.split("→")[0]) + int(t.split("→")[1]) for t in _column(views, "tokens")]
    assert tokens == sorted(tokens, reverse=True)
    grid.locator("th", has_text="tokens").click()
    tokens = [int(t.split("→")[0]) + int(t.split("→")[1]) for t in _column(views, "tokens")]
    assert tokens == sorted(tokens)

    grid.locator(".wb-browse-search").fill("kitten")
    assert grid.locator(".wb-browse-count").inner_text().startswith("1 of 9 runs, by tokens")
    assert _column(views, "prompt") == ["Prompt 4: write about the kitten"]
    grid.locator(".wb-browse-search").fill("")
    grid.locator("select[data-column=status]").select_option("error")
    assert _column(views, "status") == ["error: HTTP 429: rate limited, retry later"]
    error_cell = grid.locator("td.wb-error").first
    assert contrast(error_cell) >= 4.5, "error text in the grid is hard to read"
    grid.locator("select[data-column=status]").select_option("")

    fold = grid.locator(".wb-fold").nth(1)  # a long output, folded to two lines
    folded = fold.bounding_box()["height"]
    fold.click()
    assert fold.bounding_box()["height"] > folded * 2


def test_a_plot_cell_shows_the_figure_and_no_axes_repr(views: RunCells) -> None:
    output = views.output(PLOT_CELL)
    output.locator("img").first.wait_for(timeout=60_000)
    assert "<Axes" not in output.inner_text()
    assert output.locator(".jp-OutputArea-output").count() == 1
    # Not a white box in the dark theme: a transparent PNG with grey ink (core.figures),
    # the same in both themes, no CSS filter (test_notebook_figures.py checks its pixels).
    assert output.locator("img").first.evaluate("n => getComputedStyle(n).filter") == "none"
    views.screenshot(PLOT_CELL, "plot")


def test_a_streamed_chat_ends_as_one_markdown_answer(views: RunCells) -> None:
    output = views.output(CHAT_CELL)
    answer = output.locator(".jp-RenderedMarkdown")
    answer.wait_for(timeout=60_000)
    assert output.locator(".jp-OutputArea-output").count() == 1  # the status was replaced
    text = answer.inner_text()
    assert "starting the local model" not in text and "cached" not in text
    assert re.search(r"smollm2-135m-instruct · \d+→\d+ tokens", text)
    assert contrast(answer.locator("p").first) >= 4.5
    views.screenshot(CHAT_CELL, "chat-streamed")


def test_an_error_is_one_readable_line(views: RunCells) -> None:
    output = views.output(ERROR_CELL)
    error = output.locator("[data-mime-type='application/vnd.jupyter.stderr']")
    error.wait_for(timeout=60_000)
    text = error.inner_text()
    assert "Did you mean 'smollm2-135m-instruct'?" in text and "Traceback" not in text
    assert "starting the local model" not in output.inner_text()  # the status was cleared
    assert contrast(error.locator("pre")) >= 4.5, "error text against its background"
    views.screenshot(ERROR_CELL, "error")
