"""wb.optimize on a loopback server (tests/optimize_server.py) where only prompts with a
hidden instruction answer right and a reflection model proposes it when shown failures."""

from __future__ import annotations

from typing import Any

import pytest
from optimize_server import HIDDEN, HiddenInstructionServer

import workbench as wb

WORDS = [f"item{i:02d}" for i in range(40)]
CASES = [{"word": w, "expected": w.upper()} for w in WORDS]


def run(start_api: Any, reflection: str = "helpful", **kwargs: Any) -> tuple[Any, Any]:
    api = start_api(HiddenInstructionServer(reflection=reflection))
    options: dict[str, Any] = {
        "system": "Repeat the word.", "data": CASES,
        "scorers": wb.scorers.contains(case=True), "model": "gpt-4o-mini",
        "max_tokens": 20, "max_candidates": 3, "experiment": "caps", "progress": False,
        "budget": 1.0}
    options.update(kwargs)
    return wb.optimize("The word: {{word}}", **options), api


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
    assert "<ins>" in result.diff()._repr_html_()
    # Each evaluation is a sweep of the experiment, each reflection a call in it.
    runs = wb.runs(experiment="caps:optimize")
    assert (~runs["cache_hit"]).sum() == api.count("/chat/completions")


def test_a_rerun_replays_the_whole_search_with_no_request(start_api: Any) -> None:
    first, api = run(start_api)
    sent = api.count("/chat/completions")
    api.received.clear()
    again, _ = run(start_api)
    assert sent > 0 and api.count("/chat/completions") == 0
    assert again.best == first.best and again.spent == 0
    assert again.candidates[["candidate", "parent", "status"]].equals(
        first.candidates[["candidate", "parent", "status"]])
