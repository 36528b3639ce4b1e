"""A loopback OpenAI-compatible server whose true pass rates and token counts are set by
the test: each (model, system prompt) variant answers "yes" to a share of the cases.

Case i of n is asked as "Question i"; a variant with pass rate r answers "yes" when the
case's fixed draw u_i (the same for every variant, so variants agree on easy and hard
cases, as prompts on one model do) is below r, else "no". With ``independent=True`` each
variant draws its own u. Usage is fixed per model, so the cost of a run is known.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from loopback import Received, Reply, chat_reply


def draw(*parts: object) -> float:
    """A uniform number in [0, 1) from a hash: the same parts, the same number."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class PassRateServer:
    """``handler`` for LoopbackAPI; ``rates[(model, system)]`` is the true pass rate,
    ``usage[model]`` the (prompt, completion, cached) tokens of every answer."""

    def __init__(self, rates: Mapping[tuple[str, str | None], float], *,
                 usage: Mapping[str, tuple[int, int, int]] | None = None,
                 independent: bool = False,
                 unsure: Mapping[str, float] | None = None) -> None:
        self.rates = dict(rates)
        # With ``unsure``, answers are JSON ({"answer": "yes"}) except, for a model's share
        # of the cases (its own draws), the plain text "maybe": what a cascade escalates.
        self.unsure = dict(unsure or {})
        self.usage = dict(usage or {})
        self.independent = independent

    def __call__(self, request: Received) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        model = str(body.get("model"))
        system = None
        question = ""
        for message in body.get("messages", []):
            if message.get("role") == "system":
                system = message.get("content")
            elif message.get("role") == "user":
                question = str(message.get("content"))
        rate = self.rates[(model, system)]
        case = re.search(r"\d+", question)
        key = case.group(0) if case else question
        u = draw(model, system, key) if self.independent else draw(key)
        prompt, completion, cached = self.usage.get(model, (20, 1, 0))
        text = "yes" if u < rate else "no"
        if self.unsure:
            unsure = draw("unsure", model, key) < self.unsure.get(model, 0.0)
            text = "maybe" if unsure else f'{{"answer": "{text}"}}'
        return chat_reply(text, model=model, prompt_tokens=prompt,
                          completion_tokens=completion, cached_tokens=cached)
