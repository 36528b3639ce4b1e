"""A real HTTP server on 127.0.0.1 that plays a scripted OpenAI-compatible API.

Used where the real local model cannot do what a test needs on demand (a fixed usage,
a model name such as gpt-4o-mini, counting requests). Every request is logged.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    # An event stream instead of ``body``: each item is sent (and flushed) as one SSE
    # ``data:`` event (dicts as JSON); then, with ``stall``, the server holds the
    # connection open until the event is set (at most 30 s), as a stuck server does.
    events: list[Any] | None = None
    stall: threading.Event | None = None
    # Sent instead of ``body``, piece by piece, ``chunk_delay_s`` apart and flushed each
    # time, with no content-length (the body ends when the connection closes): SSE pings,
    # a body dripped a byte at a time. Writing stops when the client hangs up.
    chunks: Iterable[bytes] | None = None
    chunk_delay_s: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Handler = Callable[[Received], Reply]


def chunk(content: str | None = None, *, role: str | None = None, **fields: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk`` event with a content (or role) delta."""
    delta: dict[str, Any] = {} if content is None else {"content": content}
    if role is not None:
        delta["role"] = role
    choice = {"index": 0, "delta": delta, "finish_reason": fields.pop("finish_reason", None)}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [choice],
        **fields,
    }


def chat_reply(
    text: str = "Hello!",
    *,
    model: str = "gpt-4o-mini",
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    cached_tokens: int = 0,
) -> Reply:
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": model,
            "system_fingerprint": "fp_test",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached_tokens},
            },
        }
    )


class LoopbackAPI:
    """``with LoopbackAPI(handler) as api:`` then point a client at ``api.base_url``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                request = Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with outer._lock:
                    outer.received.append(request)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    reply = outer.handler(request)
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    if reply.events is not None:
                        self._stream(reply)
                        return
                    if reply.chunks is not None:
                        self._send_chunks(reply)
                        return
                    data = (
                        reply.body
                        if isinstance(reply.body, bytes)
                        else json.dumps(reply.body).encode()
                    )
                    self.send_response(reply.status)
                    headers = {"content-type": "application/json", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with outer._lock:
                        outer.in_flight -= 1

            def _stream(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")  # the end of the body is the close
                self.end_headers()
                self.close_connection = True
                try:
                    for event in reply.events or []:
                        data = event if isinstance(event, str) else json.dumps(event)
                        self.wfile.write(f"data: {data}\n\n".encode())
                        self.wfile.flush()
                    if reply.stall is not None:
                        reply.stall.wait(30)
                except OSError:
                    pass  # the client hung up: what a stalled stream is for

            def _send_chunks(self, reply: Reply) -> None:
                self.close_connection = True
                self.send_response(reply.status)
                headers = {"content-type": "application/json", **reply.headers}
                for name, value in {"connection": "close", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    for chunk in reply.chunks or ():
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        time.sleep(reply.chunk_delay_s)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: what the test wanted

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

    def count(self, path_suffix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.received if r.path.endswith(path_suffix))

    def __enter__(self) -> LoopbackAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serving(handler: Handler) -> Iterator[LoopbackAPI]:
    with LoopbackAPI(handler) as api:
        yield api
