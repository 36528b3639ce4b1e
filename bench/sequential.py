"""Sequential sweeps: how many calls ``s.run(until="decided")`` needs to reach the full
grid's decision, against a loopback server where one variant passes 20 points more often
than the baseline (0.8 against 0.6, independent draws) over 600 cases.

Figures: the full grid's decision (``wb.leaderboard`` on all 1,200 calls) and, for
several case orders (seeds), the sequential run's decision and its calls as a share of
the grid's (target: the same decision with at most 40 %); then, with no true difference,
the share of 1,000 simulated sequential runs that declare a winner (target: at most 5 %
at alpha 0.05, i.e. no winner in at least 95 %).

    .venv/bin/python bench/sequential.py [--seeds 5] [--cases 600]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common import ROOT, record

sys.path.insert(0, str(ROOT / "tests"))

from decide_server import PassRateServer  # noqa: E402
from loopback import LoopbackAPI  # noqa: E402

BASE, BETTER = "Answer plainly.", "Think step by step."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cases", type=int, default=600)
    args = parser.parse_args()
    rates = {("gpt-4o-mini", BASE): 0.6, ("gpt-4o-mini", BETTER): 0.8}
    with tempfile.TemporaryDirectory() as scratch, \
            LoopbackAPI(PassRateServer(rates, independent=True)) as api:
        os.environ["WORKBENCH_STORE"] = str(Path(scratch) / "bench.db")
        os.environ["OPENAI_BASE_URL"] = api.base_url
        os.environ["OPENAI_API_KEY"] = "sk-bench-loopback-0123456789"
        import workbench as wb
        from workbench.decide.sequential import simulate

        def plan(name: str) -> wb.Sweep:
            return wb.sweep("Question {{i}}", vars={"i": list(range(args.cases))},
                            grid={"system": [BASE, BETTER]}, model="gpt-4o-mini",
                            max_tokens=5, experiment=name, fresh=True, concurrency=32)

        contains = wb.scorers.contains("yes")
        full = plan("full")
        full.run(progress=False)
        wb.score(full, contains)
        grid_calls = api.count("/chat/completions")
        board = wb.leaderboard(full, scorer="contains", baseline={"system": BASE})
        grid_decision = sorted(board.better)
        shares, same = [], 0
        for seed in range(args.seeds):
            before = api.count("/chat/completions")
            s = plan(f"sequential-{seed}")
            s.run(until="decided", baseline={"system": BASE}, scorer=contains, seed=seed,
                  progress=False)
            calls = api.count("/chat/completions") - before
            shares.append(calls / grid_calls)
            same += sorted(s.decision.better) == grid_decision
        null = simulate(0.6, [0.6], cases=args.cases, wave=30, runs=1000, alpha=0.05, seed=7)
    worst = max(shares)
    no_winner = 1 - null["better"] - null["worse"]
    record(
        "sequential",
        f"{args.cases} cases, baseline 0.6 vs variant 0.8 (independent), waves of"
        f" {max(10, -(-args.cases // 20))} cases, alpha 0.05: full grid {grid_calls} calls,"
        f" decides {grid_decision or 'nothing'} (difference {board.df.iloc[0]['difference']:+.3f});"
        f" sequential over {args.seeds} case orders: same decision {same}/{args.seeds},"
        f" calls {', '.join(f'{x:.0%}' for x in shares)} of the grid (worst {worst:.0%};"
        f" target <= 40 %: {'met' if worst <= 0.4 and same == args.seeds else 'MISSED'});"
        f" no true difference, 1,000 simulated runs: a winner declared in {null['better']:.1%},"
        f" a loser in {null['worse']:.1%}, no winner in {no_winner:.1%} (target >= 95 %:"
        f" {'met' if no_winner >= 0.95 else 'MISSED'})",
    )


if __name__ == "__main__":
    main()
