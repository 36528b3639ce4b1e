"""Results a person reads (wb.runs(), wb.scores, wb.stability, a sweep's points): a
formatted notebook view over a DataFrame whose values and dtypes code sees untouched."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.core.resultframe import MISSING, ResultFrame, frame_html, result_frame


def cells(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)]


def sample() -> pd.DataFrame:
    return pd.DataFrame({
        "output": ["Line one\nline two", None],
        "score": [0.725302, np.nan],
        "passed": pd.array([1, None], dtype="Int64"),
        "cost_usd": [0.00012, None],
        "value": [1.0, 1234.5678],
    })


def test_the_view_formats_what_pandas_shows_raw() -> None:
    plain = sample()
    raw = plain.to_html()
    assert "0.725302" in raw and "NaN" in raw and "&lt;NA&gt;" in raw
    page = result_frame(plain)._repr_html_()
    shown = cells(page)
    assert "0.725" in shown and "0.725302" not in page
    assert "1" in shown and "1.000000" not in page and "1,235" in shown
    assert "$0.00012" in shown
    assert "NaN" not in page and "&lt;NA&gt;" not in page and "None" not in page
    assert shown.count(MISSING) == 4  # None, NaN, <NA> and a missing cost: one way
    # Text keeps its line break as a line break (pre-wrap), not a literal "\n".
    assert "Line one\nline two" in page and "\\n" not in page
    assert re.search(r'<td class="wb-prose"[^>]*><div class="wb-text">Line one', page)
    assert re.search(r'<td class="wb-num"[^>]*>0.725</td>', page)  # numbers right, text left
    # Said inline too: a reopened notebook drops the <style> block.
    assert re.search(r'<td class="wb-num" style="text-align: right[^>]*>0.725</td>', page)
    assert re.search(r'<td class="wb-prose" style="text-align: left[^>]*><div', page)
    head = page.split("<thead>")[1].split("</thead>")[0]
    assert re.findall(r"<th( [^>]*)?>", head) and all(
        "text-align: left" in tag for tag in re.findall(r"<th( [^>]*)?>", head))
    ids = frame_html(pd.DataFrame({"id": ["0123456789abcdef0123456789abcdef"],
                                   "short": ["Name one colour of the sea."]}))
    assert 'class="wb-token" title="0123456789abcdef0123456789abcdef"' in ids  # one line
    assert '<div class="wb-words">Name one colour of the sea.</div>' in ids  # whole
    # Its own scroll box, so a wide result scrolls inside itself.
    assert 'class="wb-frame-scroll' in page and "overflow: auto" in page


def test_values_and_dtypes_are_untouched_and_derived_frames_are_plain() -> None:
    plain = sample()
    made = result_frame(plain)
    assert isinstance(made, pd.DataFrame) and isinstance(made, ResultFrame)
    assert made.dtypes.equals(plain.dtypes)
    pd.testing.assert_frame_equal(pd.DataFrame(made), plain)
    for derived in (made[["score"]], made.copy(), made.T, made.iloc[:1]):
        assert type(derived) is pd.DataFrame
    assert type(made.head(1)) is ResultFrame and type(made.tail(1)) is ResultFrame
    assert made.to_string() == plain.to_string()


def test_long_text_folds_and_long_frames_say_how_many_rows() -> None:
    page = frame_html(pd.DataFrame({"output": ["word " * 200]}))
    assert "<details>" in page and "1,000 characters" in page
    page = frame_html(pd.DataFrame({"n": range(100)}), max_rows=10)
    assert len(cells(page)) == 10 and "the first 10 of 100 rows" in page


def answer(request: Received) -> Reply:
    return chat_reply("Paris.\nThe capital.", model=request.body["model"],
                      prompt_tokens=12, completion_tokens=3)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> LoopbackAPI:
    with LoopbackAPI(answer) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield server


def test_runs_show_formatted_without_empty_columns(api: LoopbackAPI) -> None:
    wb.chat("Capital of France?", model="gpt-4o-mini", temperature=0.7)
    runs = wb.runs()
    assert isinstance(runs, ResultFrame)
    page = runs._repr_html_()
    assert "&lt;NA&gt;" not in page and ">NaN<" not in page and ">None<" not in page
    empty = [c for c in runs.columns if runs[c].isna().all()]
    assert empty and "empty column" in page
    header = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", page.split("</thead>")[0])
    assert sorted(h for h in header if h) == sorted(c for c in runs.columns if c not in empty)
    # The answer in view first (the frame itself keeps its reading order).
    assert header[1:6] == ["created_at", "model", "prompt", "output", "cost_usd"]
    assert list(runs.columns[:3]) == ["created_at", "experiment", "kind"]
    assert "Paris.\nThe capital." in page
    assert type(runs[["output"]]) is pd.DataFrame and len(runs.head(1)) == 1


def test_a_sweeps_points_head_and_scores_are_formatted(api: LoopbackAPI) -> None:
    s = wb.sweep("Capital of {{country}}?", vars={"country": ["France", "Spain"]},
                 grid={"model": ["gpt-4o-mini"], "temperature": [0.0, 1.0]})
    head = s.points.head()
    assert isinstance(head, ResultFrame) and "wb-frame-scroll" in head._repr_html_()
    s.run()
    wb.score(s, wb.scorers.contains("Paris"))
    scores = wb.scores()
    assert isinstance(scores, ResultFrame)
    assert "1.000000" not in scores._repr_html_() and "0.000000" not in scores._repr_html_()
