"""Scripted mixes of faults: which run meets which faults, attempt by attempt.

A scenario is the list of what the server does on the 1st, 2nd, ... request of one run
(the last entry repeats), with the outcome the workbench must record for it. Runs are
told apart by the ``#N`` their prompt ends with; a mix deals scenarios out to N exactly
(a shuffled deck, fixed seed), so a test knows how many runs meet each one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .server import Action, Fault, Plan, Request, run_index

__all__ = ["Scenario", "Mix", "SWEEP_MIX", "STREAM_MIX", "EMBED_MIX"]


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Action, ...]
    status: str  # "ok" or "error": what the row must say
    reason: str = ""  # a fragment the error line must hold
    min_retries: int = 0

    def action(self, attempt: int) -> Action:
        return self.steps[min(attempt, len(self.steps) - 1)]


def _s(
    name: str,
    *faults: Fault | Action,
    status: str = "ok",
    reason: str = "",
    min_retries: int | None = None,
) -> Scenario:
    steps = tuple(f if isinstance(f, Action) else Action(f) for f in faults)
    if min_retries is None:
        min_retries = len(steps) - 1 if status == "ok" else 0
    return Scenario(name, steps, status, reason, min_retries)


OK = Fault.OK
F = Fault


def _ms(ms: int) -> Action:
    return Action(Fault.RATE_LIMIT_MS, retry_after_ms=ms)


def _soon(fault: Fault) -> Action:
    """A 5xx that says when to come back (retry-after-ms), as many gateways do."""
    return Action(fault, retry_after_ms=5)


class Mix:
    """Scenarios dealt out to run numbers 0..n-1, ``count`` of each, in shuffled order."""

    def __init__(self, counts: Sequence[tuple[Scenario, int]], *, seed: int = 7) -> None:
        deck = [scenario for scenario, count in counts for _ in range(count)]
        random.Random(seed).shuffle(deck)
        self.deck = deck
        self.counts = {scenario.name: count for scenario, count in counts}
        self._by_name = {scenario.name: scenario for scenario, _ in counts}

    def __len__(self) -> int:
        return len(self.deck)

    def scenario(self, index: int) -> Scenario:
        return self.deck[index % len(self.deck)]

    def named(self, name: str) -> Scenario:
        return self._by_name[name]

    def plan(self) -> Plan:
        def decide(request: Request) -> Action:
            index = run_index(request)
            if index is None:
                return Action(Fault.OK)
            return self.scenario(index).action(request.attempt)

        return decide


# The client is configured with max_retries=2 (three requests per call) and a timeout
# shorter than the server's stall. Slow faults (whole-second retry-afters, stalls, 429s
# that never end, 5xx and resets without a retry-after, which wait out a 0.5-1 s
# backoff) are few: each one holds a call for a second or more.
SWEEP_MIX = Mix(
    [
        (_s("ok", OK), 640),
        (_s("429 ms then ok", _ms(5), OK), 30),
        (_s("429 ms twice then ok", _ms(1), _ms(50), OK), 10),
        (_s("429 retry-after seconds then ok", F.RATE_LIMIT_S, OK), 2),
        (_s("429 retry-after date then ok", F.RATE_LIMIT_DATE, OK), 2),
        (_s("429 bare then ok", F.RATE_LIMIT_BARE, OK), 2),
        (_s("429 for ever", _ms(1), status="error", reason="HTTP 429", min_retries=11), 1),
        (_s("500 then ok", _soon(F.HTTP_500), OK), 30),
        (_s("500 backoff then ok", F.HTTP_500, OK), 5),
        (_s("502 then ok", _soon(F.HTTP_502), OK), 25),
        (_s("503 twice then ok", _soon(F.HTTP_503), _soon(F.HTTP_503), OK), 15),
        (
            _s("503 for ever", _soon(F.HTTP_503), status="error", reason="HTTP 503", min_retries=2),
            10,
        ),
        (_s("reset then ok", F.RESET, OK), 20),
        (_s("reset for ever", F.RESET, status="error", reason="Could not talk", min_retries=2), 4),
        (_s("stall then ok", F.STALL, OK), 4),
        (_s("stall for ever", F.STALL, status="error", reason="Timed out", min_retries=2), 1),
        (_s("400", F.HTTP_400, status="error", reason="HTTP 400"), 40),
        (_s("malformed json", F.MALFORMED_JSON, status="error", reason="not valid JSON"), 40),
        (_s("wrong content type", F.WRONG_CONTENT_TYPE, status="error", reason="text/html"), 40),
        (_s("empty choices", F.EMPTY_CHOICES, status="error", reason="no choices"), 40),
        (_s("error in a 200", F.ERROR_IN_200, status="error", reason="overloaded"), 39),
    ]
)

# Streamed calls meet the event-stream faults as well.
STREAM_MIX = Mix(
    [
        (_s("ok", OK), 50),
        (_s("sse cut before [DONE]", F.SSE_CUT, status="error", reason="stopped after"), 15),
        (_s("sse cut mid-json", F.SSE_CUT_JSON, status="error", reason="stopped after"), 15),
        (_s("429 ms then ok", _ms(5), OK), 10),
        (_s("500 then ok", F.HTTP_500, OK), 10),
        (_s("reset then ok", F.RESET, OK), 10),
        (_s("stall then ok", F.STALL, OK), 3),
        (_s("wrong content type", F.WRONG_CONTENT_TYPE, status="error", reason="text/html"), 5),
        (_s("json to a stream", F.ERROR_IN_200, status="error", reason="overloaded"), 5),
        (_s("400", F.HTTP_400, status="error", reason="HTTP 400"), 5),
    ]
)

EMBED_MIX = Mix(
    [
        (_s("ok", OK), 20),
        (_s("500 then ok", F.HTTP_500, OK), 5),
        (_s("429 ms then ok", _ms(5), OK), 5),
        (_s("reset then ok", F.RESET, OK), 5),
        (_s("malformed json", F.MALFORMED_JSON, status="error", reason="not valid JSON"), 5),
        (_s("wrong content type", F.WRONG_CONTENT_TYPE, status="error", reason="text/html"), 5),
        (_s("error in a 200", F.ERROR_IN_200, status="error", reason="overloaded"), 5),
    ]
)
