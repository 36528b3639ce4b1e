"""``wb.export_finetune``: the runs that passed, as chat-format JSONL for fine-tuning.

Each line is ``{"messages": [...]}``, the format of OpenAI's supervised fine-tuning guide
(https://platform.openai.com/docs/guides/supervised-fine-tuning): the messages the run
sent (system, user, earlier turns, tool results) and the answer as the final assistant
message, its ``tool_calls`` kept. Every example is checked before the file is written:
known roles only, the last message the assistant's and not empty, and no key-shaped text
(``workbench.api.keycheck``). A bad example refuses the whole file, naming the run.

The training cost is an estimate: tokens of every example (``workbench.core.tokens``, the
cookbook's counting rule) times epochs times a per-model training price. genai-prices
has no training prices, so :data:`TRAINING_PRICES` lists them, from OpenAI's pricing page
(https://openai.com/api/pricing/, the "Fine-tuning" table, training per 1M tokens, as
published in 2025). A model not listed has an unknown cost, said so.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.api.keycheck import find_key
from workbench.core.errors import InvalidInputError
from workbench.core.tokens import count_chat_tokens
from workbench.scoring.scored import scored_frame, scorer_name

if TYPE_CHECKING:

    from workbench.store import AnyStore

__all__ = ["TRAINING_PRICES", "FinetuneExport", "export_finetune", "validate_example"]

# USD per 1M training tokens, as OpenAI's pricing page (fine-tuning table) listed them in
# 2025. Not checked against the live page when written (this machine cannot reach it), and
# third-party summaries disagree with each other: verify before budgeting. Edit or extend
# the dict to use other prices.
TRAINING_PRICES: dict[str, float] = {
    "gpt-4.1-2025-04-14": 25.00,
    "gpt-4.1-mini-2025-04-14": 5.00,
    "gpt-4.1-nano-2025-04-14": 1.50,
    "gpt-4o-2024-08-06": 25.00,
    "gpt-4o-mini-2024-07-18": 3.00,
    "gpt-3.5-turbo-0125": 8.00,
}
_ROLES = {"system", "developer", "user", "assistant", "tool"}
_WHERE = re.compile(r"^\s*(?P<name>[\w:.-]+)\s*(?:(?P<op>==|>=|<=|>|<)\s*(?P<rhs>\S+))?\s*$")


@dataclass(frozen=True)
class FinetuneExport:
    path: Path
    examples: int
    tokens: int
    epochs: int
    model: str
    estimated_cost_usd: float | None

    def __str__(self) -> str:
        cost = ("unknown (no training price known for this model: see "
                "workbench.scoring.finetune.TRAINING_PRICES)"
                if self.estimated_cost_usd is None
                else f"about ${self.estimated_cost_usd:.4f} (an estimate: {self.tokens} tokens"
                     f" x {self.epochs} epochs at the listed price of {self.model})")
        return (f"{self.examples} examples, {self.tokens} tokens, written to {self.path}; "
                f"training cost {cost}")


def export_finetune(
    data: Any,
    path: str | os.PathLike[str],
    *,
    where: str = "human == pass",
    threshold: float | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
    epochs: int = 3,
    store: AnyStore,
) -> FinetuneExport:
    """Write the runs of ``data`` chosen by ``where`` as fine-tuning JSONL at ``path``.

    ``where``: ``"NAME == pass"`` (the scorer's verdict), ``"NAME >= 4"`` (its value;
    also ``>``, ``<=``, ``<``, ``== 1``), or a bare scorer name with ``threshold=``
    (value at least the threshold) or without (its verdict). Prints and returns the
    number of examples, their tokens and the estimated training cost for ``model``.
    """

    if not isinstance(epochs, int) or epochs < 1:
        raise InvalidInputError(f"epochs is a whole number, 1 or more, not {epochs!r}")
    name, keep = _parse_where(where, threshold)
    frame = scored_frame(data, name, store, "data")
    chosen = frame[keep(frame, "score:" + name)]
    if chosen.empty:
        raise InvalidInputError(f"no run matches where={where!r}: nothing to export")
    examples = [example_of(row) for row in chosen.to_dict("records")]
    for run_id, example in zip(chosen["run_id"], examples, strict=True):
        problem = validate_example(example)
        if problem:
            raise InvalidInputError(f"run {run_id}: {problem}; nothing was written")

    tokens = sum(count_chat_tokens(e["messages"], model) for e in examples)
    target = Path(path)
    with target.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(example, ensure_ascii=False) + "\n")
    price = TRAINING_PRICES.get(model)
    cost = None if price is None else tokens * epochs * price / 1_000_000
    result = FinetuneExport(target, len(examples), tokens, epochs, model, cost)
    print(result)
    return result


def _parse_where(where: str, threshold: float | None) -> tuple[str, Any]:
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    match = _WHERE.match(where) if isinstance(where, str) else None
    if match is None:
        raise InvalidInputError(
            f"where={where!r} is not understood: write 'human == pass', 'judge >= 4' or a"
            " scorer name with threshold=..."
        )
    name, op, rhs = scorer_name(match["name"]), match["op"], match["rhs"]
    if op is None and threshold is not None:
        op, rhs = ">=", str(threshold)
    if op is None or (op == "==" and rhs in ("pass", "passed", "True", "true")):
        return name, lambda f, _c: f["passed"].fillna(False).astype(bool)
    if op == "==" and rhs in ("fail", "failed", "False", "false"):
        return name, lambda f, _c: (~f["passed"].fillna(True)).astype(bool)
    try:
        bound = float(rhs)
    except ValueError:
        raise InvalidInputError(
            f"where={where!r}: compare with pass, fail or a number, not {rhs!r}") from None
    compare = {"==": pd.Series.eq, ">=": pd.Series.ge, "<=": pd.Series.le,
               ">": pd.Series.gt, "<": pd.Series.lt}[op]
    return name, lambda f, c: compare(f[c], bound).fillna(False).astype(bool)


def example_of(row: dict[str, Any]) -> dict[str, Any]:
    """One run as a fine-tuning example: the messages sent, then the answer."""
    try:
        sent = json.loads(row.get("messages") or "[]")
    except ValueError:
        sent = []
    if not sent:
        if row.get("system"):
            sent.append({"role": "system", "content": row["system"]})
        if row.get("prompt"):
            sent.append({"role": "user", "content": row["prompt"]})
    answer: dict[str, Any] = {"role": "assistant", "content": row.get("output") or ""}
    calls = row.get("tool_calls")
    if isinstance(calls, str) and calls:
        parsed = json.loads(calls)
        if parsed:
            answer["tool_calls"] = parsed
            if not answer["content"]:
                answer["content"] = None
    return {"messages": [*sent, answer]}


def validate_example(example: Any) -> str | None:
    """What is wrong with one fine-tuning example, or None."""
    messages = example.get("messages") if isinstance(example, dict) else None
    if not isinstance(messages, list) or not messages:
        return "no messages"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return f"message {i} has no valid role (one of {', '.join(sorted(_ROLES))})"
    last = messages[-1]
    if last["role"] != "assistant":
        return "the last message is not the assistant's"
    content = last.get("content")
    if not (isinstance(content, str) and content.strip()) and not last.get("tool_calls"):
        return "the assistant's answer is empty"
    if not any(m["role"] == "user" for m in messages):
        return "no user message"
    found = find_key(json.dumps(messages, ensure_ascii=False))
    if found:
        return f"it holds text shaped like {found}: remove it before training"
    return None
