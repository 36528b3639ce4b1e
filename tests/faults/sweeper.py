"""A sweep in a process of its own, for the crash and concurrent-kernel tests.

    python sweeper.py STORE BASE_URL --runs N --experiment NAME [--concurrency C]

Sweeps ``Item #i`` for i in 0..N-1 (one run each) against BASE_URL, logging into STORE,
and prints ``done ROWS`` at the end. The environment supplies OPENAI_API_KEY.
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("base_url")
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--start", type=int, default=0, help="first item number")
    args = parser.parse_args()
    os.environ["OPENAI_BASE_URL"] = args.base_url
    os.environ.setdefault("OPENAI_API_KEY", "sk-sweeper-test-0000000000")

    import workbench as wb

    wb.configure(store=args.store, timeout=10, max_retries=2)
    s = define(wb, args.runs, args.experiment, args.concurrency, args.start)
    df = s.run(progress=False)
    print(f"done {len(df)}", flush=True)
    sys.exit(0 if (df.status == "ok").all() else 1)


def define(wb: object, runs: int, experiment: str, concurrency: int, start: int = 0) -> object:
    """The sweep both the subprocess and the test that resumes it define."""
    return wb.sweep(  # type: ignore[attr-defined]
        "Item #{{i}}",
        vars={"i": list(range(start, start + runs))},
        model="gpt-4o-mini",
        max_tokens=8,
        experiment=experiment,
        concurrency=concurrency,
    )


if __name__ == "__main__":
    main()
