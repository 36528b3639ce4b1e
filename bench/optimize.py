"""wb.optimize against a loopback server where a system prompt carrying a hidden
instruction ("Answer in CAPITALS.") answers right and others only by luck (30 %), a
judge grades answers 1-5 and says why it failed the rest, and the "reflection model"
proposes the hidden instruction when it is shown failures (tests/optimize_server.py).

Figures: the planned worst case against the budget, what the search spent (reflections
and judge included) and never above the budget, the training score of the start and of
the best, the validation on held-out cases (paired difference, p-value, decided), and
the requests of a second run of the same search (target: 0).

    .venv/bin/python bench/optimize.py [--cases 60] [--budget 0.05]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, record

sys.path.insert(0, str(ROOT / "tests"))

from loopback import LoopbackAPI  # noqa: E402
from optimize_server import HIDDEN, HiddenInstructionServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--budget", type=float, default=0.05)
    args = parser.parse_args()
    cases = [{"word": f"item{i:03d}", "expected": f"ITEM{i:03d}"} for i in range(args.cases)]
    with tempfile.TemporaryDirectory() as scratch, LoopbackAPI(HiddenInstructionServer()) as api:
        os.environ["WORKBENCH_STORE"] = str(Path(scratch) / "bench.db")
        os.environ["OPENAI_BASE_URL"] = api.base_url
        os.environ["OPENAI_API_KEY"] = "sk-bench-loopback-0123456789"
        import workbench as wb

        def search() -> Any:
            judge = wb.scorers.judge("Is the answer in capitals?", model="gpt-4o-mini")
            return wb.optimize("The word: {{word}}", system="Repeat the word.", data=cases,
                               scorers=[judge], budget=args.budget, model="gpt-4o-mini",
                               max_tokens=20, max_candidates=8, experiment="bench",
                               progress=False)

        started = time.perf_counter()
        result = search()
        first_s = time.perf_counter() - started
        first_requests = api.count("/chat/completions")
        api.received.clear()
        started = time.perf_counter()
        again = search()
        again_s = time.perf_counter() - started
        again_requests = api.count("/chat/completions")
    frame = result.candidates
    start, best = frame.loc[0, "train_score"], frame["train_score"].max()
    comparison = result.validation.comparison
    assert HIDDEN in result.best, result.best
    assert result.spent <= args.budget and again_requests == 0
    assert comparison is not None and result.validation.decided
    print(result)
    print(f"plan: {result.plan}")
    record(
        "optimize",
        f"{args.cases} cases ({len(result.train)} training, {len(result.held)} held out), "
        f"budget ${args.budget}: planned worst case ${float(result.plan.total_high or 0):.4f}, "
        f"spent ${float(result.spent):.4f} (reflections and judge included; never over), "
        f"{len(frame) - 1} candidates, {first_requests} requests in {first_s:.1f} s; "
        f"training score {start:.2f} -> {best:.2f} (judge 1-5); validation "
        f"{comparison.baseline_mean:.2f} -> {comparison.candidate_mean:.2f}, p = "
        f"{comparison.p_value:.2g}, decided: {result.validation.decided}; "
        f"a re-run: {again_requests} requests, {again_s:.1f} s, same best: "
        f"{again.best == result.best} (2-core machine shared with other work)",
    )


if __name__ == "__main__":
    main()
