"""Scores where a person sees runs: the %%chat footer (--score), a sweep cell's table and
summary, and wb.compare; against a loopback API that plays the model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from loopback import Received, Reply, chat_reply
from testing_shell import TestingShell, open_shell

import workbench as wb


@pytest.fixture
def shell(in_tmp_dir: Path) -> Iterator[TestingShell]:
    with open_shell() as ipython:
        ipython.run_cell("import workbench as wb")
        yield ipython


def shown(captured: Any) -> str:
    """Every text the cell displayed, in any format."""
    return captured.stdout + "".join(str(v) for out in captured.outputs
                                     for v in out.data.values())


def capital(request: Received) -> Reply:
    if request.path.endswith("/models"):
        return Reply(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
    question = request.body["messages"][-1]["content"]
    text = "Paris." if "France" in question else "Rome, I think."
    return chat_reply(text, model=request.body["model"], prompt_tokens=9, completion_tokens=3)


def test_score_shows_in_the_footer_of_a_chat_cell(shell: TestingShell, start_api: Any) -> None:
    start_api(capital)
    shell.run_cell("paris = [wb.scorers.contains('paris'), wb.scorers.length(max_words=1)]")
    with capture_output() as captured:
        shell.run_cell("%%chat -m gpt-4o-mini --no-stream --score paris --out r\n"
                       "Capital of France?")
    footer = shell.user_ns["r"].footer
    assert "contains ✓" in footer and "length ✓" in footer
    assert "contains ✓" in shown(captured)
    assert wb.runs()["score:contains"].tolist() == [1.0]


def test_a_wrong_score_variable_is_one_line_before_sending(
    shell: TestingShell, start_api: Any
) -> None:
    api = start_api(capital)
    shell.run_cell("not_a_scorer = 3")
    with pytest.raises(UsageError, match="--score not_a_scorer: 3 is not a scorer"):
        shell.run_cell("%%chat -m gpt-4o-mini --score not_a_scorer\nCapital of France?")
    with pytest.raises(UsageError, match="no variable 'parsi'"):
        shell.run_cell("%%chat -m gpt-4o-mini --score parsi\nCapital of France?")
    assert api.count() == 0


def test_a_sweep_cell_shows_each_runs_scores(shell: TestingShell, start_api: Any) -> None:
    start_api(capital)
    shell.run_cell("paris = wb.scorers.contains('paris')\ncountry = 'France'")
    with capture_output() as captured:
        shell.run_cell("%%chat -m gpt-4o-mini -t 0,1 --max-tokens 5 --score paris --out s\n"
                       "Capital of {{country}}?")
    sweep = shell.user_ns["s"]
    assert sweep.df["score:contains"].tolist() == [1.0, 1.0]
    assert "[contains 1]" in shown(captured) and "score:contains mean 1" in shown(captured)


def test_compare_shows_scores_in_each_cell(start_api: Any) -> None:
    start_api(capital)
    s = wb.sweep("Capital of {{c}}?", vars={"c": ["France", "Italy"]},
                 grid={"temperature": [0, 1]}, model="gpt-4o-mini", max_tokens=5,
                 scorers=wb.scorers.contains("paris"))
    s.run(progress=False)
    page = wb.compare(s)._repr_html_()
    assert page.count("contains 1") == 2 and page.count("contains 0") == 2
