"""The Files and Batches endpoints of an OpenAI-compatible API, with the client's
conventions: bearer key, retries by :mod:`workbench.retry`, failures as
:mod:`workbench.errors` with the key redacted.

Synchronous: a batch is polled every few seconds to minutes, from the caller's thread or
a sweep's; nothing here is worth an event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

# The chat client's own plumbing, so both speak to a server the same way: one place for
# the key header, the retry rule and the redaction of errors.
from ..client import _retry_after_status, _retry_after_transport, _Target
from ..retry import Attempts
from ..wire import Endpoint, read_reply
from .jsonl import ENDPOINT

__all__ = ["BatchAPI", "BatchInfo", "TERMINAL", "COMPLETION_WINDOW"]

COMPLETION_WINDOW = "24h"  # the only window OpenAI offers
# Statuses after which a batch changes no more (OpenAI's batch object).
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def _time(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, timezone.utc)
    return None


@dataclass(frozen=True)
class BatchInfo:
    """What the API says of one batch."""

    id: str
    status: str
    input_file_id: str
    output_file_id: str | None
    error_file_id: str | None
    created_at: datetime | None
    ended_at: datetime | None  # completed, failed, expired or cancelled
    total: int | None
    completed: int | None
    failed: int | None
    message: str | None  # the batch's own errors (a failed validation), in one line

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> BatchInfo:
        counts = data.get("request_counts") or {}
        errors = (data.get("errors") or {}).get("data") or []
        messages = [str(e.get("message") or e.get("code")) for e in errors if isinstance(e, dict)]
        ended = None
        for name in ("completed_at", "failed_at", "expired_at", "cancelled_at"):
            ended = ended or _time(data.get(name))

        def count(name: str) -> int | None:
            value = counts.get(name) if isinstance(counts, dict) else None
            return value if isinstance(value, int) else None

        return cls(
            id=str(data.get("id")),
            status=str(data.get("status")),
            input_file_id=str(data.get("input_file_id")),
            output_file_id=data.get("output_file_id") or None,
            error_file_id=data.get("error_file_id") or None,
            created_at=_time(data.get("created_at")),
            ended_at=ended,
            total=count("total"),
            completed=count("completed"),
            failed=count("failed"),
            message="; ".join(messages)[:500] or None,
        )


class BatchAPI:
    """``/files`` and ``/batches`` of one base URL (which includes ``/v1``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # No overall deadline: an upload of a 200 MB file takes what it takes.
        self._target = _Target(base_url, api_key, max_retries, None, time.perf_counter, None)
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._sleep = sleep

    def upload(self, filename: str, content: bytes) -> str:
        """POST /files (purpose ``batch``); the new file's id."""
        endpoint = self._target.endpoint("POST", "/files")
        response = self._send(
            endpoint,
            files={"file": (filename, content, "application/jsonl")},
            data={"purpose": "batch"},
        )
        reply = read_reply(endpoint, response, 0)
        file_id = reply.data.get("id")
        if not isinstance(file_id, str) or not file_id:
            raise endpoint.response_error("no file id in the answer", body=response.text, retries=0)
        return file_id

    def create(self, input_file_id: str, metadata: Mapping[str, str] | None = None) -> BatchInfo:
        """POST /batches for chat completions, within 24 hours."""
        body: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": ENDPOINT,
            "completion_window": COMPLETION_WINDOW,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        return self._batch(self._target.endpoint("POST", "/batches"), body)

    def retrieve(self, batch_id: str) -> BatchInfo:
        """GET /batches/{id}."""
        return self._batch(self._target.endpoint("GET", f"/batches/{batch_id}"), None)

    def cancel(self, batch_id: str) -> BatchInfo:
        """POST /batches/{id}/cancel: it becomes ``cancelling``, then ``cancelled``."""
        return self._batch(self._target.endpoint("POST", f"/batches/{batch_id}/cancel"), None)

    def content(self, file_id: str) -> str:
        """GET /files/{id}/content: an output or error file's JSONL text."""
        endpoint = self._target.endpoint("GET", f"/files/{file_id}/content")
        return self._send(endpoint, accept="*/*").text

    def close(self) -> None:
        self._http.close()

    def _batch(self, endpoint: Endpoint, body: dict[str, Any] | None) -> BatchInfo:
        response = self._send(endpoint, json=body)
        reply = read_reply(endpoint, response, 0)
        if not isinstance(reply.data.get("id"), str) or "status" not in reply.data:
            raise endpoint.response_error("not a batch object", body=response.text, retries=0)
        return BatchInfo.from_api(reply.data)

    def _send(
        self, endpoint: Endpoint, *, accept: str = "application/json", **kwargs: Any
    ) -> httpx.Response:
        """The first 2xx response (body read), after the usual retries; else our error."""
        attempts = Attempts(self._target.max_retries)
        headers = {**self._target.request_headers(stream=False), "Accept": accept}
        while True:
            try:
                response = self._http.request(
                    endpoint.method, endpoint.url, headers=headers, **kwargs
                )
            except httpx.TransportError as exc:
                self._sleep(_retry_after_transport(endpoint, attempts, exc))
                continue
            if response.is_success:
                return response
            self._sleep(_retry_after_status(endpoint, attempts, response))
