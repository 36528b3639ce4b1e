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


# ---------------------------------------------------------------- --budget covers the judge


def answer_and_grade(answer_tokens: int) -> Any:
    """Answers with ``answer_tokens`` output tokens (gpt-4o-mini, priced); a judge's
    request (it asks for a json_schema) gets a grade."""
    def handler(request: Received) -> Reply:
        if request.path.endswith("/models"):
            return capital(request)
        if "response_format" in request.body:
            return chat_reply('{"score": 5, "reason": "fine"}', model=request.body["model"],
                              prompt_tokens=80, completion_tokens=10)
        return chat_reply("Paris.", model=request.body["model"], prompt_tokens=9,
                          completion_tokens=answer_tokens)

    return handler


def chats(api: Any) -> list[Any]:
    return [r for r in api.received if r.path.endswith("/chat/completions")]


def test_a_chat_cells_budget_refuses_a_judge_that_would_not_fit_before_sending(
    shell: TestingShell, start_api: Any
) -> None:
    api = start_api(answer_and_grade(3))
    # 2,000 judge tokens at $0.60 a million: ~$0.0012 expected, the answer ~$0.000005.
    shell.run_cell("grade = wb.scorers.judge('Right?', model='gpt-4o-mini', max_tokens=2000)")
    # The answer and its judge's calls, counted apart (one budget, calls/budget).
    with pytest.raises(UsageError, match=r"^Call refused before sending anything: the expected "
                       r"cost \$0\.00\d+ is above the budget of \$0\.0002\. Estimate: 1 run "
                       r"\+ 1 judge call · .*, or raise --budget$"):
        shell.run_cell("%%chat -m gpt-4o-mini --no-stream --max-tokens 5 --budget 0.0002"
                       " --score grade\nCapital of France?")
    assert chats(api) == []
    shell.run_cell("%%chat -m gpt-4o-mini --no-stream --max-tokens 5 --budget 0.01"
                   " --score grade --out r\nCapital of France?")
    assert "judge 5" in shell.user_ns["r"].footer and len(chats(api)) == 2


def test_a_chat_cell_whose_answer_spent_its_budget_shows_it_and_does_not_ask_the_judge(
    shell: TestingShell, start_api: Any
) -> None:
    # The answer comes back with 200,000 output tokens ($0.12), far past --budget 0.05.
    api = start_api(answer_and_grade(200_000))
    shell.run_cell("grade = [wb.scorers.contains('paris'),"
                   " wb.scorers.judge('Right?', model='gpt-4o-mini')]")
    with pytest.warns(RuntimeWarning, match=r"The judge was not asked: the answer cost "
                      r"\$0\.12 of --budget \$0\.05"):
        shell.run_cell("%%chat -m gpt-4o-mini --no-stream --max-tokens 5 --budget 0.05"
                       " --score grade --out r\nCapital of France?")
    footer = shell.user_ns["r"].footer
    assert shell.user_ns["r"].text == "Paris."  # paid for: shown
    assert "contains ✓" in footer and "judge not asked (--budget)" in footer
    assert len(chats(api)) == 1 and wb.scores(scorer="judge").empty
