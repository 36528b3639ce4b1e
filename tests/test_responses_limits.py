"""A Responses sweep at the rate limit goes through the same limits layer as chat (issue 23:
"sweeps at the rate limit ... work the same").

The server follows OpenAI's rate-limit guide, which covers every endpoint of the API:
"x-ratelimit-limit-requests: The maximum number of requests that are permitted before
exhausting the rate limit", "x-ratelimit-remaining-requests: The remaining number of
requests that are permitted before exhausting the rate limit", "x-ratelimit-reset-requests:
The time until the rate limit (based on requests) resets to its initial state"; limits
"may be quantized, meaning they are enforced over shorter periods of time (e.g. 60,000
requests/minute may be enforced as 1,000 requests/second)", and a refused request counts
against the limit. Here: 3,000 a minute announced, enforced as a bucket of 5 refilling at
50 a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from loopback import LoopbackAPI, Received, Reply
from responses_server import message, response, serving

import workbench as wb

PER_MINUTE = 3000
RATE = PER_MINUTE / 60  # enforced per second
BURST = 5


class QuantizedResponses:
    """``POST /v1/responses`` behind a continuous request bucket; counts what it refuses."""

    def __init__(self) -> None:
        self.level = float(BURST)
        self.updated = time.monotonic()
        self.refused = 0
        self.answered = 0
        self._lock = threading.Lock()
        self._answer = serving(lambda body: response([message("ok")]))

    def _headers(self) -> dict[str, str]:
        missing = BURST - self.level
        return {
            "x-ratelimit-limit-requests": str(PER_MINUTE),
            "x-ratelimit-remaining-requests": str(int(self.level)),
            "x-ratelimit-reset-requests": f"{max(missing, 0) / RATE * 1000:.0f}ms",
        }

    def __call__(self, request: Received) -> Reply:
        if not request.path.endswith("/responses"):
            return self._answer(request)
        with self._lock:
            now = time.monotonic()
            self.level = min(BURST, self.level + (now - self.updated) * RATE)
            self.updated = now
            self.level -= 1  # a refused request counts against the limit too
            headers = self._headers()
            if self.level < 0:
                self.refused += 1
                wait_ms = -self.level / RATE * 1000
                return Reply(
                    status=429,
                    body={"error": {"message": "Rate limit reached for requests",
                                    "type": "requests", "code": "rate_limit_exceeded"}},
                    headers={**headers, "retry-after-ms": f"{wait_ms:.0f}"},
                )
            self.answered += 1
        reply = self._answer(request)
        reply.headers = {**(reply.headers or {}), **headers}
        return reply


@pytest.fixture
def limited(start_api: Callable[[Callable[[Received], Reply]], LoopbackAPI]
            ) -> QuantizedResponses:
    server = QuantizedResponses()
    start_api(server)
    return server


def test_a_responses_sweep_is_paced_by_the_announced_limits(limited: QuantizedResponses
                                                            ) -> None:
    s = wb.sweep("Say {{w}}.", vars={"w": [f"w{i}" for i in range(40)]},
                 model="gpt-4o-mini", api="responses", concurrency=16, max_tokens=16)
    df = s.run(progress=False)
    # Every answer kept once, through /v1/responses; the 429s were retried, not lost.
    assert (df.status == "ok").all() and len(df) == 40 and set(df.api) == {"responses"}
    assert limited.answered == 40
    assert len(wb.runs()) == 40
    # The pacer learned the server's limit from the Responses answers' headers (no more
    # than limit/60 a second), so the refusals are the first wave's, not one per call.
    pacer = s.session.limits.pacer(s._plan[0].prepared.provider.identity, "gpt-4o-mini")
    assert pacer.requests.bucket is not None
    assert pacer.requests.bucket.rate <= RATE * 1.01
    assert limited.refused < 20, limited.refused
