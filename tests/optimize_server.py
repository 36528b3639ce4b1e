"""A loopback OpenAI-compatible server for prompt optimization: answers are right (the
expected word in capitals) only when the system prompt carries the hidden instruction
("capitals"), except for a share of cases answered right anyway; and a "reflection
model" (a request showing gepa's reflection prompt) that, shown a failure, proposes the
current instruction plus the hidden one; a judge (a request with response_format) passes
answers in capitals and says why it fails the rest. Every request is logged by LoopbackAPI.

``reflection`` picks the reflection model's behaviour: "helpful" (above), "nonsense"
(an answer with no words), "wander" (a new, no better text each time), "late" (wanders
three times, then helpful), "drop" (a proposal without the template's variables: the
instruction replaced by the hidden one alone, shown in a prompt template).
"""

from __future__ import annotations

import re

from decide_server import draw
from loopback import Received, Reply, chat_reply

HIDDEN = "Answer in CAPITALS."
REFLECTION_OPENING = "I provided an assistant with the following instructions"


class HiddenInstructionServer:
    def __init__(self, *, reflection: str = "helpful", lucky: float = 0.3) -> None:
        self.reflection = reflection
        self.lucky = lucky
        self.reflections = 0

    def __call__(self, request: Received) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        model = str(body.get("model"))
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        user = next((m["content"] for m in messages if m.get("role") == "user"), "")
        # Usage as a server counts it, about 4 characters a token: the estimate's to match.
        prompt = sum(len(str(m.get("content"))) for m in messages) // 4 + 8
        if "response_format" in body:  # a judge: passes an answer in capitals
            answer = user.split("Answer to grade:")[-1].split("Reference answer:")[0].strip()
            good = bool(answer) and answer == answer.upper()
            enum = str(body["response_format"]["json_schema"]["schema"]["properties"]["score"])
            grade = ('"pass"' if good else '"fail"') if "pass" in enum else (5 if good else 1)
            reason = "in capitals" if good else "the answer is not in capitals"
            text = f'{{"score": {grade}, "reason": "{reason}"}}'
            return chat_reply(text, model=model, prompt_tokens=prompt,
                              completion_tokens=len(text) // 4 + 1)
        if user.startswith(REFLECTION_OPENING):
            text = self._reflect(user)
            return chat_reply(text, model=model, prompt_tokens=prompt,
                              completion_tokens=len(text) // 4 + 1)
        word = re.search(r"word: (\w+)", user)
        answer = word.group(1) if word else user
        if HIDDEN.lower() in (system or "").lower() or draw("lucky", answer) < self.lucky:
            answer = answer.upper()
        return chat_reply(answer, model=model, prompt_tokens=prompt,
                          completion_tokens=len(answer) // 4 + 1)

    def _reflect(self, prompt: str) -> str:
        current = prompt.split("```")[1].strip()
        if self.reflection == "nonsense":
            return "```\n!!! ??? ...\n```"
        self.reflections += 1
        late = self.reflection == "late" and self.reflections <= 3
        if self.reflection == "wander" or late:  # a new text, never the hidden one
            return f"```\n{current} Be careful.\n```"
        if self.reflection == "drop":
            return f"```\nRepeat the word. {HIDDEN}\n```"
        failed = "score 0.00" in prompt or "not in capitals" in prompt
        if not failed or HIDDEN in current:
            return f"```\n{current}\n```"  # nothing to fix: the same text (refused)
        return f"Failures show the answers must be capitalised.\n```\n{current} {HIDDEN}\n```"
