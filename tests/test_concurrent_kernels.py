"""Concurrent kernels: four processes sweeping into one store at once lose no row."""

from __future__ import annotations

from pathlib import Path

import pytest
from faults import Fault, FaultServer, always
from faults.processes import integrity, start_sweeper

import workbench as wb

pytestmark = pytest.mark.stress

PROCESSES = 4
RUNS = 150


def test_four_processes_sweeping_into_one_store_keep_every_row(
    isolated_store: Path, in_tmp_dir: Path
) -> None:
    store = isolated_store
    with FaultServer(always(Fault.OK, delay_s=0.005)) as server:
        processes = [
            start_sweeper(
                store,
                server.base_url,
                runs=RUNS,
                experiment=f"kernel-{k}",
                concurrency=8,
                start=k * 1000,
            )
            for k in range(PROCESSES)
        ]
        outputs = [p.communicate(timeout=240) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
        assert out.strip().endswith(f"done {RUNS}")
    assert server.count("/chat/completions") == PROCESSES * RUNS
    assert integrity(store) == "ok"

    rows = wb.runs()  # readable by a fifth process-like reader, with real dtypes
    assert len(rows) == PROCESSES * RUNS and (rows.status == "ok").all()
    assert rows.groupby("experiment").size().to_dict() == {
        f"kernel-{k}": RUNS for k in range(PROCESSES)
    }
    assert rows.run_id.is_unique
    assert rows.groupby(["request_hash", "sample_index"]).size().max() == 1
    numbers = sorted(int(p.rpartition("#")[2]) for p in rows.prompt)
    assert numbers == sorted(k * 1000 + i for k in range(PROCESSES) for i in range(RUNS))
    assert rows.output.str.startswith("echo: Item #").all()
