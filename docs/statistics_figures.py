"""Draws the pictures of docs/statistics.md from the workbench's own functions on
simulated data (no server, no model): `.venv/bin/python docs/statistics_figures.py`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.decide.confidence_sequence import EmpiricalBernsteinCS  # noqa: E402
from workbench.decide.leaderboard import Leaderboard, leaderboard_plot  # noqa: E402

OUT = Path(__file__).with_name("img")


def sample_size() -> None:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    cases = np.arange(20, 801, 20)
    for rate in (0.5, 0.7, 0.9):
        ax.plot(cases, [100 * wb.detectable_difference(int(n), rate) for n in cases],
                label=f"baseline passes {rate:.0%}")
    ax.set_xlabel("test cases")
    ax.set_ylabel("detectable improvement (points)")
    ax.set_title("What a number of cases can detect (power 80 %, alpha 0.05)")
    ax.legend()
    fig.savefig(OUT / "sample_size.png", dpi=110, bbox_inches="tight")


def sequential() -> None:
    rng = np.random.default_rng(4)
    base = (rng.random(600) < 0.6).astype(float)
    better = (rng.random(600) < 0.8).astype(float)
    cs = EmpiricalBernsteinCS(-1, 1, 0.05, 60)
    n, low, high, mean = [], [], [], []
    for start in range(0, 600, 30):
        lo, hi = cs.update((better[start:start + 30] - base[start:start + 30]).tolist())
        n.append(cs.n)
        low.append(lo)
        high.append(hi)
        mean.append(cs.mean)
    stop = next(i for i, lo in enumerate(low) if lo > 0)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.fill_between(n, low, high, color="C0", alpha=0.2, label="anytime 95 % interval")
    ax.plot(n, mean, color="C0", label="mean difference so far")
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.axvline(n[stop], color="C2", linestyle="--", label=f"decided better at {n[stop]} cases")
    ax.set_xlabel("cases sent (waves of 30)")
    ax.set_ylabel("variant - baseline")
    ax.set_title("A sequential run stops once the interval leaves 0")
    ax.legend(fontsize="small")
    fig.savefig(OUT / "sequential.png", dpi=110, bbox_inches="tight")


def leaderboard() -> None:
    rows = [("system='Think first.'", 0.21, 0.11, 0.31, "better"),
            ("system='Cite the text.'", 0.06, -0.04, 0.16, ""),
            ("system='Be kind.'", 0.0, -0.09, 0.09, ""),
            ("system='Answer in one word.'", -0.15, -0.26, -0.04, "worse")]
    df = pd.DataFrame(rows, columns=["variant", "difference", "low", "high", "decision"])
    board = Leaderboard("contains", "system='Be brief.'", 0.6, 0.05, "holm", df)
    ax = leaderboard_plot(board)
    ax.get_figure().savefig(OUT / "leaderboard.png", dpi=110, bbox_inches="tight")


def cheapest() -> None:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    names = ["gpt-4.1-nano", "gpt-4o-mini", "gpt-4.1-mini", "gpt-4o", "cascade mini -> 4o"]
    cost = [0.15, 0.21, 0.56, 3.5, 1.2]
    score = [0.71, 0.82, 0.88, 0.93, 0.91]
    low = [0.63, 0.75, 0.82, 0.89, 0.86]
    ax.errorbar(cost, score, yerr=[np.subtract(score, low), [0] * 5], fmt="o", capsize=3)
    for x, y, name in zip(cost, score, names, strict=True):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, -10), fontsize=8)
    ax.axhline(0.8, color="C3", linestyle="--", label="min_score 0.8")
    ax.set_xscale("log")
    ax.set_xlabel("dollars per 1,000 calls (list price, log scale)")
    ax.set_ylabel("pass rate (bar: 95 % lower bound)")
    ax.set_title("The cheapest setup whose lower bound clears the bar")
    ax.legend(fontsize="small")
    fig.savefig(OUT / "cheapest.png", dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for draw in (sample_size, sequential, leaderboard, cheapest):
        draw()
    print("drawn in", OUT)
