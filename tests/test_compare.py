"""wb.compare: outputs side by side, differences from the baseline marked, HTML made safe."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.calls.session import get_session
from workbench.core.record import RunRecord, new_run_id
from workbench.notebook.compare import Comparison

ANSWERS = {
    ("Capital of France?", 0.0): "The capital is Paris.",
    ("Capital of France?", 1.0): "The capital is Lyon.",
    ("Capital of Spain?", 0.0): "Madrid.",
    ("Capital of Spain?", 1.0): "Madrid, surely.",
}


def answer(request: Received) -> Reply:
    prompt = request.body["messages"][-1]["content"]
    return chat_reply(ANSWERS[prompt, request.body["temperature"]], model=request.body["model"],
                      prompt_tokens=12, completion_tokens=3)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[LoopbackAPI]:
    with LoopbackAPI(answer) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield server


@pytest.fixture
def capitals(api: LoopbackAPI) -> pd.DataFrame:
    for prompt in ("Capital of France?", "Capital of Spain?"):
        for temperature in (0.0, 1.0):
            wb.chat(prompt, model="gpt-4o-mini", temperature=temperature)
    return wb.runs()


def run(**fields: Any) -> RunRecord:
    values: dict[str, Any] = {
        "kind": "chat", "provider": "openai", "model": "m", "prompt": "Hi", "output": "Hello.",
        "prompt_tokens": 4, "completion_tokens": 2, "cost_usd": 0.25, "latency_s": 1.5,
        "request_hash": new_run_id(),
    }
    values.update(fields)
    return RunRecord(**values)


def stored(*records: RunRecord) -> pd.DataFrame:
    for record in records:
        get_session().store.append(record)
    return wb.runs()


def cells(page: str) -> list[str]:
    """The table's cells, their <ins>/<del> without the inline style (test_worddiff.py)."""
    return [re.sub(r"<(ins|del) style='[^']*'>", r"<\1>", cell)
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", page, flags=re.S)]


def test_one_row_per_prompt_one_column_per_knob_value(capitals: pd.DataFrame) -> None:
    table = wb.compare(capitals)
    assert isinstance(table, Comparison)
    assert list(table.df.index) == ["Capital of France?", "Capital of Spain?"]
    assert table.df.index.name == "prompt"
    assert list(table.df.columns) == ["temperature=0", "temperature=1"]
    assert table.df.loc["Capital of Spain?", "temperature=1"] == "Madrid, surely."
    assert table.baseline == "temperature=0"
    assert "temperature=1" in repr(table)


def test_changed_words_are_marked_against_the_baseline(capitals: pd.DataFrame) -> None:
    page = wb.compare(capitals)._repr_html_()
    france_0, france_1, spain_0, spain_1 = cells(page)
    assert "<del>Paris</del> <ins>Lyon</ins>." in france_1
    assert "The capital is " in france_1 and "<ins>The" not in france_1
    assert re.search(r"Madrid<ins>, surely</ins>\.", spain_1)
    # The baseline column itself is shown plain.
    assert "<ins>" not in france_0 + spain_0 and "<del>" not in france_0 + spain_0
    assert "(baseline)" in page.split("temperature=1")[0]


def test_another_baseline_reverses_the_marks(capitals: pd.DataFrame) -> None:
    for baseline in ("temperature=1", "temperature=1.0", 1.0, {"temperature": 1}):
        table = wb.compare(capitals, baseline=baseline)
        assert table.baseline == "temperature=1"
        france_0 = cells(table._repr_html_())[0]
        assert "<del>Lyon</del> <ins>Paris</ins>" in france_0
    with pytest.raises(ValueError, match=r"no column .* \['temperature=0', 'temperature=1'\]"):
        wb.compare(capitals, baseline=0.5)
    with pytest.raises(ValueError, match="did you mean 'temperature'"):
        wb.compare(capitals, baseline="temprature=0")
    with pytest.raises(ValueError, match="not among"):
        wb.compare(capitals, baseline={"seed": 1})


def test_each_cell_has_its_tokens_cost_and_latency_in_small_print() -> None:
    df = stored(
        run(seed=1, cost_usd=0.25, latency_s=1.5),
        run(seed=2, cost_usd=None, latency_s=0.25),
        run(seed=3, cache_hit=True, cost_usd=0.0, latency_s=0.0),
    )
    metas = re.findall(r'<div class="wb-meta">(.*?)</div>', wb.compare(df)._repr_html_())
    assert metas[0] == "4→2 tokens · $0.25 · 1.50 s"
    assert metas[1] == "4→2 tokens · cost unknown · 0.25 s"
    assert metas[2] == "4→2 tokens · replayed"


def test_output_html_is_escaped() -> None:
    df = stored(
        run(seed=1, output="Safe."),
        run(seed=2, output="Safe.<script>alert('x')</script>", prompt="Hi"),
        run(seed=1, prompt="<img src=x onerror=alert(1)>", output="<b>bold</b>"),
    )
    page = wb.compare(df)._repr_html_()
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # ...and .df holds the text as it was.
    assert wb.compare(df).df.loc["Hi", "seed=2"] == "Safe.<script>alert('x')</script>"


def test_a_long_output_is_folded_whole() -> None:
    long = " ".join(f"word{i}" for i in range(400)) + " THE-END"
    page = wb.compare(stored(run(seed=1, output="short"), run(seed=2, output=long)))._repr_html_()
    folded = re.search(r"<details><summary>(.*?)</summary>(.*?)</details>", page, flags=re.S)
    assert folded is not None
    assert "word0 word1" in folded.group(1) and "characters" in folded.group(1)
    assert "word399" in folded.group(2) and "THE-END" in folded.group(2)
    assert page.count("<details>") == 1  # the short one is not folded


def test_default_columns_are_the_knobs_that_vary() -> None:
    df = stored(
        *(run(model=model, temperature=t, seed=7, output=f"{model} at {t}")
          for model in ("b", "a") for t in (None, 0.5))
    )
    table = wb.compare(df)
    assert list(table.df.columns) == [
        "model=a · temperature=0.5", "model=a · temperature=not set",
        "model=b · temperature=0.5", "model=b · temperature=not set",
    ]
    assert table.df.iloc[0].tolist() == ["a at 0.5", "a at None", "b at 0.5", "b at None"]
    by_model = wb.compare(df, by="model")
    assert list(by_model.df.columns) == ["model=a", "model=b"]
    assert list(wb.compare(stored()[:0]).df.columns) == []


def test_a_sweep_with_variables_names_its_rows_by_them() -> None:
    df = stored(
        *(run(prompt=f"Capital of {c}?", variables=json.dumps({"country": c}), seed=s,
              output=f"{c} {s}") for c in ("France", "Spain") for s in (1, 2))
    )
    table = wb.compare(SimpleNamespace(df=df), by=["seed"])
    assert table.df.index.name == "variables"
    assert list(table.df.index) == ["country=France", "country=Spain"]
    assert table.df.shape == (2, 2)


def test_an_error_shows_in_its_cell_and_a_success_wins_over_a_later_error() -> None:
    first = run(seed=1, output="Fine.")
    df = stored(
        first,
        run(seed=1, request_hash=first.request_hash, status="error", output=None,
            error="rate limited <429>"),
        run(seed=2, status="error", output=None, error="bad <request>", cost_usd=None),
    )
    table = wb.compare(df)
    assert table.df.loc["Hi"].tolist() == ["Fine.", None]
    page = table._repr_html_()
    assert "error: bad &lt;request&gt;" in page and "rate limited" not in page
    assert "Fine." in cells(page)[0]


# -- issue 13: readable in both themes, a diff that reads as phrases, every sample ------


def test_colours_come_from_the_theme_and_text_is_left_aligned() -> None:
    page = wb.compare(stored(run(seed=1), run(seed=2, output="Hi.")))._repr_html_()
    style = page[: page.index("</style>")]
    assert not re.search(r"#[0-9a-fA-F]{3,6}\b", style)  # no colour fixed for one theme
    assert "var(--jp-error-color1)" in style and "text-align: left !important" in style
    assert 'class="wb-scroll' in page  # wide tables scroll inside the output
    # A reopened (untrusted) notebook drops the <style>: each cell says it again inline.
    body = re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    tags = re.findall(r"<t[dh]( [^>]*)?>", body[body.index("<tbody>"):])
    assert len(tags) == 3 and all("text-align: left" in attributes for attributes in tags)
    headers = re.findall(r"<th( [^>]*)?>", body[body.index("<thead>"):body.index("</thead>")])
    assert len(headers) == 3 and all("text-align: left" in attributes for attributes in headers)


def test_deleted_and_inserted_words_are_phrases_kept_apart() -> None:
    df = stored(
        run(seed=1, output="The sun set over the hills."),
        run(seed=2, output="The moon rose over the hills."),
    )
    _, second = cells(wb.compare(df)._repr_html_())
    # Semantic clean-up: one change of a phrase, not "sun"→"moon" and "set"→"rose" apart.
    assert "<del>sun set</del> <ins>moon rose</ins>" in second


def test_very_different_outputs_are_shown_plainly_and_say_so() -> None:
    df = stored(
        run(seed=1, output="Paris is the capital of France."),
        run(seed=2, output="Bananas grow in warm humid climates near rivers."),
    )
    _, second = cells(wb.compare(df)._repr_html_())
    assert "<ins>" not in second and "<del>" not in second
    assert "Bananas grow in warm humid climates near rivers." in second
    assert "too different from the baseline" in second


def test_the_diff_can_be_switched_off() -> None:
    df = stored(run(seed=1, output="The sun set."), run(seed=2, output="The moon set."))
    page = wb.compare(df, diff=False)._repr_html_()
    assert "<ins" not in page and "<del" not in page and "The moon set." in page


def test_every_sample_of_a_cell_is_shown_and_the_rest_counted() -> None:
    records = [
        run(temperature=t, seed=s, output=f"answer t{t} s{s}")
        for t in (0.0, 1.0) for s in range(5)
    ]
    page = wb.compare(stored(*records), by="temperature", diff=False)._repr_html_()
    assert "latest of" not in page
    for s in range(5):
        assert f"answer t1.0 s{s}" in page
    assert "sample 1 of 5" in page and "2 more samples" in page


def test_a_cut_answer_is_marked_in_its_cell() -> None:
    df = stored(run(seed=1), run(seed=2, finish_reason="length", completion_tokens=40))
    _, second = cells(wb.compare(df)._repr_html_())
    assert "cut at 40 tokens" in second
    filtered = stored(run(seed=3, finish_reason="content_filter", prompt="Other"))
    assert "content filtered" in wb.compare(filtered)._repr_html_()


def test_every_view_reads_which_runs_one_way_with_one_error(capitals: pd.DataFrame) -> None:
    from workbench.core.selection import TAKES, RunsSelectionError
    from workbench.notebook.review import ReviewPanel

    experiment = str(capitals["experiment"].iloc[0])
    by_name = wb.compare(experiment, by="temperature")
    by_frame = wb.compare(capitals, by="temperature")
    ids = capitals["run_id"].tolist()
    by_ids = wb.compare(ids, by="temperature")
    assert by_name.df.equals(by_frame.df) and by_ids.df.equals(by_frame.df)
    assert len(wb.plots.tokens(experiment).patches) == len(wb.plots.tokens(capitals).patches)
    views = {
        "wb.compare": wb.compare,
        "wb.plots": wb.plots.cost,
        "wb.score": lambda data: wb.score(data, wb.scorers.contains("Paris")),
        "wb.ReviewPanel": ReviewPanel,
    }
    for name, view in views.items():
        with pytest.raises(RunsSelectionError) as refused:
            view(42)
        assert str(refused.value) == f"{name} takes {TAKES}, not int"
        assert isinstance(refused.value, (TypeError, wb.InvalidInputError))
        with pytest.raises(RunsSelectionError, match="experiment 'nope' has no runs"):
            view("nope")
    with pytest.raises(RunsSelectionError, match="no run with id r-missing"):
        wb.compare([ids[0], "r-missing"])


def test_a_sweep_and_compare_label_the_same_runs_alike(api: LoopbackAPI) -> None:
    # Given as floats (as %%chat --temperature 0,1 gives them), given with a knob not sent:
    # the sweep table and wb.compare of the same runs have the same columns.
    s = wb.sweep("Capital of {{country}}?", vars={"country": ["France", "Spain"]},
                 grid={"model": ["gpt-4o-mini"], "temperature": [0.0, 1.0]})
    s.run()
    assert list(s.table().columns) == ["temperature=0", "temperature=1"]
    assert list(wb.compare(s).df.columns) == list(s.table().columns)
    assert list(wb.compare(s.df, by="temperature").df.columns) == list(s.table().columns)


def test_one_labelling_of_knob_values() -> None:
    from workbench.notebook.pivot import column_label as compare_label
    from workbench.sweeps.sidebyside import column_label

    assert column_label({"temperature": 1.0, "seed": None}) == "temperature=1 · seed=not set"
    assert column_label({"temperature": 0.7, "top_p": 0.30000000000000004}) == (
        "temperature=0.7 · top_p=0.30000000000000004")
    assert column_label({"system": "x" * 60}).endswith("…")
    assert compare_label(["temperature", "seed"], (1.0, "not set")) == (
        "temperature=1 · seed=not set")


def test_the_sweep_panels_token_chart_labels_its_bars_alike(api: LoopbackAPI) -> None:
    from workbench.notebook.tokenchart import token_usage_svg

    s = wb.sweep("Capital of {{country}}?", vars={"country": ["France", "Spain"]},
                 grid={"model": ["gpt-4o-mini"], "temperature": [0.0, 1.0]})
    s.run()
    svg = token_usage_svg(s.df, ["temperature"])
    for label in s.table().columns:
        assert f">{label}<" in svg
    assert "temperature=1.0" not in svg
