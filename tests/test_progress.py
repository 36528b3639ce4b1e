"""A sweep's progress line and its shared counters."""

from __future__ import annotations

from workbench.calls.progress import SharedProgress, SweepProgress


def test_summary_names_what_matters() -> None:
    assert SweepProgress(total=20, done=12, spent_usd=0.0012).summary() == (
        "12/20 done · $0.0012"
    )
    busy = SweepProgress(total=5, done=5, errors=1, replayed=3, rate_limited=2)
    assert busy.summary() == "5/5 done · 1 error · 3 from the table · 2× rate-limited · $0"
    stopped = SweepProgress(total=5, done=2, state="stopped", message="run it again")
    assert stopped.summary().endswith("stopped: run it again")


def test_shared_counters_hand_out_snapshots() -> None:
    shared = SharedProgress()
    shared.update(total=3, state="running")
    first = shared.add(done=1, spent_usd=0.5)
    second = shared.add(done=1)
    assert (first.done, second.done, second.spent_usd) == (1, 2, 0.5)
    first.done = 99  # a snapshot is a copy
    assert shared.snapshot().done == 2
