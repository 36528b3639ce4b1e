"""The Batch API's files without I/O: a sweep's calls as request lines, split within the
API's limits, and the answer lines of its output and error files read back.

A line's ``custom_id`` is the run's identity (``request_hash:sample_index``), so every
answer maps back to its planned point whatever order the provider writes them in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.api.chat_api import chat_route
from workbench.core.identity import STREAM_ONLY_KEYS

__all__ = [
    "MAX_BATCH_REQUESTS",
    "MAX_BATCH_BYTES",
    "ENDPOINT",
    "Answer",
    "custom_id_of",
    "identity_of",
    "request_line",
    "split_lines",
    "parse_answers",
    "read_answers",
    "best_answers",
    "UNREADABLE",
]

# The error code of an answer whose line could not be read: its request has no usable
# answer, so it becomes an error row and the next run sends it again.
UNREADABLE = "unreadable_line"
# A custom_id written out before the line broke (a cut-off line, a bad escape later on).
_CUSTOM_ID = re.compile(r'"custom_id"\s*:\s*"((?:[^"\\]|\\.)*)"')

# OpenAI's limits per batch input file (platform.openai.com/docs/guides/batch).
MAX_BATCH_REQUESTS = 50_000
MAX_BATCH_BYTES = 200 * 1024 * 1024
ENDPOINT = "/v1/chat/completions"


def custom_id_of(identity: tuple[str, int]) -> str:
    request_hash, sample_index = identity
    return f"{request_hash}:{sample_index}"


def identity_of(custom_id: str) -> tuple[str, int] | None:
    """The run identity a custom_id names, or None for one we did not write."""
    request_hash, colon, index = custom_id.rpartition(":")
    if not colon or not request_hash or not index.isdigit():
        return None
    return request_hash, int(index)


def endpoint_of(body: dict[str, Any]) -> str:
    """The batch endpoint of a chat body: ``/v1/chat/completions`` or ``/v1/responses``."""
    return "/v1" + chat_route(body).path


def request_line(custom_id: str, body: dict[str, Any]) -> bytes:
    """One line of the input file; a batch answers whole responses, never streams."""
    route = chat_route(body)  # the body as its API takes it (workbench.api.chat_api)
    sent = {k: v for k, v in route.body.items() if k not in STREAM_ONLY_KEYS}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1" + route.path, "body": sent}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def split_lines(
    lines: Sequence[bytes],
    *,
    max_requests: int = MAX_BATCH_REQUESTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[list[bytes]]:
    """The lines in order, cut into files of at most ``max_requests`` lines and
    ``max_bytes`` bytes each. A single line above ``max_bytes`` raises ValueError."""
    files: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if len(line) > max_bytes:
            raise ValueError(
                f"one request is {len(line)} bytes, above the batch file limit of "
                f"{max_bytes}: send this sweep live"
            )
        if current and (len(current) >= max_requests or size + len(line) > max_bytes):
            files.append(current)
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        files.append(current)
    return files


@dataclass(frozen=True)
class Answer:
    """One line of an output or error file: a chat completion, or why there is none."""

    custom_id: str
    status_code: int | None  # the HTTP status the request got inside the batch
    body: dict[str, Any] | None  # the chat.completion (or the error body)
    error: str | None  # one line, when the request has no usable answer
    error_code: str | None  # e.g. batch_expired, batch_cancelled, or the API's code

    @property
    def ok(self) -> bool:
        return self.error is None and self.body is not None


def _error_text(error: Any) -> tuple[str, str | None]:
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message") or json.dumps(error)[:300]
        return str(message), None if code is None else str(code)
    return str(error)[:300], None


def parse_answers(text: str) -> list[Answer]:
    """Every readable line of an output or error file (see :func:`read_answers`)."""
    return read_answers(text)[0]


def read_answers(text: str) -> tuple[list[Answer], list[str]]:
    """The answers of an output or error file, and what could not be read, in one line each.

    One broken line never costs the others: a line that is not JSON (or has no custom_id)
    whose custom_id can still be found becomes an error answer (code ``unreadable_line``)
    for that request; a line with no custom_id at all is only reported, and its request,
    which then has no answer, is found missing by the caller."""
    answers: list[Answer] = []
    unreadable: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            answers.append(_answer(data, number))
        except ValueError as exc:
            found = _CUSTOM_ID.search(line)
            problem = f"line {number} cannot be read ({str(exc)[:200]})"
            if found is None:
                unreadable.append(problem)
                continue
            try:
                custom_id = str(json.loads(f'"{found.group(1)}"'))
            except ValueError:
                custom_id = found.group(1)
            answers.append(Answer(custom_id, None, None, problem, UNREADABLE))
    return answers, unreadable


def best_answers(answers: Iterable[Answer]) -> dict[str, Answer]:
    """One answer per custom_id: a usable answer wins over any error, whatever the order
    (a "500 then 200" pair is one request answered and paid on its second try)."""
    best: dict[str, Answer] = {}
    for answer in answers:
        kept = best.get(answer.custom_id)
        if kept is None or (answer.ok and not kept.ok):
            best[answer.custom_id] = answer
    return best


def _answer(data: Any, number: int) -> Answer:
    if not isinstance(data, dict) or not isinstance(data.get("custom_id"), str):
        raise ValueError(f"line {number} of a batch result file has no custom_id")
    custom_id = data["custom_id"]
    response = data.get("response")
    if data.get("error"):
        message, code = _error_text(data["error"])
        return Answer(custom_id, None, None, message, code)
    if not isinstance(response, dict):
        return Answer(custom_id, None, None, "the batch returned no response", None)
    status = response.get("status_code")
    body = response.get("body")
    status_code = status if isinstance(status, int) else None
    if not isinstance(body, dict):
        return Answer(custom_id, status_code, None, "the response has no JSON body", None)
    if status_code is not None and not 200 <= status_code < 300 or body.get("error"):
        message, code = _error_text(body.get("error") or body)
        return Answer(custom_id, status_code, body, f"HTTP {status_code}: {message}", code)
    return Answer(custom_id, status_code, body, None, None)


def identities(custom_ids: Iterable[str]) -> set[tuple[str, int]]:
    return {i for i in map(identity_of, custom_ids) if i is not None}
