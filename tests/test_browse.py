"""Reading the table: wb.runs() in reading order, wb.browse()'s rows, %workbench runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

import workbench as wb
from workbench.calls.session import get_session
from workbench.core.record import COLUMNS, RunRecord
from workbench.notebook.runtable import reading_order
from workbench.notebook.runtable.grid import RunsBrowser, browse_rows

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def add(**fields: object) -> RunRecord:
    values: dict[str, object] = {
        "kind": "chat", "provider": "openai", "model": "gpt-4o-mini", "prompt": "Hi",
        "output": "Hello", "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.00042,
        "latency_s": 0.5, "temperature": 0.7, "seed": 1,
    }
    values.update(fields)
    record = RunRecord(**values)  # type: ignore[arg-type]
    get_session().store.append(record)
    return record


def test_wb_runs_puts_what_people_read_first_and_ids_last() -> None:
    add()
    df = wb.runs()
    assert list(df.columns[:11]) == [
        "created_at", "experiment", "kind", "model", "temperature", "top_p", "seed",
        "max_tokens", "system", "prompt", "output",
    ]
    assert list(df.columns[-9:]) == [
        "run_id", "sweep_id", "request_hash", "sample_index", "params", "messages",
        "template", "variables", "tool_calls",
    ]
    assert sorted(df.columns) == sorted(COLUMNS)
    # The store itself keeps the table's storage order (SQL and exports rely on it).
    assert tuple(get_session().store.runs().columns) == COLUMNS


def test_a_column_added_later_lands_between_the_read_and_the_ids() -> None:
    df = pd.DataFrame(columns=["run_id", "score", "model", "params", "created_at"])
    assert list(reading_order(df).columns) == ["created_at", "model", "score", "run_id", "params"]


def test_browse_rows_are_newest_first_with_readable_cells() -> None:
    add(created_at=T0, prompt="first")
    add(created_at=T0 + timedelta(seconds=1), prompt="second", status="error",
        error="HTTP 500: the GPU caught fire", output=None, cost_usd=None)
    add(created_at=T0 + timedelta(seconds=2), prompt="third " * 2000, cache_hit=True)
    rows = browse_rows(wb.runs())
    assert [r["prompt"][1][:6] for r in rows] == ["third ", "second", "first"]
    newest, failed, oldest = rows
    assert len(newest["prompt"][1]) == 4000  # folded in the browser, capped on the wire
    assert newest["status"][1] == "ok · cached"
    assert failed["status"][1] == "error: HTTP 500: the GPU caught fire"
    assert failed["cost"] == [None, ""] and failed["output"][1] == ""
    assert oldest["tokens"] == [15.0, "10→5"] and oldest["cost"][1] == "$0.00042"
    assert oldest["knobs"][1] == "t=0.7 · seed=1" and oldest["latency"][1] == "0.50 s"


def test_browse_is_a_widget_whose_saved_form_is_a_short_text_table() -> None:
    add(prompt="What is a haiku?")
    grid = wb.browse()
    assert isinstance(grid, RunsBrowser) and len(grid.rows) == 1
    data, _ = grid._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"].startswith("1 runs, newest first")
    assert "What is a haiku?" in data["text/plain"]
    # The answer early (in view at 1,400 px without scrolling sideways); knobs under the model.
    assert [c[0] for c in grid.columns][:4] == ["time", "model", "prompt", "output"]
    assert "knobs" not in [c[0] for c in grid.columns] and "knobs" in grid.rows[0]
