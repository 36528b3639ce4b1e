"""After the last generation a judged sweep says it is still scoring ("scoring 2/4") in
its summary and on its progress bar, instead of sitting at 100 % while the judge works."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from loopback import Received, Reply, chat_reply

import workbench as wb
from workbench.calls.progress import ProgressBar

S = wb.scorers


def graded(request: Received) -> Reply:
    return chat_reply('{"reason": "right", "score": 4}', model=request.body["model"])


def wait_for(condition: Any, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_a_judged_sweep_shows_scoring_progress_after_its_last_generation(
    start_api: Any,
) -> None:
    answers = threading.Semaphore(0)  # each judge call waits for one release

    def handler(request: Received) -> Reply:
        if "response_format" not in request.body:
            return chat_reply("fine", model=request.body["model"])
        answers.acquire(timeout=20)
        return graded(request)

    start_api(handler)
    s = wb.sweep("{{city}}", vars={"city": ["Paris", "Rome", "Oslo", "Lima"]},
                 model="gpt-4o-mini", max_tokens=5, concurrency=4,
                 scorers=S.judge("Is it right?", model="gpt-4o-mini"))
    bar = ProgressBar(len(s))
    s.start()
    try:
        wait_for(lambda: s.progress.done == 4 and s.progress.to_score > 0)
        answers.release()  # one judge answer: the count moves
        # (The judge takes the runs in batches: the next one is sent once the first ends.)
        wait_for(lambda: s.progress.scored >= 1 and s.progress.scoring() != "")
        progress = s.progress
        shown = re.search(r"scoring (\d+)/(\d+)", progress.summary())
        assert shown and 1 <= int(shown[1]) < int(shown[2]) <= 4, progress.summary()
        assert progress.summary().startswith("4/4 done")  # generation is over...
        bar.show(progress)
        assert bar._bar.desc.startswith("scoring ")  # ...and the bar says what it waits for
    finally:
        for _ in range(8):
            answers.release()
    assert s.wait(timeout=30)
    assert s.progress.state == "done" and "scoring" not in s.progress.summary()
    bar.show(s.progress)
    assert bar._bar.desc.startswith("sweep")
    bar.close()
    assert s.df["score:judge"].tolist() == [4.0] * 4
