"""Dataset scale: plan and estimate a sweep over a CSV of many test cases.

Figures, for ``--rows`` rows (default 1,000,000) of ``city,expected``: reading the file
into a Dataset, planning ``wb.sweep(template, vars=path)`` (the file read, every row
rendered and its request hashed; a call's body and row are built when it is sent),
``Sweep.estimate()``, and the process's peak memory; each
against the baseline of a bare loop over the same file in the same run (``csv.reader``,
``str.replace`` for the template, ``json.dumps`` of the request body and its sha256: the
floor of any planner that renders and identifies each row). Target (issue 20 item 5):
plan + estimate < 30 s and < 2 GB at a million rows. Nothing is sent: the key is a
placeholder and no server is started.

    .venv/bin/python bench/dataset_scale.py [--rows 1000000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from common import print_profile, record

TEMPLATE = "In which country is {{city}}? Answer in one word."


def write_cases(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["city", "expected"])
        for i in range(rows):
            writer.writerow([f"City number {i}", f"Country {i % 200}"])


def bare_loop(path: Path) -> float:
    """Render and identify every row with nothing else: the floor."""
    started = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        next(reader)
        for city, _expected in reader:
            prompt = TEMPLATE.replace("{{city}}", city)
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": 5}
            text = json.dumps({"provider": "openai", "body": body}, sort_keys=True)
            hashlib.sha256(text.encode()).hexdigest()
    return time.perf_counter() - started


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)  # no workbench.toml of the developer's
        os.environ["WORKBENCH_STORE"] = str(Path(folder) / "bench.db")
        os.environ["OPENAI_API_KEY"] = "bench-placeholder-never-sent"
        os.environ.pop("OPENAI_BASE_URL", None)
        path = Path(folder) / "cases.csv"
        write_cases(path, args.rows)
        baseline = bare_loop(path)

        import workbench as wb
        from workbench.scoring.datasets import as_dataset

        before = peak_mb()
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        dataset = as_dataset(path)
        read_s = time.perf_counter() - started
        del dataset
        started = time.perf_counter()
        sweep = wb.sweep(TEMPLATE, vars=path, model="gpt-4o-mini", max_tokens=5)
        plan_s = time.perf_counter() - started
        started = time.perf_counter()
        estimate = sweep.estimate()
        estimate_s = time.perf_counter() - started
        if profiler:
            profiler.disable()
        peak = peak_mb()
        assert estimate.runs == args.rows
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    total = plan_s + estimate_s
    record(
        "dataset_scale.py",
        f"{args.rows:,} rows{' (under cProfile)' if profiler else ''}: read {read_s:.1f} s, "
        f"plan {plan_s:.1f} s "
        f"({plan_s / baseline:.0f} x the bare loop's {baseline:.2f} s, "
        f"{plan_s / args.rows * 1e6:.0f} us a row), estimate {estimate_s:.1f} s; plan + "
        f"estimate {total:.1f} s (target < 30 s at 1,000,000), peak {peak:.0f} MB "
        f"({peak - before:.0f} MB for the sweep; target < 2,048) · load average {load} "
        f"on {os.cpu_count()} cores",
    )
    if profiler:
        print_profile(profiler, 30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
