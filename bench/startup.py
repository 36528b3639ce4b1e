"""Startup: ``%load_ext workbench`` in a fresh IPython shell, against ``import openai``;
and a cold first sweep: from ``s.run()`` to its first request, in a fresh interpreter,
against a second sweep's in the same one (warm: everything loaded).

Each measurement is a fresh interpreter (``--repeat`` times, median reported), so module
caches are warm on disk but nothing is imported yet. The shell itself is created before
timing: a kernel has one already. Also lists which heavy libraries the load pulled in
(they should load on first use, not here). Target: under 0.5 s. The first sweep waited
~1 s for the store (pandas) and the tokenizer before its first request; they now load
while the plan is read.

    .venv/bin/python bench/startup.py [--repeat 7] [--baseline DIR]

``--baseline DIR`` measures another checkout's package too (e.g. main's, from
``git archive``), interleaved with this one's in the same run: a busy machine slows both
alike, so the ratio between them holds where the seconds do not. The fresh interpreters
import this checkout's package (``PYTHONPATH``), not the one the interpreter installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from common import ROOT, loopback_api, median, record

LOAD_EXT = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
config = Config()
config.HistoryManager.hist_file = ":memory:"
shell = InteractiveShell.instance(config=config)
before = set(sys.modules)
start = time.perf_counter()
shell.run_line_magic("load_ext", "workbench")
took = time.perf_counter() - start
heavy = ["pandas", "numpy", "matplotlib", "tiktoken", "genai_prices", "jinja2", "httpx",
         "ipywidgets", "xllamacpp", "pyarrow"]
print(json.dumps({"seconds": took, "loaded": [m for m in heavy if m in sys.modules
                                               and m not in before]}))
"""

IMPORT_OPENAI = """
import json, time
start = time.perf_counter()
import openai
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

# argv: base URL, seconds between planning and s.run() (a person reading the plan).
FIRST_SWEEP = """
import json, os, sys, tempfile, time
os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"] = sys.argv[1], "sk-bench-0123"
import workbench as wb
wb.configure(store=os.path.join(tempfile.mkdtemp(), "bench.db"))

def first_request(word):
    s = wb.sweep("Say {{w}}", vars={"w": [word + str(i) for i in range(20)]},
                 model="gpt-4o-mini", max_tokens=5)
    time.sleep(float(sys.argv[2]))
    sent = []
    start = time.perf_counter()
    s.run(progress=False, on_progress=lambda p: sent.append(time.perf_counter()) if p.sent else 0)
    return sent[0] - start

