"""Datasets of test cases: every vars= form, versions by content, the m004 migration on an
existing store, dataset sweeps (loopback and the real local model), export/import, and bad
input refused in one line before anything is sent."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.core.record import COLUMNS, RunRecord
from workbench.notebook.widgets import SweepPanel
from workbench.scoring.datasets import Dataset, as_dataset
from workbench.store import SQLiteStore, migrations

CASES = [
    {"city": "Paris", "expected": "France"},
    {"city": "Rome", "expected": "Italy"},
    {"city": "Lima", "expected": "Peru"},
]
TEMPLATE = "In which country is {{city}}?"


def echo(request: Received) -> Reply:
    return chat_reply(f"echo: {request.body['messages'][-1]['content']}", prompt_tokens=9)


Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]  # the start_api fixture


@pytest.fixture
def api(start_api: Start) -> LoopbackAPI:
    return start_api(echo)


def chats(api: LoopbackAPI) -> int:
    return api.count("/chat/completions")


def run_sweep(vars: Any, **kwargs: Any) -> wb.Sweep:  # noqa: A002 - wb.sweep's name
    kwargs.setdefault("model", "gpt-4o-mini")
    kwargs.setdefault("max_tokens", 5)
    s = wb.sweep(kwargs.pop("template", TEMPLATE), vars=vars, **kwargs)
    s.run(progress=False)
    return s


def write_cases(folder: Path, rows: list[dict[str, Any]]) -> dict[str, Path]:
    """The same rows as .csv, .jsonl and .parquet files."""
    frame = pd.DataFrame(rows)
    paths = {suffix: folder / f"cases.{suffix}" for suffix in ("csv", "jsonl", "parquet")}
    frame.to_csv(paths["csv"], index=False)
    paths["jsonl"].write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    frame.to_parquet(paths["parquet"], index=False)
    return paths


# ---------------------------------------------------------------- input forms


def test_every_input_form_gives_the_same_cases_item_ids_and_version(tmp_path: Path) -> None:
    paths = write_cases(tmp_path, CASES)
    forms: list[Any] = [
        CASES,
        pd.DataFrame(CASES),
        str(paths["csv"]),
        paths["jsonl"],
        paths["parquet"],
        Dataset(CASES, expected="expected"),
    ]
    datasets = [as_dataset(form) for form in forms]
    reference = datasets[0]
    assert reference.rows == CASES and reference.expected == "expected"
    assert reference.columns == ["city", "expected"]
    assert len(set(reference.item_ids)) == 3 and len(reference.version) == 16
    for dataset in datasets[1:]:
        assert dataset.rows == CASES
        assert dataset.item_ids == reference.item_ids
        assert dataset.version == reference.version


def test_each_row_is_one_case_times_the_grid_and_repeats(api: LoopbackAPI) -> None:
    rows = [{"city": "Paris", "country": "France"}, {"city": "Rome", "country": "Italy"}]
    s = wb.sweep(
        "Is {{city}} in {{country}}?",
        vars=pd.DataFrame(rows),
        grid={"temperature": [0, 1]},
        repeats=2,
        model="gpt-4o-mini",
        max_tokens=5,
    )
    # Not the product of the columns (that would be 4 prompts): 2 cases x 2 x 2.
    assert len(s) == 8
    assert list(s.points.prompt.unique()) == ["Is Paris in France?", "Is Rome in Italy?"]
    assert list(s.points.item_id) == [i for i in as_dataset(rows).item_ids for _ in range(4)]
    assert repr(s).startswith(f"<Sweep {s.sweep_id}: 8 runs (cases×2 · temperature×2")
    df = s.run(progress=False)
    assert chats(api) == 8 and len(df) == 8
    assert df.dataset.isna().all() and df.expected.isna().all()  # unnamed, no answer column
    assert df.item_id.nunique() == 2 and df.dataset_version.nunique() == 1
    assert s.table().shape == (2, 4)


def test_expected_is_recorded_per_run_and_is_not_a_template_variable(api: LoopbackAPI) -> None:
    rows = [{"q": "2+2", "answer": 4, "note": "easy"}, {"q": "3+3", "answer": 6, "note": "x"}]
    s = run_sweep(rows, template="What is {{q}}?", expected="answer")
    df = s.df
    assert list(df.expected) == ["4", "6"]  # non-text answers are stored as JSON text
    assert [json.loads(v) for v in df.variables] == [{"q": "2+2"}, {"q": "3+3"}]
    assert list(df.item_id) == as_dataset(rows, expected="answer").item_ids
    assert s.dataset is not None and s.dataset.expected_of(df.item_id[0]) == 4
    assert s.dataset.expected_of("not-an-item") is None
    frame = s.dataset.to_frame()
    assert list(frame.columns) == ["item_id", "q", "answer", "note"]
    assert list(frame.item_id) == list(df.item_id) and list(frame.answer) == [4, 6]
    # The default answer column is one called "expected".
    assert list(run_sweep(CASES).df.expected) == ["France", "Italy", "Peru"]


def test_cases_with_list_values_make_a_side_by_side_table(api: LoopbackAPI) -> None:
    rows = [{"options": ["a", "b"], "expected": "a"}, {"options": ["c"], "expected": "c"}]
    s = run_sweep(rows, template="Pick one of {{options}}.", grid={"temperature": [0, 1]})
    table = s.table()
    assert list(table.index) == ['["a", "b"]', '["c"]'] and table.shape == (2, 2)
    assert table.iloc[0, 0] == "echo: Pick one of ['a', 'b']."


def test_the_panel_takes_test_cases_and_a_typed_file_path(
    api: LoopbackAPI, tmp_path: Path
) -> None:
    panel = SweepPanel(TEMPLATE, vars=pd.DataFrame(CASES), models=["gpt-4o-mini"])
    assert panel.variables.disabled and "3 rows" in panel.variables.value
    assert panel.estimate_runs == 3 * 3  # 3 cases x temperature 0, 0.5, 1
    path = write_cases(tmp_path, CASES)["jsonl"]
    typed = SweepPanel(TEMPLATE, models=["gpt-4o-mini"])
    typed.variables.value = str(path)
    assert typed.estimate_runs == 9
    sweep = typed.build()
    assert sweep.dataset is not None and sweep.dataset.version == as_dataset(CASES).version


# ---------------------------------------------------------------- named datasets, versions


CSV_MISTAKES = [
    # pandas read the first as city "France" (index "Paris"): every column shifted.
    ("city,expected\nParis,France,EXTRA\n", "line 2 has 3 fields but the header has 2"),
    ("city,expected\nRome,Italy\nParis,France,EXTRA\n", "line 3 has 3 fields but the header"),
    # pandas filled the missing field: "In which country is  in?" was sent.
    ("city,expected\nRome,Italy\nParis\n", "line 3 has 1 field but the header has 2"),
    # A quoted value over two lines: the next record starts on line 4.
    ('city,expected\n"Par\nis",France\nLima\n', "line 4 has 1 field but the header"),
    ("city,city\nParis,Rome\n", "line 1 (the header) names the column 'city' twice"),
    ("city,\nParis,France\n", "line 1 (the header): column 2 has no name"),
    ('city,expected\n"Paris,France\n', "unexpected end of data"),
]


@pytest.mark.parametrize(("text", "message"), CSV_MISTAKES)
def test_a_csv_row_of_the_wrong_width_is_refused_naming_the_line(
    api: LoopbackAPI, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(wb.InvalidInputError) as caught:
        wb.sweep(TEMPLATE, vars=path, model="gpt-4o-mini", max_tokens=5)
    assert message in str(caught.value) and "cases.csv" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert chats(api) == 0 and len(wb.runs()) == 0


def test_a_csv_is_read_exactly(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    # RFC 4180: quoted commas, quotes and line breaks; a BOM as Excel writes one.
    path.write_bytes(
        '\ufeffcity,expected\r\n"Paris, Texas",USA\r\n007,""\r\n"Say ""hi""\nthere",x\r\n\r\n'
        .encode()
    )
    assert as_dataset(path).rows == [
        {"city": "Paris, Texas", "expected": "USA"},
        {"city": "007", "expected": ""},
        {"city": 'Say "hi"\nthere', "expected": "x"},
    ]


@pytest.mark.parametrize(
    "data",
    [
        pd.DataFrame({"city": ["Rome", float("nan")], "expected": ["Italy", "France"]}),
        pd.DataFrame({"city": ["Rome", None], "expected": ["Italy", "France"]}),
        [{"city": "Rome"}, {"city": None}],
    ],
)
def test_a_null_in_a_column_the_template_uses_is_refused(api: LoopbackAPI, data: Any) -> None:
    with pytest.raises(wb.InvalidInputError) as caught:
        wb.sweep(TEMPLATE, vars=data, model="gpt-4o-mini", max_tokens=5)
    assert str(caught.value).startswith(
        "row 1 of the dataset has no value (null or NaN) in column 'city'"
    )
    assert chats(api) == 0 and len(wb.runs()) == 0


def test_nulls_elsewhere_pass_and_an_explicit_empty_is_sent_empty(api: LoopbackAPI) -> None:
    frame = pd.DataFrame({"city": ["Rome", None], "note": [None, "x"]})
    wb.sweep(TEMPLATE, vars=frame.fillna({"city": ""}), model="gpt-4o-mini", max_tokens=5).run()
    prompts = sorted(wb.runs().prompt)
    assert prompts == ["In which country is ?", "In which country is Rome?"]


@pytest.mark.usefixtures("backend")
def test_named_datasets_are_versioned_by_content(api: LoopbackAPI) -> None:
    first = wb.dataset("capitals", CASES)
    assert isinstance(first, wb.Dataset)
    assert first.name == "capitals" and first.version == as_dataset(CASES).version
    again = wb.dataset("capitals", pd.DataFrame(CASES))
    assert again.version == first.version
    assert len(wb.datasets()) == 1  # the same rows stored again add nothing

    changed = [*CASES[:2], {"city": "Lima", "expected": "Peru (Lima)"}]
    second = wb.dataset("capitals", changed)
    assert second.version != first.version
    assert second.item_ids[:2] == first.item_ids[:2] and second.item_ids[2] != first.item_ids[2]
    stored = wb.datasets()
    assert list(stored.columns) == ["name", "version", "rows", "expected", "stored_at"]
    assert list(stored.version) == [second.version, first.version]  # newest first
    assert list(stored.rows) == [3, 3]

    latest = wb.dataset("capitals")
    assert latest.version == second.version and latest.rows == changed
    assert wb.dataset("capitals", version=first.version).rows == CASES
    wb.dataset("capitals", CASES)  # storing the old rows again makes them the latest
    assert wb.dataset("capitals").version == first.version
    other_answer = wb.dataset("by-name", CASES, expected="city")
    assert other_answer.version != first.version  # the answer column is part of the content


@pytest.mark.usefixtures("backend")
def test_a_sweep_over_a_named_dataset_records_name_version_and_item(api: LoopbackAPI) -> None:
    stored = wb.dataset("capitals", CASES)
    s = run_sweep(wb.dataset("capitals"), grid={"temperature": [0, 1]})
    df = s.df
    assert len(df) == 6 and (df.dataset == "capitals").all()
    assert (df.dataset_version == stored.version).all()
    assert list(df.item_id) == [i for i in stored.item_ids for _ in range(2)]
    assert list(df.expected) == [e for e in ("France", "Italy", "Peru") for _ in range(2)]
    # Runs of the same test case pair up across sweeps and datasets by item_id.
    unnamed = run_sweep(list(reversed(CASES)), max_tokens=6)
    assert set(unnamed.df.item_id) == set(stored.item_ids)
    assert unnamed.df.dataset.isna().all()


def test_a_changed_answer_is_a_new_sweep_replayed_for_free(api: LoopbackAPI) -> None:
    first = run_sweep(CASES)
    assert chats(api) == 3
    fixed = [*CASES[:2], {"city": "Lima", "expected": "Peru!"}]
    second = run_sweep(fixed)
    assert second.sweep_id != first.sweep_id
    assert chats(api) == 3  # the same requests: answered from the table
    df = second.df
    assert df.cache_hit.all() and list(df.expected) == ["France", "Italy", "Peru!"]
    assert run_sweep(fixed).sweep_id == second.sweep_id  # a re-run is the same sweep
    assert len(wb.runs()) == 6


# ---------------------------------------------------------------- migration


def test_an_existing_store_is_migrated_keeping_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    # A store made before datasets: the migrations before m006_datasets.
    with monkeypatch.context() as patch:
        names = [name for name, _ in migrations.MIGRATIONS]
        before = migrations.MIGRATIONS[: names.index("m006_datasets")]
        patch.setattr(migrations, "MIGRATIONS", before)
        SQLiteStore(path).close()
    old_columns = COLUMNS[: COLUMNS.index("dataset")]  # every column before the datasets
    conn = sqlite3.connect(path)
    assert tuple(r[1] for r in conn.execute("PRAGMA table_info(runs)")) == old_columns
    conn.close()
    row = RunRecord(kind="chat", provider="local", model="m", output="kept", request_hash="h")
    values = [getattr(row, name) for name in old_columns]
    values[old_columns.index("created_at")] = "2026-01-01T00:00:00.000000+00:00"
    with sqlite3.connect(path) as conn:
        conn.execute(
            f"INSERT INTO runs ({', '.join(old_columns)}) VALUES "
            f"({', '.join('?' * len(old_columns))})",
            values,
        )
    conn.close()

    with SQLiteStore(path) as store:
        runs = store.runs()
        assert runs.output.tolist() == ["kept"] and runs.item_id.isna().tolist() == [True]
    conn = sqlite3.connect(path)
    names = [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]
    assert "m006_datasets" in names[3:]
    assert tuple(r[1] for r in conn.execute("PRAGMA table_info(runs)")) == COLUMNS
    first = COLUMNS.index("dataset")
    assert first >= len(old_columns)
    assert COLUMNS[first : first + 4] == (
        "dataset",
        "dataset_version",
        "item_id",
        "expected",
    )
    assert [r[1] for r in conn.execute("PRAGMA table_info(datasets)")] == [
        "name",
        "version",
        "expected",
        "items",
        "stored_at",
    ]
    indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
    assert "(item_id)" in indexes["idx_runs_item"]
    conn.close()


# ---------------------------------------------------------------- export and import


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
@pytest.mark.usefixtures("backend")
def test_export_and_import_carry_datasets(
    api: LoopbackAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    stored = wb.dataset("capitals", CASES)
    wb.dataset("unused", [{"x": 1}])
    run_sweep(stored, experiment="geo")
    target = wb.export(tmp_path / f"out{suffix}", experiment="geo")
    sidecar = target.with_name(target.name + ".datasets.jsonl")
    lines = [json.loads(line) for line in sidecar.read_text(encoding="utf-8").splitlines()]
    assert [(line["name"], line["version"]) for line in lines] == [("capitals", stored.version)]
    assert lines[0]["rows"] == CASES  # readable rows, not JSON in a string

    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "colleague.db"))
    wb.configure(store=tmp_path / "colleague.db")
    assert wb.import_runs(target) == 3
    assert wb.import_runs(target) == 0  # merging twice adds nothing
    df = wb.runs()
    assert set(df.dataset) == {"capitals"} and set(df.dataset_version) == {stored.version}
    assert sorted(df.item_id) == sorted(stored.item_ids)
    assert sorted(df.expected) == ["France", "Italy", "Peru"]
    loaded = wb.dataset("capitals")
    assert loaded.rows == CASES and loaded.version == stored.version
    assert list(wb.datasets().name) == ["capitals"]


def test_a_file_exported_before_datasets_still_imports(api: LoopbackAPI, tmp_path: Path) -> None:
    wb.sweep("Say {{w}}", vars={"w": ["a", "b"]}, model="m", max_tokens=2).run(progress=False)
    old = wb.runs().drop(columns=["dataset", "dataset_version", "item_id", "expected"])
    old.to_json(tmp_path / "old.jsonl", orient="records", lines=True, date_format="iso")
    wb.configure(store=tmp_path / "other.db")
    assert wb.import_runs(tmp_path / "old.jsonl") == 2
    assert wb.runs().item_id.isna().all() and wb.runs().expected.isna().all()


def test_an_export_of_runs_without_datasets_leaves_no_stale_sidecar(
    api: LoopbackAPI, tmp_path: Path
) -> None:
    run_sweep(wb.dataset("capitals", CASES), experiment="geo")
    wb.sweep("Say {{w}}", vars={"w": ["a"]}, experiment="plain", model="m", max_tokens=2).run(
        progress=False
    )
    target = tmp_path / "out.jsonl"
    sidecar = tmp_path / "out.jsonl.datasets.jsonl"
    wb.export(target, experiment="geo")
    assert sidecar.exists()
    wb.export(target, experiment="plain")
    assert not sidecar.exists()


# ---------------------------------------------------------------- bad input


def bad_inputs(tmp_path: Path) -> list[tuple[dict[str, Any], str]]:
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("city,expected\n", encoding="utf-8")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"city": "Paris"}\n{"city": \n', encoding="utf-8")
    not_objects = tmp_path / "list.jsonl"
    not_objects.write_text('["Paris"]\n', encoding="utf-8")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    return [
        ({"vars": [{"town": "Paris"}]}, "has no column city (its columns: town)"),
        ({"vars": [{"city": "Paris"}, {"town": "Rome"}]}, "row 1 of the dataset has no 'city'"),
        ({"vars": []}, "has no rows: give at least one test case"),
        ({"vars": pd.DataFrame({"city": []})}, "the DataFrame has no rows"),
        ({"vars": empty_csv}, "empty.csv has no rows"),
        ({"vars": tmp_path / "missing.csv"}, "missing.csv (No such file or directory)"),
        ({"vars": folder}, "folder.csv (Is a directory): check the path"),
        ({"vars": str(tmp_path / "cases.txt")}, "the name must end in .csv, .jsonl, .parquet"),
        ({"vars": broken}, "broken.jsonl, line 2 is not JSON"),
        ({"vars": not_objects}, "line 1 is a JSON list: write one JSON object a line"),
        ({"vars": junk}, "cannot read test cases from"),
        ({"vars": pd.DataFrame([["Paris", "France"]])}, "has a column named 0 (int)"),
        ({"vars": [{"city": "Paris", 1: "x"}]}, "has a column named 1 (int)"),
        ({"vars": ["Paris"]}, "item 0 of the list of test cases is a str"),
        ({"vars": CASES, "expected": "answer"}, "expected='answer' is not a column"),
        ({"vars": {"city": ["Paris"]}, "expected": "x"}, "expected='x' names the answer column"),
        ({"vars": [CASES[0], CASES[0]]}, "rows 0 and 1 of the list of test cases are the same"),
        (
            {"vars": [{"city": "Paris", "n": 1}, {"city": "Paris", "n": 2}]},
            "rows 0 and 1 of the dataset give the same request",
        ),
        (
            {"vars": CASES, "template": "{{city}} is in {{expected}}?"},
            "{{expected}} in the template is the dataset's expected answer",
        ),
        ({"vars": [{"other": 1}], "template": "Hello"}, "uses none of the dataset's columns"),
        ({"vars": [{"city": object()}]}, "column 'city' holds a object"),
        ({"vars": 42}, "vars= takes a dict of value lists, a DataFrame"),
    ]


def test_bad_input_is_one_line_naming_the_fix_and_nothing_is_sent(
    api: LoopbackAPI, tmp_path: Path
) -> None:
    for arguments, message in bad_inputs(tmp_path):
        kwargs = {"model": "gpt-4o-mini", "max_tokens": 5, **arguments}
        with pytest.raises(wb.InvalidInputError) as caught:
            wb.sweep(kwargs.pop("template", TEMPLATE), **kwargs)
        text = str(caught.value)
        assert message in text, (arguments, text)
        assert "\n" not in text
    assert chats(api) == 0 and len(wb.runs()) == 0


@pytest.mark.usefixtures("backend")
def test_bad_dataset_names_and_lookups(api: LoopbackAPI) -> None:
    with pytest.raises(wb.InvalidInputError, match="no dataset 'nope' in the store"):
        wb.dataset("nope")
    wb.dataset("capitals", CASES)
    with pytest.raises(wb.InvalidInputError, match="stored: capitals"):
        wb.dataset("capitols")
    with pytest.raises(wb.InvalidInputError, match="version 'v9'"):
        wb.dataset("capitals", version="v9")
    with pytest.raises(wb.InvalidInputError, match="non-empty text"):
        wb.dataset("", CASES)
    with pytest.raises(wb.InvalidInputError, match="expected= goes with rows"):
        wb.dataset("capitals", expected="city")
    with pytest.raises(wb.InvalidInputError, match="already names its expected column"):
        wb.sweep(TEMPLATE, vars=wb.dataset("capitals"), expected="city")
    with pytest.raises(wb.InvalidInputError, match="empty.csv"):
        SweepPanel(TEMPLATE, vars=write_empty_csv(), models=["m"])
    assert chats(api) == 0


def write_empty_csv() -> Path:
    path = Path("empty.csv")  # the start_api fixture runs the test in an empty folder
    path.write_text("city\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- the real local model


@pytest.mark.integration
def test_a_dataset_sweep_against_the_local_model(in_tmp_dir: Path) -> None:
    stored = wb.dataset("capitals", CASES[:2])
    s = wb.sweep(
        "Answer with one word. {{city}} is the capital of which country?",
        vars=wb.dataset("capitals"),
        grid={"temperature": [0, 0.7]},
        seed=1,
        max_tokens=4,
        concurrency=2,
    )
    df = s.run(progress=False)
    assert len(df) == 4 and (df.status == "ok").all() and (df.provider == "local").all()
    assert (df.dataset == "capitals").all() and (df.dataset_version == stored.version).all()
    assert list(df.item_id) == [i for i in stored.item_ids for _ in range(2)]
    assert list(df.expected) == ["France", "France", "Italy", "Italy"]
    assert df.output.str.len().min() > 0
    stored_rows = wb.runs()
    assert stored_rows.item_id.notna().all() and len(stored_rows) == 4


def test_a_long_plan_shows_a_progress_bar(
    api: LoopbackAPI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.sweeps import plan

    wb.sweep(TEMPLATE, vars=CASES, model="gpt-4o-mini", max_tokens=5)
    assert "planning" not in capsys.readouterr().err  # a short plan: no bar
    monkeypatch.setattr(plan, "PROGRESS_FROM", 3)  # 10,000 points is long enough for one
    wb.sweep(TEMPLATE, vars=CASES, model="gpt-4o-mini", max_tokens=5)
    shown = capsys.readouterr().err
    assert "planning" in shown and "3/3" in shown
    assert chats(api) == 0
