"""The Files and Batches endpoints of an OpenAI-compatible API, with the client's
conventions: bearer key, retries by :mod:`workbench.api.retry`, failures as
:mod:`workbench.core.errors` with the key redacted, and every request through the limits
layer (:mod:`workbench.api.limits`): paced by the server's ``x-ratelimit-*`` headers, its
429s heard (and ``retry-after`` honoured) there, as for chat calls.

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
from workbench.api.client import _Target
from workbench.api.limits import CallLimits, Limits
from workbench.api.retry import Attempts
from workbench.api.retrywait import retry_after_status, retry_after_transport
from workbench.api.wire import Endpoint, lower_headers, read_reply
from workbench.core.errors import APIError, WorkbenchError
from workbench.sweeps.batch.jsonl import ENDPOINT

__all__ = ["BatchAPI", "BatchInfo", "TERMINAL", "COMPLETION_WINDOW"]

COMPLETION_WINDOW = "24h"  # the only window OpenAI offers
# GET /batches pages (of at most 100, OpenAI's maximum) read when looking for a batch a
# create whose answer was lost may have made: it is among the newest, listed first.
LIST_PAGE_SIZE = 100
LIST_MAX_PAGES = 10
# The name the Files and Batches endpoints' limits are paced under, in the limits layer
# (per base URL): they are not any one model's.
BATCH_LIMITS = "files and batches"
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
        limits: Limits | None = None,
    ) -> None:
        # No overall deadline: an upload of a 200 MB file takes what it takes.
        self._target = _Target(base_url, api_key, max_retries, None, time.perf_counter, None)
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._sleep = sleep
        self._limits = limits if limits is not None else Limits()  # the session's, if given
        self._timeout = timeout  # a limit that frees up later than this is refused at once

    def _limited(self) -> CallLimits:
        """One request's place in the limits layer, its turn waited for."""
        call = self._limits.call(self._target.base_url, BATCH_LIMITS, 0, self._timeout)
        wait = max(call.ticket.wait_s, call.owed_s())
        if wait > 0:
            self._sleep(wait)
        return call

    def _request(self, call: CallLimits, method: str, url: str, **kwargs: Any) -> httpx.Response:
        call.sending()
        response = self._http.request(method, url, **kwargs)
        if response.is_success:
            call.on_success(lower_headers(response.headers))
        return response

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

    def create(self, input_file_id: str, metadata: Mapping[str, str] | None = None,
               *, api_endpoint: str = ENDPOINT) -> BatchInfo:
        """POST /batches for chat completions, within 24 hours; at most one batch per call.

        A create is never retried blind: when its answer is lost (a timeout, a broken
        connection, a 5xx) the batch may exist all the same, and a second POST would be a
        second batch, paid and never tracked. So before each retry (and before giving up)
        the batches are listed and one made from this input file (with this metadata) is
        taken as the answer."""
        body: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": api_endpoint,  # /v1/chat/completions, or /v1/responses
            "completion_window": COMPLETION_WINDOW,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        endpoint = self._target.endpoint("POST", "/batches")
        attempts = Attempts(self._target.max_retries)
        headers = {**self._target.request_headers(stream=False), "Accept": "application/json"}
        call = self._limited()
        while True:
            try:
                response = self._request(call, "POST", endpoint.url, headers=headers, json=body)
            except httpx.TransportError as exc:
                delay = attempts.after_transport_error()
                failure: Exception = endpoint.transport_error(exc, attempts.retries)
                seen = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return self._info(endpoint, response)
                if response.status_code < 500:  # a refusal below 500 created nothing
                    self._sleep(retry_after_status(endpoint, attempts, response, call.on_retry))
                    continue
                delay = attempts.after_status(response.status_code, response.headers)
                failure = endpoint.status_error(response, attempts.retries)
                seen = f"HTTP {response.status_code}"
            # The wait comes first, so that a create still under way at the provider has
            # landed by the time the batches are listed.
            if delay is not None:
                self._sleep(delay)
            found = self._created(input_file_id, metadata, seen)
            if found is not None:
                return found
            if delay is None:
                raise failure

    def page(
        self, after: str | None = None, limit: int | None = None
    ) -> tuple[list[BatchInfo], list[dict[str, Any]], bool]:
        """GET /batches, one page (newest first): the batches, their raw objects, has_more."""
        query = f"?limit={limit or LIST_PAGE_SIZE}" + (f"&after={after}" if after else "")
        endpoint = self._target.endpoint("GET", f"/batches{query}")
        response = self._send(endpoint)
        reply = read_reply(endpoint, response, 0)
        data = reply.data.get("data")
        if not isinstance(data, list):
            raise endpoint.response_error("not a list of batches", body=response.text, retries=0)
        raw = [item for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]
        return [BatchInfo.from_api(item) for item in raw], raw, bool(reply.data.get("has_more"))

    def find_created(
        self, input_file_id: str, metadata: Mapping[str, str] | None = None
    ) -> BatchInfo | None:
        """The batch made from ``input_file_id`` (carrying ``metadata``), if one exists."""
        after = None
        for _ in range(LIST_MAX_PAGES):
            infos, raw, has_more = self.page(after)
            for info, item in zip(infos, raw, strict=True):
                attached = item.get("metadata")
                tags = attached if isinstance(attached, dict) else {}
                if info.input_file_id == input_file_id and all(
                    tags.get(key) == value for key, value in (metadata or {}).items()
                ):
                    return info
            if not has_more or not infos:
                return None
            after = infos[-1].id
        return None

    def _created(
        self,
        input_file_id: str,
        metadata: Mapping[str, str] | None,
        failure: str,
    ) -> BatchInfo | None:
        try:
            return self.find_created(input_file_id, metadata)
        except WorkbenchError as exc:
            # Not knowing whether it exists, sending again could pay for it twice.
            raise APIError(
                f"POST /batches for {input_file_id} got no answer ({failure}), and the "
                f"batches could not be listed to see whether it was made ({str(exc)[:300]}): "
                "look at the provider's batches before running the sweep again"
            ) from None

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
        return self._info(endpoint, self._send(endpoint, json=body))

    @staticmethod
    def _info(endpoint: Endpoint, response: httpx.Response) -> BatchInfo:
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
        call = self._limited()
        while True:
            try:
                response = self._request(
                    call, endpoint.method, endpoint.url, headers=headers, **kwargs
                )
            except httpx.TransportError as exc:
                self._sleep(retry_after_transport(endpoint, attempts, exc, call.on_retry))
                continue
            if response.is_success:
                return response
            self._sleep(retry_after_status(endpoint, attempts, response, call.on_retry))
