"""A replay (an answer from the table) took no API time: its latency is "not measured"
(missing), never a 0 s that would pull a latency mean down, and the footer says
"cached" where a fresh answer shows its seconds."""

from __future__ import annotations

import math
from typing import Any

from loopback import Received, Reply, chat_reply

import workbench as wb
from workbench.notebook.display import footer


def test_a_replayed_answer_has_no_latency_and_its_footer_says_cached(start_api: Any) -> None:
    def answer(request: Received) -> Reply:
        return chat_reply("Paris", model=request.body["model"])

    start_api(answer)
    first = wb.chat("Capital of France?", model="gpt-4o-mini", max_tokens=5)
    again = wb.chat("Capital of France?", model="gpt-4o-mini", max_tokens=5)
    assert not first.cache_hit and first.latency_s is not None and first.latency_s > 0
    assert again.cache_hit and again.latency_s is None
    assert " s · " in footer(first) and "cached" in footer(again)
    assert "0.00 s" not in footer(again)
    rows = wb.runs()
    replayed = rows[rows["cache_hit"].astype(bool)]
    assert len(replayed) == 1 and math.isnan(float(replayed["latency_s"].iloc[0]))
    # A latency mean counts the calls that were made, not the replays.
    assert rows["latency_s"].mean() == first.latency_s
