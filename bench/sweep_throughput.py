"""Sweep throughput: 2,000 runs at concurrency 64 against a loopback API with a fixed
100 ms latency, through ``wb.sweep`` (every run logged to the store) and through the
openai SDK's ``AsyncOpenAI`` with an ``asyncio.Semaphore`` (nothing logged).

Figures: wall time / ideal (ideal = runs / concurrency x latency) for both, and client
CPU seconds per run for both (process CPU time: every thread of this process; the
server runs in a process of its own). Targets: workbench wall <= 1.10 x ideal, and
workbench CPU per run <= the SDK's.

    .venv/bin/python bench/sweep_throughput.py [--runs 2000] [--concurrency 64] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from typing import Any

from common import loopback_api, record

LATENCY_S = 0.1


def measure(work: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) spent in ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def sdk_baseline(base_url: str, runs: int, concurrency: int) -> None:
    import httpx
    from openai import AsyncOpenAI

    async def main() -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=60) as http:
            client = AsyncOpenAI(
                base_url=base_url, api_key="sk-bench", max_retries=2, http_client=http
            )
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int) -> str:
                async with gate:
                    reply = await client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": f"Bench #{i}"}],
                        max_tokens=8,
                    )
                    return reply.choices[0].message.content or ""

            answers = await asyncio.gather(*(one(i) for i in range(runs)))
            assert len(answers) == runs and all(answers)

    asyncio.run(main())


def workbench_sweep(
    runs: int, concurrency: int, *, template: str = "Bench #{{i}}", in_this_thread: bool = False
) -> None:
    import workbench as wb

    s = wb.sweep(
        template,
        vars={"i": list(range(runs))},
        model="gpt-4o-mini",
        max_tokens=8,
        concurrency=concurrency,
    )
    # run() sends from a thread of its own; arun() here lets cProfile see the sending.
    df = asyncio.run(s.arun()) if in_this_thread else s.run(progress=False)
    assert len(df) == runs and (df.status == "ok").all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--profile", action="store_true", help="cProfile the workbench sweep")
    args = parser.parse_args()
    runs, concurrency = args.runs, args.concurrency
    ideal = runs / concurrency * LATENCY_S

    with loopback_api(LATENCY_S) as base_url, tempfile.TemporaryDirectory() as scratch:
        os.environ["OPENAI_BASE_URL"] = base_url
        os.environ["OPENAI_API_KEY"] = "sk-bench-0000000000000000"
        import openai  # noqa: F401 - imported before timing: both sides start warm

        import workbench as wb

        wb.configure(store=os.path.join(scratch, "bench.db"))
        wb.runs()  # the store is created before timing, as in a kernel that has run a cell
        sdk_baseline(base_url, 50, concurrency)  # warm up both paths (imports, first use)
        wb.sweep("Warm #{{i}}", vars={"i": list(range(50))}, model="gpt-4o-mini").run(
            progress=False
        )

        sdk_wall, sdk_cpu = measure(lambda: sdk_baseline(base_url, runs, concurrency))
        wb_wall, wb_cpu = measure(lambda: workbench_sweep(runs, concurrency))
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:  # a second sweep (new prompts), profiled, not timed
            wb.configure(experiment="profiled")
            profiler.enable()
            workbench_sweep(runs, concurrency, template="Again #{{i}}", in_this_thread=True)
            profiler.disable()

    sdk_ms, wb_ms = sdk_cpu / runs * 1000, wb_cpu / runs * 1000
    print(f"ideal {ideal:.3f} s for {runs} runs at concurrency {concurrency}, {LATENCY_S}s each")
    for name, wall, ms in (("openai SDK", sdk_wall, sdk_ms), ("wb.sweep", wb_wall, wb_ms)):
        print(f"{name:<11} wall {wall:.3f} s = {wall / ideal:.3f} x ideal, CPU {ms:.3f} ms/run")
    print(f"workbench / SDK: wall {wb_wall / sdk_wall:.3f}, CPU per run {wb_cpu / sdk_cpu:.3f}")
    wall_ok = wb_wall <= 1.10 * ideal
    cpu_ok = wb_cpu <= sdk_cpu
    record(
        "sweep_throughput",
        f"{runs} runs, concurrency {concurrency}, {LATENCY_S * 1000:.0f} ms latency: "
        f"wall/ideal workbench {wb_wall / ideal:.3f} (target ≤ 1.10: "
        f"{'met' if wall_ok else 'MISSED'}), SDK {sdk_wall / ideal:.3f}; CPU ms/run "
        f"workbench {wb_ms:.3f}, SDK {sdk_ms:.3f}, ratio {wb_cpu / sdk_cpu:.2f} "
        f"(target ≤ 1: {'met' if cpu_ok else 'MISSED'})",
    )
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        print(out.getvalue())


if __name__ == "__main__":
    main()
