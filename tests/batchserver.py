"""A real HTTP server on 127.0.0.1 that plays OpenAI's Files and Batches endpoints.

Batches move through the documented statuses one step per ``GET /v1/batches/{id}``
(validating → in_progress → finalizing → completed), or end ``failed``, ``expired`` or
``cancelled`` as the test's script says, with output and error files as OpenAI writes
them. The server has no clock of its own: each poll advances its time by a minute, so
what a test sees does not depend on how fast the machine is.

The requests inside a batch are answered by ``respond(body) -> (status, body)``: canned
completions in unit tests, the real local model in integration tests (it has no batch
endpoint of its own).

What a real provider does now and then, on demand: an output line that cannot be read,
requests a completed batch has no line for, a request answered 500 and then 200, a
``POST /batches`` whose answer is lost after the batch was made (``create_delays``), and
``GET /v1/batches`` (newest first, ``limit``/``after``/``has_more``) to find such a batch.
``content_gate`` holds every download of a result file until that many are waiting (or a
few seconds pass), so two kernels collecting one batch overlap for certain.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Respond = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
T0 = 1_750_000_000  # the server's clock at start (unix seconds)
STEP_S = 60  # how far the clock moves per poll


@dataclass
class Script:
    """How one batch ends: ``completed``, ``failed`` (validation), ``expired`` or
    ``cancelled`` (after the client's cancel); ``answered`` requests run before an
    expiry or cancellation, the rest never do."""

    end: str = "completed"
    answered: int = 0
    steps_in_progress: int = 1  # polls that find it in_progress before it moves on
    # By request number (0-based, input order):
    malformed: tuple[int, ...] = ()  # its output line is cut off mid-JSON
    garbled: tuple[int, ...] = ()  # its output line is cut off before its custom_id
    dropped: tuple[int, ...] = ()  # run, but in neither file
    retried: tuple[int, ...] = ()  # a 500 line, then its 200 line, in the output file


@dataclass
class _Batch:
    data: dict[str, Any]
    lines: list[dict[str, Any]]
    script: Script
    polls_in_progress: int = 0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def canned(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A completion that repeats the prompt; 'FAIL' in it gets a 400, as a bad request."""
    prompt = str(body["messages"][-1]["content"])
    if "FAIL" in prompt:
        return 400, {"error": {"message": "bad request for this line", "code": "invalid"}}
    return 200, {
        "id": "chatcmpl-batch",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"echo: {prompt}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
    }


class BatchServer:
    """``with BatchServer(respond) as api:`` then point OPENAI_BASE_URL at ``api.base_url``."""

    def __init__(
        self,
        respond: Respond = canned,
        *,
        scripts: list[Script] | None = None,
        supports_batches: bool = True,
        create_delays: list[float] | None = None,
        content_gate: int = 0,
        refusals: dict[str, int] | None = None,
    ) -> None:
        self.respond = respond
        self.scripts = list(scripts or [])  # taken in order by each new batch
        self.supports_batches = supports_batches
        self.now = T0
        self.files: dict[str, tuple[str, bytes]] = {}  # id -> (purpose, content)
        self.batches: dict[str, _Batch] = {}
        self.log: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers
        # Seconds each POST /batches holds its answer after making the batch (in order):
        # longer than the client's timeout, the answer is lost but the batch exists.
        self.create_delays = list(create_delays or [])
        # "POST /v1/batches" or "GET /v1/batches/" (a prefix) -> how many of those requests
        # are refused first, as OpenAI refuses over its rate limit: 429, "retry-after: 1".
        self.refusals = dict(refusals or {})
        self._gate = threading.Barrier(content_gate) if content_gate > 1 else None
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer._lock:
                    outer.log.append((self.command, self.path, headers))
                    extra = outer._refused(self.command, self.path)
                    if extra:
                        status, body = (
                            429,
                            {
                                "error": {
                                    "message": "Rate limit reached for requests",
                                    "type": "requests",
                                    "code": "rate_limit_exceeded",
                                }
                            },
                        )
                    else:
                        status, body = outer._route(self.command, self.path, headers, raw)
                    delay = outer._delay(self.command, self.path, status)
                if delay:
                    time.sleep(delay)  # outside the lock: the client's other calls go on
                if outer._gate is not None and self.path.endswith("/content"):
                    # Fewer downloads than the gate waits for: it breaks, and they go on.
                    with contextlib.suppress(threading.BrokenBarrierError):
                        outer._gate.wait(timeout=3.0)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                kind = "application/octet-stream" if isinstance(body, bytes) else "application/json"
                try:
                    self.send_response(status)
                    self.send_header("content-type", kind)
                    self.send_header("content-length", str(len(data)))
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out first: the batch exists all the same

            do_GET = do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        # serve_forever polls for shutdown() every poll_interval (0.5 s by default), and
        # shutdown() waits for that poll: a test paid ~0.4 s per server to stop it.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> BatchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _delay(self, method: str, path: str, status: int) -> float:
        if method == "POST" and path.rstrip("/") == "/v1/batches" and status == 200:
            return self.create_delays.pop(0) if self.create_delays else 0.0
        return 0.0

    def _refused(self, method: str, path: str) -> dict[str, str]:
        """The headers of a 429 when this request is one to refuse, else nothing."""
        path = path.split("?")[0]
        for route, left in self.refusals.items():
            route_method, _, prefix = route.partition(" ")
            matches = path.rstrip("/") == prefix or (
                prefix.endswith("/") and path.startswith(prefix)
            )
            if left and method == route_method and matches:
                self.refusals[route] = left - 1
                return {
                    "retry-after": "1",
                    "x-ratelimit-limit-requests": "60",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "1s",
                }
        return {}

    def input_lines(self) -> list[list[dict[str, Any]]]:
        """The request lines of every batch, in the order they were created."""
        return [batch.lines for batch in self.batches.values()]

    # -- routing ------------------------------------------------------------------

    def _route(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, {"error": {"message": "no key"}}
        parts = path.split("?")[0].strip("/").split("/")
        if not self.supports_batches or parts[:1] != ["v1"]:
            return 404, {"error": {"message": f"Unknown request URL: {method} {path}"}}
        match method, parts[1:]:
            case "POST", ["chat", "completions"]:  # live calls, for a resumed sweep
                return self.respond(json.loads(raw))
            case "POST", ["files"]:
                return self._upload(headers, raw)
            case "GET", ["files", file_id, "content"]:
                if file_id not in self.files:
                    return 404, {"error": {"message": f"No such File object: {file_id}"}}
                return 200, self.files[file_id][1]
            case "POST", ["batches"]:
                return self._create(json.loads(raw))
            case "GET", ["batches"]:
                return self._list(path)
            case "GET", ["batches", batch_id]:
                return self._retrieve(batch_id)
            case "POST", ["batches", batch_id, "cancel"]:
                return self._cancel(batch_id)
        return 404, {"error": {"message": f"Unknown request URL: {method} {path}"}}

    def _upload(self, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        head = f"content-type: {headers.get('content-type', '')}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + raw)
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = (
                part.get_filename(),
                payload if isinstance(payload, bytes) else b"",
            )
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if "file" not in fields or purpose != "batch":
            return 400, {"error": {"message": "file and purpose=batch are required"}}
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = ("batch", fields["file"][1])
        filename, content = fields["file"]
        return 200, {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": self.now,
            "filename": filename,
            "purpose": "batch",
        }

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return 404, {"error": {"message": f"No such File object: {file_id}"}}
        # OpenAI's Batch API also takes /v1/responses (issue 23); one endpoint per batch.
        endpoints = ("/v1/chat/completions", "/v1/responses")
        if body.get("endpoint") not in endpoints or body.get("completion_window") != "24h":
            return 400, {"error": {"message": "endpoint or completion_window not supported"}}
        lines = [json.loads(line) for line in self.files[file_id][1].decode().splitlines()]
        batch_id = f"batch_{len(self.batches) + 1}"
        script = self.scripts.pop(0) if self.scripts else Script()
        data = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": self.now,
            "in_progress_at": None,
            "expires_at": self.now + 86_400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        self.batches[batch_id] = _Batch(data, lines, script)
        return 200, data

    def _list(self, path: str) -> tuple[int, Any]:
        """GET /v1/batches: newest first, ``limit`` 1-100 (default 20), ``after`` an id."""
        query = dict(
            part.split("=", 1) for part in path.partition("?")[2].split("&") if "=" in part
        )
        limit = int(query.get("limit", "20"))
        if not 1 <= limit <= 100:
            return 400, {"error": {"message": "limit must be between 1 and 100"}}
        newest_first = [batch.data for batch in reversed(self.batches.values())]
        ids = [data["id"] for data in newest_first]
        start = ids.index(query["after"]) + 1 if query.get("after") in ids else 0
        page = newest_first[start : start + limit]
        return 200, {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + limit < len(newest_first),
        }

    def _retrieve(self, batch_id: str) -> tuple[int, Any]:
        batch = self.batches.get(batch_id)
        if batch is None:
            return 404, {"error": {"message": f"No such batch: {batch_id}"}}
        self.now += STEP_S
        data, script = batch.data, batch.script
        status = data["status"]
        if status == "validating":
            if script.end == "failed":
                data.update(status="failed", failed_at=self.now)
                data["errors"] = {
                    "object": "list",
                    "data": [{"code": "invalid_json_line", "message": "line 1 is wrong"}],
                }
            else:
                data.update(status="in_progress", in_progress_at=self.now)
        elif status == "in_progress":
            batch.polls_in_progress += 1
            if batch.polls_in_progress >= script.steps_in_progress:
                if script.end == "expired":
                    self._run(batch, script.answered, "batch_expired")
                    data.update(status="expired", expired_at=self.now)
                elif script.end != "cancelled":
                    self._run(batch, len(batch.lines), None)
                    data.update(status="finalizing", finalizing_at=self.now)
        elif status == "finalizing":
            data.update(status="completed", completed_at=self.now)
        elif status == "cancelling":
            self._run(batch, script.answered, "batch_cancelled")
            data.update(status="cancelled", cancelled_at=self.now)
        return 200, data

    def _cancel(self, batch_id: str) -> tuple[int, Any]:
        batch = self.batches.get(batch_id)
        if batch is None:
            return 404, {"error": {"message": f"No such batch: {batch_id}"}}
        if batch.data["status"] in ("completed", "failed", "expired", "cancelled"):
            return 409, {"error": {"message": f"Cannot cancel a {batch.data['status']} batch"}}
        batch.data.update(status="cancelling", cancelling_at=self.now)
        return 200, batch.data

    def _run(self, batch: _Batch, count: int, never_ran: str | None) -> None:
        """Answer the first ``count`` requests; the rest are written off as ``never_ran``."""
        for number, line in enumerate(batch.lines):
            request_id = f"batch_req_{batch.data['id']}_{number}"
            if number >= count:
                batch.errors.append(
                    {
                        "id": request_id,
                        "custom_id": line["custom_id"],
                        "response": None,
                        "error": {"code": never_ran, "message": "This request was not run."},
                    }
                )
                continue
            status, body = self.respond(line["body"])
            entry = {
                "id": request_id,
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": request_id, "body": body},
                "error": None,
            }
            script = batch.script
            if number in script.dropped:
                continue
            if number in script.retried:
                failed = {"error": {"message": "The server had an error", "type": "server_error"}}
                batch.outputs.append(
                    {**entry, "response": {**entry["response"], "status_code": 500, "body": failed}}
                )
            if number in script.malformed:
                entry = {**entry, "_malformed": True}
            if number in script.garbled:
                entry = {**entry, "_garbled": True}
            (batch.outputs if status == 200 else batch.errors).append(entry)
        counts = batch.data["request_counts"]
        counts["completed"], counts["failed"] = (
            len({e["custom_id"] for e in batch.outputs}),
            (sum(1 for e in batch.errors if e["response"] is not None)),
        )
        for kind, entries in (("output_file_id", batch.outputs), ("error_file_id", batch.errors)):
            if entries:
                file_id = f"file-{len(self.files) + 1}"
                text = "".join(_line(e) + "\n" for e in entries)
                self.files[file_id] = ("batch_output", text.encode())
                batch.data[kind] = file_id


def _line(entry: dict[str, Any]) -> str:
    """One line of a result file; a malformed one is cut off in the middle of its body."""
    if entry.get("_garbled"):
        return '{"id": "' + str(entry["id"])[:5]
    if entry.get("_malformed"):
        whole = json.dumps({k: v for k, v in entry.items() if not k.startswith("_")})
        return whole[: len(whole) // 2]
    return json.dumps(entry)
