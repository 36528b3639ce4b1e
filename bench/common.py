"""Shared by the benchmarks: the results file, a loopback API in a process of its own."""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The checkout's package, not whichever one the interpreter has installed (an editable
# install of another checkout measured that checkout's code).
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).with_name("RESULTS.md")
FAULT_SERVER = ROOT / "tests" / "faults" / "server.py"


def record(name: str, figures: str) -> None:
    """Append one dated line to bench/RESULTS.md and print it."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    line = f"- {stamp} · `{name}` · {figures}"
    print(line)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(line + "\n")


@contextmanager
def served(*args: str) -> Iterator[str]:
    """A test server started as ``python ARGS`` in a process of its own (its CPU is not
    the client's), which prints its base URL first; yields that URL, stops it after."""
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise RuntimeError(f"the server {args[0]} did not start")
        yield base_url
    finally:
        process.kill()
        process.wait()


def loopback_api(delay_s: float, seconds: float = 900) -> contextlib.AbstractContextManager[str]:
    """The fault server answering every call after ``delay_s``; yields the base URL."""
    return served(str(FAULT_SERVER), f"--delay={delay_s}", f"--seconds={seconds}")


def server_stats(base_url: str) -> dict[str, Any]:
    """What a bench server counted (its ``/stats``): requests, refusals."""
    import httpx

    return dict(httpx.get(base_url.removesuffix("/v1") + "/stats").json())


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_profile(profiler: cProfile.Profile, lines: int = 20) -> None:
    """The functions that took the most time of their own, after a ``--profile`` run."""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(lines)
    print(out.getvalue())