cold = first_request("a")
print(json.dumps({"cold": cold, "warm": first_request("b")}))
"""


def once(code: str, *args: str, tree: str = str(ROOT)) -> dict[str, object]:
    """``code`` in a fresh interpreter importing the package of the checkout ``tree``."""
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


# In a real kernel (ipykernel, as JupyterLab starts it): a plain shell does not import what
# a kernel's display machinery does, so %load_ext there can miss a heavy import (pandas was
# loaded in a kernel and not in a plain shell on 2026-12-07).
KERNEL_CODE = (
    "import time, sys\nstart = time.perf_counter()\n"
    "get_ipython().run_line_magic('load_ext', 'workbench')\n"
    "print(time.perf_counter() - start, 'pandas' in sys.modules)"
)


def in_kernel(tree: str) -> tuple[float, bool]:
    """(seconds, pandas loaded) of %load_ext in a fresh ipykernel importing ``tree``."""
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "PYTHONPATH": tree}
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        out: list[str] = []

        def hook(message: dict[str, Any]) -> None:
            if message["msg_type"] == "stream":
                out.append(message["content"]["text"])

        client.execute_interactive(KERNEL_CODE, output_hook=hook, timeout=120)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    seconds, pandas = "".join(out).split()
    return float(seconds), pandas == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline", help="another checkout to measure alongside")
    args = parser.parse_args()
    if args.baseline:
        paired(args.repeat, os.path.abspath(args.baseline))
        return
    once(LOAD_EXT)  # the first run compiles bytecode; not counted
    once(IMPORT_OPENAI)
    loads, openais, loaded = [], [], []
    for _ in range(args.repeat):  # interleaved, so both see the same machine
        result = once(LOAD_EXT)
        loads.append(float(result["seconds"]))  # type: ignore[arg-type]
        loaded = list(result["loaded"])  # type: ignore[call-overload]
        openais.append(float(once(IMPORT_OPENAI)["seconds"]))  # type: ignore[arg-type]
    load, baseline = median(loads), median(openais)
    print(f"%load_ext workbench: median {load:.3f} s of {args.repeat} fresh shells")
    print(f"import openai:       median {baseline:.3f} s (ratio {load / baseline:.2f})")
    print(f"heavy modules the load imported: {', '.join(loaded) or 'none'}")
    record(
        "startup",
        f"%load_ext workbench {load:.3f} s = {load / baseline:.2f} x import openai "
        f"({baseline:.3f} s), median of {args.repeat} (target < 0.5 s: "
        f"{'met' if load < 0.5 else 'MISSED'}); heavy modules loaded: "
        f"{', '.join(loaded) or 'none'}",
    )
    first_sweep(args.repeat)


def first_sweep(repeat: int) -> None:
    with loopback_api(0.0) as base_url:
        for pause in ("1.5", "0"):
            colds, warms = [], []
            for _ in range(repeat):
                result = once(FIRST_SWEEP, base_url, pause)
                colds.append(float(result["cold"]))  # type: ignore[arg-type]
                warms.append(float(result["warm"]))  # type: ignore[arg-type]
            cold, warm = median(colds), median(warms)
            record(
                "startup",
                f"first sweep, s.run() {pause} s after planning: first request after "
                f"{cold:.3f} s cold = {cold / warm:.2f} x a second sweep's {warm:.3f} s, "
                f"median of {repeat} fresh interpreters",
            )


def paired(repeat: int, baseline: str) -> None:
    """%load_ext and the cold first sweep of this checkout and ``baseline``, interleaved."""
    trees = {"this": str(ROOT), "baseline": baseline}
    for tree in trees.values():
        once(LOAD_EXT, tree=tree)  # bytecode compiled, not counted
    loads: dict[str, list[float]] = {name: [] for name in trees}
    firsts: dict[str, list[float]] = {name: [] for name in trees}
    kernels: dict[str, list[float]] = {name: [] for name in trees}
    pandas: dict[str, bool] = {}
    loaded: dict[str, list[str]] = {}
    load_at_start = os.getloadavg()
    with loopback_api(0.0) as base_url:
        for _ in range(repeat):
            for name, tree in trees.items():
                result = once(LOAD_EXT, tree=tree)
                loads[name].append(float(result["seconds"]))  # type: ignore[arg-type]
                loaded[name] = list(result["loaded"])  # type: ignore[call-overload]
                sweep = once(FIRST_SWEEP, base_url, "0", tree=tree)
                firsts[name].append(float(sweep["cold"]))  # type: ignore[arg-type]
                seconds, pandas[name] = in_kernel(tree)
                kernels[name].append(seconds)
    load, first, kernel = (
        {n: median(v) for n, v in d.items()} for d in (loads, firsts, kernels)
    )
    record(
        "startup",
        f"paired with {baseline}, median of {repeat}, load {load_at_start[0]:.2f} at the start: "
        f"%load_ext workbench {load['this']:.3f} s vs {load['baseline']:.3f} s "
        f"({load['this'] / load['baseline']:.2f} x; heavy modules loaded: "
        f"{', '.join(loaded['this']) or 'none'} vs {', '.join(loaded['baseline']) or 'none'}); "
        f"in a real kernel {kernel['this']:.3f} s vs {kernel['baseline']:.3f} s "
        f"({kernel['this'] / kernel['baseline']:.2f} x; pandas loaded: {pandas['this']} vs "
        f"{pandas['baseline']}; target < 0.5 s: {'met' if kernel['this'] < 0.5 else 'MISSED'}); "
        f"cold first sweep, s.run() at once after planning: first request after "
        f"{first['this']:.3f} s vs {first['baseline']:.3f} s",
    )


if __name__ == "__main__":
    main()
