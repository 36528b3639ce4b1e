"""The sweep table's HTML: scrolls sideways, folds long outputs, small print per cell."""

from __future__ import annotations

import re

import pandas as pd

from workbench.sweeps.sidebyside import cell_note, table_html


def test_a_cell_says_it_was_cut_and_gives_its_numbers() -> None:
    row = {"status": "ok", "finish_reason": "length", "prompt_tokens": 39,
           "completion_tokens": 24, "cost_usd": 0.00042, "latency_s": 1.5}
    assert cell_note(row) == "⚠ cut at 24 tokens\n39→24 tok · $0.00042 · 1.50 s"
    replay = {"status": "ok", "prompt_tokens": 3, "completion_tokens": 1, "cache_hit": True}
    assert cell_note(replay) == "3→1 tok · from the table"
    assert cell_note({"status": "ok", "finish_reason": "content_filter"}).startswith(
        "⚠ content filtered")


def test_the_table_scrolls_folds_and_keeps_money_out_of_maths() -> None:
    table = pd.DataFrame({"t=0": ["short", "long " * 200]}, index=pd.Index(["a", "b"]))
    notes = pd.DataFrame({"t=0": ["1→1 tok · $0.001", "⚠ cut at 9 tokens\n1→9 tok · $2"]},
                         index=table.index)
    page = table_html(table, notes)
    assert 'class="wb-sweep-scroll tex2jax_ignore mathjax_ignore"' in page
    # It scrolls inside its own box (both ways: a tall table keeps its header in view).
    assert "position: sticky" in page and "overflow: auto" in page and "max-height" in page
    assert page.count("<details>") == 1 and "(1,000 characters)" in page
    assert '<div class="wb-flag">⚠ cut at 9 tokens</div>' in page
    style = page.split("</style>")[0]
    assert not re.search(r"#[0-9a-fA-F]{3,6}\b", style) and "var(--jp-" in style


def test_one_header_row_with_the_row_names_in_its_corner() -> None:
    index = pd.MultiIndex.from_tuples([("a", "b"), ("c", "d")], names=["city", "<size>"])
    table = pd.DataFrame({"t=0": ["x", "y"], "t=1": ["z", "w"]}, index=index)
    table.columns.name = "knobs"
    head = table_html(table).split("<thead>")[1].split("</thead>")[0]
    assert head.count("<tr") == 1
    assert re.findall(r"<th(?: [^>]*)?>(.*?)</th>", head) == ["city", "&lt;size&gt;", "t=0", "t=1"]


def test_prose_is_left_aligned_even_without_the_style_block() -> None:
    # A reopened (untrusted) notebook drops <style>; JupyterLab right-aligns table cells.
    table = pd.DataFrame({"t=0": ["A long answer."]}, index=pd.Index(["Hi"], name="prompt"))
    body = table_html(table).split("</style>", 1)[1]
    tags = re.findall(r"<t[dh]( [^>]*)?>", body)
    assert len(tags) == 4 and all("text-align: left" in attributes for attributes in tags)


def test_with_several_row_labels_only_the_first_stays_in_view() -> None:
    index = pd.MultiIndex.from_tuples(
        [("Say {{x}}", "a"), ("Say {{x}}", "b")], names=["prompt", "x"]
    )
    page = table_html(pd.DataFrame({"t=0": ["1", "2"]}, index=index))
    body = page.split("<tbody>")[1]
    rows = body.split("</tr>")[:2]
    # Every row has both labels (no rowspan), so a row's first cell is its first label.
    assert all(row.count("<th") == 2 for row in rows) and "rowspan" not in body
    style = page.split("</style>")[0]
    sticky = re.findall(r"([^{}]+)\{[^}]*position: sticky", style)
    # The header row sticks to the top; of the row labels only the first sticks left.
    assert [s.strip() for s in sticky] == [
        "table.wb-sweep thead th", "table.wb-sweep tbody th:first-child",
        "table.wb-sweep thead th:first-child"]


def test_one_html_table_helper_writes_the_views_tables() -> None:
    from workbench.core.htmltable import html_table

    left = 'style="text-align: left; vertical-align: top"'
    right = 'style="text-align: right; vertical-align: top"'
    assert html_table(["", "t=&lt;0&gt;"], [(["a"], ["<b>x</b>"])], classes="c") == (
        f'<table class="c"><thead><tr><th {left}></th><th {left}>t=&lt;0&gt;</th></tr></thead>'
        f"<tbody><tr><th {left}>a</th><td {left}><b>x</b></td></tr></tbody></table>")
    # Every cell aligned inline (a reopened notebook drops <style>): numbers right.
    assert html_table(None, [(["k"], ["v", "2"])], column_classes=["wb-short", "wb-num"]) == (
        f'<table><tr><th {left}>k</th><td class="wb-short" {left}>v</td>'
        f'<td class="wb-num" {right}>2</td></tr></table>')
    # The sweep table is written by it: the same rows, the same markup.
    table = pd.DataFrame({"t=0": ["hi"]}, index=pd.Index(["a"], name="city"))
    expected = html_table(["city", "t=0"], [(["a"], ['<div class="wb-text">hi</div>'])],
                          classes="dataframe wb-sweep", attributes='border="0"')
    assert expected in table_html(table)
