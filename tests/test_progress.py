"""A sweep's progress line, its shared counters, and the bar a saved notebook keeps."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import tqdm.auto
import tqdm.notebook
from IPython.utils.capture import capture_output
from testing_shell import TestingShell, open_shell

from workbench.calls.progress import Bar, ProgressBar, SharedProgress, SweepProgress

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestingShell]:
    """A shell in which tqdm.auto is the widget bar, as in a Jupyter kernel."""
    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)
    with open_shell() as shell:
        yield shell


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


def test_a_finished_bar_leaves_its_final_count_in_the_saved_output(
        notebook: TestingShell) -> None:
    # A saved notebook keeps the text/plain of the last display of an output; tqdm shows its
    # widget once, at 0 %, and a re-opened notebook read "sweep: 0%| | 0/3" for good.
    with capture_output() as captured:
        bar = ProgressBar(3)
        bar.show(SweepProgress(total=3, done=1, state="running"))
        bar.show(SweepProgress(total=3, done=3, ok=3, spent_usd=0.0012, state="done"))
        bar.close()
    first, last = captured.outputs[0], captured.outputs[-1]
    assert not first.update and last.update
    assert first.transient["display_id"] == last.transient["display_id"]  # the same output
    assert last.data[WIDGET]["model_id"] == first.data[WIDGET]["model_id"]  # same widget
    assert re.fullmatch(r"sweep: 3/3 done in \d+\.\d s · errors=0 spent=\$0\.0012",
                        last.data["text/plain"]), last.data["text/plain"]
    assert bar._bar.container.children[1].bar_style == "success"


def test_a_bar_closed_short_is_red_unless_the_work_ended_for_a_reason(
        notebook: TestingShell) -> None:
    with capture_output() as captured:
        interrupted = Bar(2, "optimize", "candidate")
        interrupted.update(1)
        interrupted.close()
        ended = Bar(2, "optimize", "candidate")
        ended.update(1)
        ended.close(ended="a candidate scored 1 on every training case")
    assert interrupted._bar.container.children[1].bar_style == "danger"
    widget = ended._bar.container.children[1]
    assert widget.bar_style == "success" and widget.value == widget.max == 1  # full, green
    saved = [o.data["text/plain"] for o in captured.outputs if o.update]
    assert saved[0].startswith("optimize: 1/2 done in ") and "stopped" not in saved[0]
    assert saved[1].startswith("optimize: 1/2 done in ")
    assert saved[1].endswith(", then stopped: a candidate scored 1 on every training case")


def test_a_terminal_bar_prints_its_count_and_publishes_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    bar = Bar(3, "planning", "run")
    bar.update(3)
    bar.close()
    assert "planning: 100%" in capsys.readouterr().err and bar.n == 3
