"""A loopback OpenAI-compatible server for prompt optimization: answers are right (the
expected word in capitals) only when the system prompt carries the hidden instruction
("capitals"), except for a share of cases answered right anyway; and a "reflection
model" (a request showing gepa's reflection prompt) that, shown a failure, proposes the
current instruction plus the hidden one. Every request is logged by LoopbackAPI.

``reflection`` picks the reflection model's behaviour: "helpful" (above), "nonsense"
(an answer with no words), "drop" (a proposal without the template's variables: the
instruction replaced by the hidden one alone, shown in a prompt template).
"""

from __future__ import annotations

import re

from decide_server import draw
from loopback import Received, Reply, chat_reply

HIDDEN = "Answer in CAPITALS."
REFLECTION_OPENING = "I provided an assistant with the following instructions"


class HiddenInstructionServer:
    def __init__(self, *, reflection: str = "helpful", lucky: float = 0.3,
                 usage: tuple[int, int] = (200, 20)) -> None:
        self.reflection = reflection
        self.lucky = lucky
        self.usage = usage

    def __call__(self, request: Received) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        model = str(body.get("model"))
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        user = next((m["content"] for m in messages if m.get("role") == "user"), "")
        prompt, completion = self.usage
        if user.startswith(REFLECTION_OPENING):
            return chat_reply(self._reflect(user), model=model, prompt_tokens=prompt * 3,
                              completion_tokens=completion * 3)
        word = re.search(r"word: (\w+)", user)
        answer = word.group(1) if word else user
        if HIDDEN.lower() in (system or "").lower() or draw("lucky", answer) < self.lucky:
            answer = answer.upper()
        return chat_reply(answer, model=model, prompt_tokens=prompt,
                          completion_tokens=completion)

    def _reflect(self, prompt: str) -> str:
        current = prompt.split("```")[1].strip()
        if self.reflection == "nonsense":
            return "```\n!!! ??? ...\n```"
        if self.reflection == "drop":
            return f"```\nRepeat the word. {HIDDEN}\n```"
        if "score 0.00" not in prompt or HIDDEN in current:
            return f"```\n{current}\n```"  # nothing to fix: the same text (refused)
        return f"Failures show the answers must be capitalised.\n```\n{current} {HIDDEN}\n```"
