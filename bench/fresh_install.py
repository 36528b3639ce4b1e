"""A new user's first answer: a fresh venv outside the repository, ``pip install`` of this
checkout, ``workbench models install``, and one local ``wb.chat`` from ``python -c``.

Each step is timed; the target is the total under 3 minutes with a warm pip cache, so a
first round (not counted, ``--warmup 0`` to skip) fills pip's cache. The models are kept in
a fresh cache folder each round (``WORKBENCH_CACHE``), so they are really installed.
Baseline, in the same run: ``pip install jupyterlab`` into a fresh venv, what a user's own
Jupyter environment holds already.

    .venv/bin/python bench/fresh_install.py [--warmup 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, record

TARGET_S = 180.0
FIRST_ANSWER = (
    "import workbench as wb; r = wb.chat('Say hello in three words.', max_tokens=20);"
    " print(repr(r.text), r.record.model)"
)


def one_round() -> dict[str, float]:
    took: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="wb-fresh-") as tmp:
        venv, cwd = Path(tmp) / "venv", Path(tmp) / "work"
        cwd.mkdir()
        env = {**os.environ, "WORKBENCH_CACHE": str(Path(tmp) / "cache")}
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WORKBENCH_STORE", "VIRTUAL_ENV"):
            env.pop(name, None)
        bin_dir = venv / "bin"
        steps = [
            ("venv", [sys.executable, "-m", "venv", str(venv)]),
            ("pip install", [str(bin_dir / "pip"), "install", "--quiet", str(ROOT)]),
            ("models install", [str(bin_dir / "workbench"), "models", "install", "--no-progress"]),
            ("first answer", [str(bin_dir / "python"), "-c", FIRST_ANSWER]),
        ]
        for name, command in steps:
            start = time.perf_counter()
            done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
            took[name] = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
            if name == "first answer":
                print(done.stdout.strip())
    return took


def baseline() -> float:
    """Seconds to put JupyterLab alone into a fresh venv, from the same pip cache."""
    with tempfile.TemporaryDirectory(prefix="wb-fresh-") as tmp:
        venv = Path(tmp) / "venv"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "jupyterlab"]
        subprocess.run(pip, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.warmup):
        one_round()
    took = one_round()
    lab = baseline()
    total = sum(took.values())
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in took.items())
    verdict = "met" if total < TARGET_S else "MISSED"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    record(
        "fresh_install",
        f"fresh venv to the first local answer {total:.1f} s = {total / TARGET_S:.2f} x the"
        f" 3-minute target ({verdict}), warm pip cache: {steps}; baseline: a fresh venv with"
        f" `pip install jupyterlab` alone {lab:.1f} s (the workbench's venv + pip install ="
        f" {(took['venv'] + took['pip install']) / lab:.2f} x that)"
        f" · load average {load} on {os.cpu_count()} cores",
    )


if __name__ == "__main__":
    main()
