"""wb.optimize on a loopback server (tests/optimize_server.py) where only prompts with a
hidden instruction answer right and a reflection model proposes it when shown failures."""

from __future__ import annotations

from typing import Any

import pytest
import tqdm.auto
import tqdm.notebook
from IPython.utils.capture import capture_output
from optimize_server import HIDDEN, HiddenInstructionServer
from testing_shell import open_shell

import workbench as wb
from workbench.calls.progress import Bar
from workbench.optimize import optimize as optimize_module

WORDS = [f"item{i:02d}" for i in range(40)]
CASES = [{"word": w, "expected": w.upper()} for w in WORDS]


def options(**kwargs: Any) -> dict[str, Any]:
    chosen: dict[str, Any] = {
        "system": "Repeat the word.", "data": CASES,
        "scorers": wb.scorers.contains(case=True), "model": "gpt-4o-mini",
        "max_tokens": 20, "max_candidates": 3, "experiment": "caps", "progress": False,
        "budget": 1.0}
    chosen.update(kwargs)
    return chosen


def run(start_api: Any, reflection: str = "helpful", **kwargs: Any) -> tuple[Any, Any]:
    api = start_api(HiddenInstructionServer(reflection=reflection))
    return wb.optimize("The word: {{word}}", **options(**kwargs)), api


def test_finds_the_hidden_instruction_and_validates_it(start_api: Any) -> None:
    result, api = run(start_api)
    assert HIDDEN in result.best
    assert result.best_prompt == "The word: {{word}}"
    frame = result.candidates
    assert frame.loc[0, "status"] == "seed" and frame["parent"].iloc[1] == 0
    assert frame["train_score"].max() == 1.0 > frame.loc[0, "train_score"]
    assert "capitalised" in frame["reflection"].iloc[1]
    assert 0 < result.spent <= 1
    assert result.validation.comparison is not None
    assert result.validation.comparison.candidate_mean == 1.0
    assert result.validation.decided  # 12 held-out cases; the start passes ~30 %
    assert "<ins " in result.diff()._repr_html_()
    # Each evaluation is a sweep of the experiment, each reflection a call in it.
    runs = wb.runs(experiment="caps:optimize")
    assert (~runs["cache_hit"]).sum() == api.count("/chat/completions")


