"""wb.optimize on the real local model (the embedded llama.cpp server): the model answers
and reflects; whatever it proposes, the search ends within its fixed number of calls, every
call is a row of the table, and a re-run replays it."""

from __future__ import annotations

from typing import Any

import pytest

import workbench as wb

CAPITALS = [("France", "Paris"), ("Italy", "Rome"), ("Japan", "Tokyo"), ("Spain", "Madrid"),
            ("Egypt", "Cairo"), ("Peru", "Lima")]
CASES = [{"country": c, "expected": city} for c, city in CAPITALS]


def search() -> Any:
    return wb.optimize("What is the capital of {{country}}?", system="Answer briefly.",
                       data=CASES, scorers=wb.scorers.contains(), max_candidates=1,
                       minibatch=2, temperature=0, max_tokens=12, reflection_max_tokens=60,
                       experiment="capitals", progress=False)


@pytest.mark.integration
@pytest.mark.timeout(900)  # a busy 2-core machine: each reflection takes ~10-70 s here
def test_a_search_on_the_local_model_ends_and_replays() -> None:
    result = search()
    frame = result.candidates
    assert result.spent == 0  # the local model is free
    assert result.search.reflections <= 1
    assert frame.loc[0, "train_score"] is not None
    assert set(frame["status"]) <= {"seed", "proposed", "refused"}
    runs = wb.runs(experiment="capitals:optimize")
    sent = int((~runs["cache_hit"].astype(bool)).sum())
    assert sent > len(result.train)  # the start's evaluation and at least one reflection
    again = search()
    runs = wb.runs(experiment="capitals:optimize")
    assert int((~runs["cache_hit"].astype(bool)).sum()) == sent  # nothing new was sent
    assert again.best == result.best
