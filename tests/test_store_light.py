"""What a sweep's calls do with the store loads no pandas, numpy or pyarrow (issue 21):
opening a SQLite store, checking it can be written, claiming a point, appending a run and
the replay lookup. A cold sweep's first request waited ~0.9 s for pandas to import."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.core.record import RunRecord
from workbench.store import SQLiteStore
from workbench.store.rows import iso_utc, record_from_row, record_to_row

HEAVY = ("pandas", "numpy", "pyarrow")

CALLS_PATH = """
import sys
from workbench.core.record import RunRecord
from workbench.store import open_store
store = open_store(sys.argv[1])
store.check_writable()
assert store.claim("h1", 0, "r1", 600.0)
store.append(RunRecord(kind="chat", provider="openai", model="m", run_id="r1",
                       request_hash="h1", output="hello", latency_s=0.25))
store.release("h1", 0, "r1")
assert store.find_ok("h1", 0).output == "hello"
assert set(store.find_ok_many([("h1", 0), ("h2", 0)])) == {("h1", 0)}
assert store.find_run("r1").latency_s == 0.25
store.close()
print([name for name in sys.argv[2:] if name in sys.modules])
"""


def test_a_sweeps_store_calls_load_no_pandas_numpy_or_pyarrow(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    out = subprocess.run(
        [sys.executable, "-c", CALLS_PATH, str(db), *HEAVY], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    with SQLiteStore(db) as store:  # and the row is what a frame reader sees
        runs = store.runs()
    assert list(runs.run_id) == ["r1"] and runs.output[0] == "hello"


def test_the_frame_readers_still_load_pandas_when_used(tmp_path: Path) -> None:
    # The other side of the test above: the lazy imports are there, not dropped.
    code = (
        "import sys\nfrom workbench.store import open_store\n"
        "store = open_store(sys.argv[1])\nstore.runs()\nstore.close()\n"
        f"print([name for name in {HEAVY[:2]!r} if name in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "runs.db")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['pandas', 'numpy']"


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-31",
        "2026-01-31T12:00:00Z",
        "2026-01-31T12:00:00",
        "2026-01-31 12:00:00.123456",
        "2026-01-31T23:30:00-05:00",
        "2026-01-31T12:00:00.5+02:00",
        "2026/01/31",  # not ISO-8601: read as pandas reads it
        "Jan 31 2026 12:00",
    ],
)
def test_iso_utc_reads_text_as_pandas_does(text: str) -> None:
    stamp = pd.Timestamp(text)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    assert iso_utc(text) == stamp.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def test_iso_utc_of_datetimes_is_utc_with_microseconds() -> None:
    east = timezone(timedelta(hours=2))
    assert iso_utc(datetime(2026, 1, 31, 12, 0, 0, 5, tzinfo=east)) == (
        "2026-01-31T10:00:00.000005+00:00"
    )
    assert iso_utc(datetime(2026, 1, 31)) == "2026-01-31T00:00:00.000000+00:00"  # naive: UTC
    assert iso_utc(pd.Timestamp("2026-01-31T12:00:00+01:00")) == (
        "2026-01-31T11:00:00.000000+00:00"
    )


def test_numpy_values_in_a_record_are_stored_as_python_ones() -> None:
    record = RunRecord(
        kind="chat",
        provider="openai",
        model="m",
        cache_hit=np.bool_(True),  # type: ignore[arg-type]
        tokens_counted=np.False_,  # type: ignore[arg-type]
        max_tokens=np.int64(16),
    )
    back = record_from_row(record_to_row(record))
    assert back.cache_hit is True and back.tokens_counted is False
    assert back.max_tokens == 16 and type(back.max_tokens) is int
    with pytest.raises(TypeError, match="cache_hit"):
        record_to_row(RunRecord(kind="chat", provider="o", model="m", cache_hit=2))  # type: ignore[arg-type]
