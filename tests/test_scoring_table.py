"""The scores table's fast paths (workbench/scoring/table.py, builtin.py): each must
store and return exactly what the plain path does, on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pandas as pd
import pytest

import workbench as wb
from workbench.calls.session import get_session
from workbench.core.record import RunRecord
from workbench.scoring.base import Item
from workbench.scoring.table import NewScores, write_many, write_scores

S = wb.scorers


@pytest.mark.parametrize(
    "text",
    ["", " ", "{}", ' \t\n\r{"a": 1}', "[1]", '"a"', "-1", "1.5", "true", "false", "null",
     "NaN", "Infinity", "-Infinity", "nul", "tru", "Answer 1", "\ufeff{}", "\u00a0{}",
     "{'a': 1}", '{"a":', "0x1", "1 2", "+1", ".5", "None", "I", "N", "\v{}"],
)
def test_is_json_agrees_with_json_loads(text: str) -> None:
    try:
        json.loads(text)
        parses = True
    except ValueError:
        parses = False
    assert S.is_json().score(Item(output=text)).passed is parses


def stored_rows(path: Any) -> list[tuple[Any, ...]]:
    """What is in the file, read by a connection of its own (not the process's cache)."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT run_id, scorer, scorer_id, value, passed, reason,"
                            " judge_run_id FROM scores ORDER BY scorer, run_id").fetchall()


def add_runs(*outputs: str) -> list[str]:
    store = get_session().store
    ids = []
    for i, output in enumerate(outputs):
        record = RunRecord(kind="chat", provider="openai", model="gpt-4o-mini",
                           experiment="exp", output=output, request_hash=f"h{i}")
        store.append(record)
        ids.append(record.run_id)
    return ids


@pytest.mark.parametrize("name", ["o'brien", "say \"hi\"; DROP TABLE scores; --", "nul\0name"])
@pytest.mark.parametrize("needle", ["it's", "a\0b", "plain"])
def test_scores_written_with_quotes_or_nul_read_back_as_given(
    isolated_store: Any, name: str, needle: str
) -> None:
    yes, no = add_runs(f"so {needle} here", "nothing")
    scorer = S.contains(needle, case=True, name=name)
    out = wb.score("exp", scorer)
    assert stored_rows(isolated_store) == [  # run ids sort by creation: yes first
        (yes, name, scorer.id, 1.0, 1, f"contains {needle!r}", None),
        (no, name, scorer.id, 0.0, 0, f"does not contain {needle!r}", None),
    ]
    assert out.set_index("run_id").loc[yes, "reason"] == f"contains {needle!r}"


def test_general_scores_keep_none_values_verdicts_and_judge_runs(isolated_store: Any) -> None:
    new = NewScores("judge's", "judge's:1", run_ids=["r1", "r2"], values=[None, 4.0],
                    passed=[None, True], reasons=["could not read", "fine"],
                    judge_run_ids=[None, "j2"])
    write_scores(get_session().store, new)
    assert stored_rows(isolated_store) == [
        ("r1", "judge's", "judge's:1", None, None, "could not read", None),
        ("r2", "judge's", "judge's:1", 4.0, 1, "fine", "j2"),
    ]


def test_a_yes_no_frame_is_the_plain_frame() -> None:
    verdicts = [True, False, False, True]
    columns: dict[str, Any] = dict(
        run_ids=["a", "b", "c", "d"], values=[1.0 if v else 0.0 for v in verdicts],
        passed=verdicts, reasons=["yes" if v else "no" for v in verdicts],
        judge_run_ids=[None] * 4,
    )
    plain = NewScores("contains", "contains:1", **columns)
    fast = NewScores("contains", "contains:1", created_at=plain.created_at,
                     yes_no=("yes", "no"), **columns)
    pd.testing.assert_frame_equal(fast.frame(), plain.frame())


def test_several_scorers_written_together_come_back_in_order(isolated_store: Any) -> None:
    first = NewScores("a", "a:1", run_ids=["r1"], values=[1.0], passed=[True],
                      reasons=["yes"], judge_run_ids=[None], yes_no=("yes", "no"))
    nothing = NewScores("b", "b:1")
    last = NewScores("c", "c:1", run_ids=["r1", "r2"], values=[0.5, None], passed=[None, None],
                     reasons=["half", "none"], judge_run_ids=[None, None])
    frames = write_many(get_session().store, [first, nothing, last])
    assert [len(f) for f in frames] == [1, 0, 2]
    assert [f.scorer.tolist() for f in frames] == [["a"], [], ["c", "c"]]
    assert [row[:4] for row in stored_rows(isolated_store)] == [
        ("r1", "a", "a:1", 1.0), ("r1", "c", "c:1", 0.5), ("r2", "c", "c:1", None)]


@pytest.mark.parametrize("yes_no", [("yes", "no"), None])
def test_scores_of_runs_out_of_order_are_stored_by_run_and_returned_in_order(
    isolated_store: Any, yes_no: tuple[str, str] | None
) -> None:
    run_ids, verdicts = ["r3", "r1", "r2"], [True, False, True]
    new = NewScores("c", "c:1", run_ids=run_ids, values=[1.0 if v else 0.0 for v in verdicts],
                    passed=verdicts, reasons=["yes" if v else "no" for v in verdicts],
                    judge_run_ids=[None] * 3, yes_no=yes_no)
    frame = write_scores(get_session().store, new)
    assert frame.run_id.tolist() == run_ids and frame.passed.tolist() == verdicts
    assert [(row[0], row[4], row[5]) for row in stored_rows(isolated_store)] == [
        ("r1", 0, "no"), ("r2", 1, "yes"), ("r3", 1, "yes")]
