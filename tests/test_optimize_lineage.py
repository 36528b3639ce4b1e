"""wb.optimize's lineage in the table (issue 25): each training evaluation's runs carry the
candidate's id, its parent's and the run id of the reflection that proposed it, so a
second session on the same store (SQLite, or the team's PostgreSQL) reads the candidates
back with no request; an export carries the columns. And the diff of the best against
the start is the word diff wb.compare marks outputs with (one implementation)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from optimize_server import HIDDEN, HiddenInstructionServer
from store_backends import chat_run
from test_optimize import options

import workbench as wb
from workbench.calls.session import Session
from workbench.core.worddiff import diff_html
from workbench.notebook.compare import Comparison
from workbench.optimize.lineage import candidate_key, stored_candidates
from workbench.optimize.result import TextDiff
from workbench.store import SQLiteStore
from workbench.store.copying import import_runs


def _plain(value: Any) -> Any:
    return None if value is None or pd.isna(value) else value


def _lineage(frame: pd.DataFrame) -> dict[str, tuple[Any, Any]]:
    return {row.candidate: (_plain(row.parent), _plain(row.reflection))
            for row in frame.itertuples()}


def test_a_second_session_reads_the_candidates_and_their_lineage(
    start_api: Any, backend: str
) -> None:
    api = start_api(HiddenInstructionServer())
    result = wb.optimize("The word: {{word}}", **options())
    mine = result.candidates
    evaluated = mine[mine["train_score"].notna() | mine["minibatch_score"].notna()]
    evaluated = evaluated[~evaluated["status"].str.startswith("same as")]
    keys = dict(zip(mine["candidate"], mine["candidate_id"], strict=True))
    wanted = {row.candidate_id: (None if pd.isna(row.parent) else keys[row.parent],
                                 _plain(row.reflection_run))
              for row in evaluated.itertuples()}
    assert len(wanted) >= 2 and sum(parent is not None for parent, _ in wanted.values())
    sent = api.count()

    colleague = Session()  # the same WORKBENCH_STORE: the SQLite file or the PostgreSQL URL
    try:
        table = stored_candidates("caps:optimize", store=colleague.store)
    finally:
        colleague.close_store()

    assert api.count() == sent  # read from the table, nothing sent
    assert _lineage(table) == wanted
    seed = table.iloc[0]
    assert seed["candidate"] == candidate_key("The word: {{word}}", "Repeat the word.")
    assert seed["cases"] == len(result.train)
    assert seed["score:contains"] == mine.loc[0, "train_score"]
    best = table.set_index("candidate").loc[mine.loc[mine["best"], "candidate_id"].iloc[0]]
    assert HIDDEN in best["system"] and best["score:contains"] == 1.0
    assert "capitalised" in best["reflection_text"]  # the reflection call's own answer

    # A re-run replays the search (new replay rows, the same lineage): the same table.
    again = wb.optimize("The word: {{word}}", **options())
    assert api.count() == sent
    assert list(again.candidates["candidate_id"]) == list(mine["candidate_id"])
    pd.testing.assert_frame_equal(again.stored_candidates(), table)
    pd.testing.assert_frame_equal(wb.optimize_candidates("caps"), table)


def test_an_export_carries_the_lineage(tmp_path: Path) -> None:
    marked = chat_run(1, candidate="0123456789ab", parent="ba9876543210",
                      reflection="00000000000000010000000000000002")
    with SQLiteStore(tmp_path / "mine.db") as mine:
        mine.append(marked)
        exported = mine.export(tmp_path / "runs.jsonl")
    with SQLiteStore(tmp_path / "theirs.db") as theirs:
        assert import_runs(theirs, exported) == 1
        row = theirs.runs().iloc[0]
    assert (row.candidate, row.parent, row.reflection) == (
        marked.candidate, marked.parent, marked.reflection)


def test_a_sweep_refuses_a_mark_that_is_not_lineage(start_api: Any) -> None:
    start_api(HiddenInstructionServer())
    s = wb.sweep("Hi {{x}}", vars={"x": ["a"]}, model="gpt-4o-mini")
    with pytest.raises(wb.InvalidInputError, match="candidate, parent, reflection"):
        s.mark(output="forged")


def test_the_optimize_diff_is_the_compare_views_word_diff() -> None:
    before, after = "Repeat the word. Be brief.", "Repeat the word in CAPITALS. Be brief, always."
    shown = TextDiff(before, after)._repr_html_()
    # Words, spaces and punctuation are tokens: "brief" is kept and ", always" added (a
    # diff of space-separated chunks marked "brief." removed and "brief, always." added).
    assert re.search(r"Be brief<ins [^>]*>, always</ins>\.", shown)
    assert diff_html(before, after) in shown
    frame = pd.DataFrame([
        {"run_id": "a", "created_at": "2026-01-01", "status": "ok", "prompt": "p",
         "model": "m", "temperature": 0.0, "output": before},
        {"run_id": "b", "created_at": "2026-01-02", "status": "ok", "prompt": "p",
         "model": "m", "temperature": 1.0, "output": after},
    ])
    assert diff_html(before, after) in wb.compare(frame, by="temperature")._repr_html_()
    assert isinstance(wb.compare(frame, by="temperature"), Comparison)
