"""The sentence a planned sweep's estimate carries: the smallest difference between two
of its variants that its number of test cases can detect ("with 40 cases x 2 repeats you
can detect a difference of about 24 points"), from the pass rate of its stored runs when
it has some, else from the hardest case (a 50 % pass rate).

Cautious by design: the variants' answers are taken as independent, and repeats are not
counted as extra cases (they average out only the sampling noise of one case).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.decide.samplesize import detectable_difference

__all__ = ["Detectable", "planned_detectable"]


@dataclass(frozen=True)
class Detectable:
    cases: int
    repeats: int
    difference: float  # a share (0.14 = 14 points); nan when nothing is detectable
    pass_rate: float
    measured_runs: int  # stored runs the pass rate comes from (0: assumed)
    power: float
    alpha: float

    def __str__(self) -> str:
        shape = f"{self.cases} cases" + (f" x {self.repeats} repeats" if self.repeats > 1 else "")
        source = (f"pass rate {self.pass_rate:.0%} from {self.measured_runs} stored runs"
                  if self.measured_runs else "pass rate assumed 50 %, the hardest case")
        if math.isnan(self.difference):
            return f"with {shape} no difference between two variants can be detected ({source})"
        return (f"with {shape} you can detect a difference of about"
                f" {100 * self.difference:.0f} points between two variants (power"
                f" {self.power:.0%}, alpha {self.alpha:g}; {source})")


def planned_detectable(sweep: Any, *, power: float = 0.8,
                       alpha: float = 0.05) -> Detectable | None:
    """For a Sweep as planned; None when it has one variant or fewer than 2 cases."""
    variants = math.prod(len(v) for v in sweep.grid.values()) if sweep.grid else 1
    repeats = max(1, int(sweep.repeats))
    cases = len(sweep) // (variants * repeats)
    if variants < 2 or cases < 2:
        return None
    rate, runs = _stored_pass_rate(sweep)
    rate = min(0.99, max(0.01, rate))
    # A drop from p is a rise from 1 - p with pass and fail swapped: near a 100 % pass
    # rate the detectable change is a drop, near 0 % a rise; the smaller is said.
    both = [detectable_difference(cases, baseline=p, power=power, alpha=alpha)
            for p in (rate, 1 - rate)]
    found = [d for d in both if not math.isnan(d)]
    difference = min(found) if found else math.nan
    return Detectable(cases, repeats, difference, rate, runs, power, alpha)


def _stored_pass_rate(sweep: Any) -> tuple[float, int]:
    """The mean of the sweep's first pass/fail score column over its stored runs."""
    try:
        df = sweep.df
    except Exception:  # noqa: BLE001 - an unreadable table: plan from the assumption
        return 0.5, 0
    for column in (c for c in df.columns if str(c).startswith("score:")):
        values = df[column].dropna()
        if len(values) and values.isin((0.0, 1.0)).all():
            return float(values.mean()), len(values)
    return 0.5, 0