def test_a_rerun_replays_the_whole_search_with_no_request(
        start_api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    first, api = run(start_api)
    sent = api.count("/chat/completions")
    api.received.clear()
    again = wb.optimize("The word: {{word}}", **options(progress=True))
    bar = capsys.readouterr().err  # the progress bar: candidates, best so far, spent
    assert "optimize" in bar and "best=1.000 (#1)" in bar and "spent=$0.0000" in bar
    assert sent > 0 and api.count("/chat/completions") == 0
    assert again.best == first.best and again.spent == 0
    assert again.candidates[["candidate", "parent", "status"]].equals(
        first.candidates[["candidate", "parent", "status"]])


def test_a_search_that_stops_at_a_perfect_score_ends_its_bar_green(
        start_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # tqdm turns a widget bar closed before its total red ("danger"): a notebook that
    # found a perfect candidate at the first of 3 proposals was saved with a red bar, 1 of 3.
    bars: list[Bar] = []

    class Kept(Bar):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(optimize_module, "Bar", Kept)
    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)  # as in a Jupyter kernel
    with open_shell(), capture_output() as captured:
        result, _ = run(start_api, progress=True)
    assert result.search.stop_reason == "a candidate scored 1 on every training case"
    widget = bars[0]._bar.container.children[1]
    assert widget.bar_style == "success" and widget.value == widget.max == 1
    saved = captured.outputs[-1].data["text/plain"]  # the bar's last state, as saved
    assert captured.outputs[-1].update and saved.startswith("optimize: 1/3 done in ")
    assert "then stopped: a candidate scored 1 on every training case · best=1.000" in saved


def test_a_judge_reason_reaches_the_reflection_and_counts_in_the_spend(start_api: Any) -> None:
    judge = wb.scorers.judge("Is the answer in capitals?", model="gpt-4o-mini")
    result, api = run(start_api, scorers=[judge])
    reflections = [r for r in api.received if "I provided an assistant" in str(r.body)]
    assert reflections and "not in capitals" in str(reflections[0].body)
    assert HIDDEN in result.best
    judged = sum(1 for r in api.received if "response_format" in (r.body or {}))
    assert judged > 0 and float(result.spent) == pytest.approx(paid())


def paid() -> float:
    """Every answer the server sent, at its price, in any experiment (runs, judge calls,
    reflections): what the budget must bound."""
    runs = wb.runs()
    return float(runs.loc[~runs["cache_hit"].astype(bool), "cost_usd"].sum())


@pytest.mark.parametrize("budget", [0.0085])
def test_the_budget_is_never_overspent_reflections_and_judge_included(
        start_api: Any, budget: float) -> None:
    judge = wb.scorers.judge("Is the answer in capitals?", model="gpt-4o-mini")
    result, api = run(start_api, reflection="wander", scorers=[judge], budget=budget,
                      max_candidates=200)
    assert result.spent <= budget
    assert paid() <= budget
    assert api.count("/chat/completions") == len(wb.runs().query("~cache_hit"))
    assert "budget" in str(result.stop_reason)
    assert 1 < result.search.reflections < 200  # stopped by money, not by the count


def test_a_budget_below_the_start_is_refused_before_any_request(start_api: Any) -> None:
    api = start_api(HiddenInstructionServer())
    with pytest.raises(wb.BudgetExceededError, match="starting prompt"):
        wb.optimize("The word: {{word}}", **options(budget=0.00005))
    assert api.count("/chat/completions") == 0


def test_a_candidate_that_drops_a_variable_is_refused_unevaluated(start_api: Any) -> None:
    # Optimizing the user template: the proposal "Repeat the word. ..." loses {{word}}.
    result, api = run(start_api, reflection="drop", optimize="prompt", max_candidates=2)
    refused = result.candidates[result.candidates["status"].eq("refused")]
    assert len(refused) == 2 and refused["refused"].str.contains("{{word}}").all()
    assert refused["train_score"].isna().all() and refused["minibatch_score"].isna().all()
    users = [m["content"] for r in api.received for m in r.body["messages"]
             if m["role"] == "user"]
    assert "Repeat the word. Answer in CAPITALS." in refused["prompt"].tolist()
    assert "Repeat the word. Answer in CAPITALS." not in users  # never evaluated
    assert result.best == "The word: {{word}}"
    assert "no candidate" in str(result.validation)


def test_a_format_phrase_in_keep_must_stay(start_api: Any) -> None:
    result, _ = run(start_api, reflection="drop", system="Repeat the word, one line.",
                    keep=["one line"])
    refused = result.candidates[result.candidates["status"].eq("refused")]
    assert HIDDEN not in result.best
    assert refused["refused"].str.contains("output format").any()


def test_a_reflection_answering_nonsense_proposes_nothing_and_the_search_goes_on(
        start_api: Any) -> None:
    result, api = run(start_api, reflection="nonsense", max_candidates=3)
    frame = result.candidates
    assert result.search.reflections == 3  # each proposal was asked for; none evaluated
    assert (frame["status"].iloc[1:] == "refused").all()
    assert frame["refused"].iloc[1:].str.contains("no words").all()
    assert result.best == "Repeat the word."


def test_no_validation_case_is_sent_during_the_search(start_api: Any) -> None:
    result, api = run(start_api)
    held = {case["word"] for case in result.held}
    assert held and not held & {case["word"] for case in result.train}
    search_requests = api.received[: len(api.received) - 2 * len(held)]
    for request in search_requests:  # runs and reflections alike
        text = str(request.body)
        assert not any(w in text for w in held), text[:200]
    # The last 2 x len(held) requests are the validation: each held-out case twice.
    tail = [str(r.body) for r in api.received[-2 * len(held):]]
    assert sorted(w for w in held for t in tail if f"The word: {w}'" in t) == sorted(
        list(held) * 2)


def test_an_interrupted_search_resumes_from_the_table(
        start_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.optimize.search import Search

    api = start_api(HiddenInstructionServer())
    real = Search.reflect
    calls = {"n": 0}

    def interrupted(self: Search, prompt: str) -> str | None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # Ctrl-C during the first reflection
        return real(self, prompt)

    monkeypatch.setattr(Search, "reflect", interrupted)
    with pytest.raises(KeyboardInterrupt, match="run the same wb.optimize again"):
        wb.optimize("The word: {{word}}", **options())
    before = api.count("/chat/completions")
    assert before > 0  # the starting prompt's evaluation is in the table
    api.received.clear()
    result = wb.optimize("The word: {{word}}", **options())
    seeds = [r for r in api.received if "I provided" not in str(r.body)
             and "CAPITALS" not in str(r.body)]
    # Resumed: the start's runs were replayed, only what came after was sent.
    train = {case["word"] for case in result.train}
    assert not [r for r in seeds if any(f"The word: {w}'" in str(r.body) for w in train)]
    assert HIDDEN in result.best


def test_the_plot_draws_each_scored_candidate_over_spend(start_api: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    result, _ = run(start_api)
    ax = result.plot()
    scored = result.candidates.dropna(subset=["train_score"])
    points = ax.collections[0].get_offsets()
    assert len(points) == len(scored)
    assert [tuple(p) for p in points] == list(zip(scored["spent_usd"], scored["train_score"],
                                                  strict=True))
    assert ax.get_xlabel() == "spent (USD)"
