"""A real HTTP/1.1 server on 127.0.0.1 that misbehaves on purpose, byte for byte.

It speaks ``/v1/chat/completions`` (JSON and SSE), ``/v1/embeddings`` and ``/v1/models``,
and asks a *plan* what to do with each request: answer, or one of the faults in
:class:`Fault`. The plan sees how many times the same request body came before
(``attempt``), so a run can fail first and succeed on its retry, and a test can work out
exactly how many requests to expect. Every request is counted and logged.

Built on asyncio streams rather than http.server so that a reply can stop anywhere: a
body cut short, a reset (RST, via SO_LINGER 0), a stall, an event stream cut mid-JSON.
The server runs its own event loop in a daemon thread (or, as ``python -m
faults.server``, in a process of its own) and every wait in it is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import hashlib
import json
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "Fault",
    "Action",
    "Request",
    "FaultServer",
    "Plan",
    "always",
    "body_key",
    "run_index",
]


class Fault(str, Enum):
    """What the server does with one request."""

    OK = "ok"  # a proper answer (an event stream when the body asks for one)
    RATE_LIMIT_MS = "429-retry-after-ms"  # 429 with retry-after-ms
    RATE_LIMIT_S = "429-retry-after-s"  # 429 with retry-after in whole seconds
    RATE_LIMIT_DATE = "429-retry-after-date"  # 429 with retry-after as an HTTP date
    RATE_LIMIT_BARE = "429-bare"  # 429 without any retry-after
    HTTP_500 = "500"
    HTTP_502 = "502"
    HTTP_503 = "503"
    HTTP_400 = "400"  # a refusal, with the server's message
    ECHO_AUTH = "401-echo-auth"  # 401 whose body echoes the Authorization header
    ECHO_AUTH_400 = "400-echo-auth"  # 400 whose message quotes the key
    RESET = "reset-mid-body"  # headers and part of the body, then an RST
    STALL = "stall"  # nothing at all for longer than the client's timeout
    SSE_CUT = "sse-cut-before-done"  # some content events, then the connection closes
    SSE_CUT_JSON = "sse-cut-mid-json"  # an event cut off inside its JSON, then closed
    MALFORMED_JSON = "malformed-json"  # 200 with a body that is not JSON
    WRONG_CONTENT_TYPE = "wrong-content-type"  # 200 text/html
    EMPTY_CHOICES = "empty-choices"  # 200 with "choices": []
    ERROR_IN_200 = "error-in-200"  # 200 whose body is an error object


@dataclass(frozen=True)
class Action:
    """A fault and its knobs."""

    fault: Fault = Fault.OK
    retry_after_ms: int | None = None  # sent with a 429 (default 20) or a 5xx (if set)
    delay_s: float = 0.0  # before answering (an OK reply too): a slow server
    text: str | None = None  # the answer's content; default: an echo of the prompt


@dataclass
class Request:
    """One request as the server read it; ``attempt`` counts earlier identical bodies."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    raw: bytes
    body: Any
    key: str  # sha256 of the raw body: retries of one call share it
    attempt: int
    received_at: float = field(default_factory=time.monotonic)


Plan = Callable[[Request], Action]


def always(fault: Fault = Fault.OK, **knobs: Any) -> Plan:
    """A plan that does the same thing to every request."""
    action = Action(fault, **knobs)
    return lambda request: action


def body_key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def run_index(request: Request) -> int | None:
    """The number in a prompt ending in ``#N`` (how the tests tell runs apart), if any."""
    text = _prompt_of(request.body)
    head, sep, tail = text.rpartition("#")
    return int(tail) if sep and tail.isdigit() else None


def _prompt_of(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        return content if isinstance(content, str) else json.dumps(content)
    inputs = body.get("input")
    if isinstance(inputs, list):
        return " | ".join(str(i) for i in inputs)
    return str(inputs or "")


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

MODELS = ["gpt-4o-mini", "gpt-4o", "fault-model", "text-embedding-3-small"]


class FaultServer:
    """``with FaultServer(plan) as server:`` and point clients at ``server.base_url``.

    ``stall_s`` bounds a stall (make it longer than the client's timeout); ``max_body``
    bounds what a request may send. ``requests`` is the log; :meth:`count` and
    :meth:`attempts` summarise it.
    """

    def __init__(
        self,
        plan: Plan | None = None,
        *,
        stall_s: float = 2.0,
        port: int = 0,
        max_body: int = 10_000_000,
    ) -> None:
        self.plan: Plan = plan or always()
        self.stall_s = stall_s
        self.requests: list[Request] = []
        self.faults: Counter[Fault] = Counter()
        self._port = port
        self._max_body = max_body
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # -- lifecycle ------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultServer:
        self._thread = threading.Thread(target=self._run, name="fault-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault server did not start")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            assert self._stopping is not None
            loop.call_soon_threadsafe(self._stopping.set)
            thread.join(10)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", self._port, backlog=1024, limit=1 << 20
        )
        self._ready.set()
        async with self._server:
            await self._stopping.wait()
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Run in the current loop until cancelled (for ``python -m faults.server``)."""
        await self._main()

    # -- the log ----------------------------------------------------------------------

    def count(self, path_suffix: str = "") -> int:
        """How many requests arrived (whose path ends with ``path_suffix``)."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith(path_suffix))

    def attempts(self) -> Counter[str]:
        """Requests per body key: how often each call was sent, retries included."""
        with self._lock:
            return Counter(r.key for r in self.requests)

    def received(self, path_suffix: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    def _record(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Request:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        key = body_key(raw)
        with self._lock:
            attempt = self._seen[key]
            self._seen[key] += 1
            request = Request(method, path, headers, raw, body, key, attempt)
            self.requests.append(request)
        return request

    # -- HTTP -------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length > self._max_body:
                    await self._send(writer, 413, {"error": {"message": "body too large"}})
                    break
                raw = await reader.readexactly(length) if length else b""
                request = self._record(method, path, headers, raw)
                action = self._action(request)
                with self._lock:
                    self.faults[action.fault] += 1
                if action.delay_s:
                    await asyncio.sleep(action.delay_s)
                if not await self._reply(request, action, writer):
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
            pass  # the client went away: nothing to answer
        except ValueError:
            await self._send(writer, 400, {"error": {"message": "malformed HTTP request"}})
        except asyncio.CancelledError:
            pass  # the server is stopping: the connection just ends
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    def _action(self, request: Request) -> Action:
        if request.path.endswith("/models"):
            return Action(Fault.OK)
        try:
            return self.plan(request)
        except Exception as exc:  # a broken plan is a test bug: say so in the reply
            return Action(Fault.HTTP_500, text=f"plan failed: {type(exc).__name__}: {exc}")

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        head += [f"content-type: {content_type}", f"content-length: {len(data)}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
        await writer.drain()

    async def _reply(self, request: Request, action: Action, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is finished."""
        fault = action.fault
        path = request.path.split("?")[0]
        if fault is Fault.OK:
            if path.endswith("/models"):
                data = [{"id": name, "object": "model"} for name in MODELS]
                await self._send(writer, 200, {"object": "list", "data": data})
            elif path.endswith("/embeddings"):
                await self._send(writer, 200, _embeddings(request.body))
            elif path.endswith("/chat/completions"):
                if isinstance(request.body, dict) and request.body.get("stream"):
                    await self._stream(writer, request, action, cut=None)
                else:
                    await self._send(writer, 200, _completion(request.body, action.text))
            else:
                await self._send(writer, 404, {"error": {"message": f"no route {path}"}})
            return True
        if fault in _RATE_LIMITS:
            headers = _retry_after(fault, action.retry_after_ms or 20)
            message = "Rate limit reached for requests. Please try again later."
            await self._send(writer, 429, {"error": {"message": message}}, headers=headers)
            return True
        if fault in _STATUSES:
            status, message = _STATUSES[fault]
            wait = (
                {}
                if action.retry_after_ms is None
                else _retry_after(Fault.RATE_LIMIT_MS, action.retry_after_ms)
            )
            error = {"error": {"message": action.text or message}}
            await self._send(writer, status, error, headers=wait)
            return True
        if fault in (Fault.ECHO_AUTH, Fault.ECHO_AUTH_400):
            auth = request.headers.get("authorization", "")
            key = auth.removeprefix("Bearer ").strip()
            if fault is Fault.ECHO_AUTH:
                # As a proxy might: the whole header, and the key again in a field.
                error = {
                    "message": f"Invalid header Authorization: {auth}",
                    "key": key,
                    "type": "invalid_request_error",
                }
                await self._send(writer, 401, {"error": error}, headers={"x-echo": auth})
            else:
                error = {"message": f"Incorrect API key provided: {key}. Check it.", "code": 400}
                await self._send(writer, 400, {"error": error})
            return True
        if fault is Fault.RESET:
            data = json.dumps(_completion(request.body, action.text)).encode()
            head = (
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                f"content-length: {len(data)}\r\n\r\n"
            )
            writer.write(head.encode() + data[: len(data) // 3])
            await writer.drain()
            await asyncio.sleep(0.01)  # let the partial body leave before the RST
            _reset(writer)
            return False
        if fault is Fault.STALL:
            assert self._stopping is not None
            with contextlib.suppress(asyncio.TimeoutError):  # bounded: stall_s, or a stop
                await asyncio.wait_for(self._stopping.wait(), self.stall_s)
            return False  # close without a word
        if fault in (Fault.SSE_CUT, Fault.SSE_CUT_JSON):
            await self._stream(writer, request, action, cut=fault)
            return False
        if fault is Fault.MALFORMED_JSON:
            await self._send(writer, 200, b'{"id": "chatcmpl-x", "choices": [{"index": 0, "mess')
            return True
        if fault is Fault.WRONG_CONTENT_TYPE:
            page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
            await self._send(writer, 200, page, content_type="text/html")
            return True
        if fault is Fault.EMPTY_CHOICES:
            body = _completion(request.body, action.text)
            body["choices"] = []
            await self._send(writer, 200, body)
            return True
        if fault is Fault.ERROR_IN_200:
            error = {"message": "The engine is currently overloaded", "type": "server_error"}
            await self._send(writer, 200, {"error": error})
            return True
        raise AssertionError(f"unhandled fault {fault}")  # pragma: no cover

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        request: Request,
        action: Action,
        cut: Fault | None,
    ) -> None:
        """An SSE answer in chunked encoding, as llama.cpp and OpenAI send it."""
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n"
        )
        text = action.text if action.text is not None else _answer(request.body)
        model = _model(request.body)
        words = text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        events = [_chunk(model, {"role": "assistant", "content": None})]
        events += [_chunk(model, {"content": piece}) for piece in pieces]
        events.append(_chunk(model, {}, finish="stop"))
        usage = _usage(request.body, text)
        events.append({**_chunk(model, {}), "choices": [], "usage": usage})
        if cut is not None:
            events = events[: min(3, len(events))]  # the role chunk and some content
        for event in events:
            _write_chunk(writer, b"data: " + json.dumps(event).encode() + b"\n\n")
            await writer.drain()
        if cut is Fault.SSE_CUT_JSON:
            _write_chunk(writer, b'data: {"id": "chatcmpl-fault", "choices": [{"delta": {"con')
            await writer.drain()
        if cut is not None:
            await asyncio.sleep(0.01)
            writer.close()  # no [DONE], no final zero-size chunk
            return
        _write_chunk(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()


_RATE_LIMITS = {
    Fault.RATE_LIMIT_MS,
    Fault.RATE_LIMIT_S,
    Fault.RATE_LIMIT_DATE,
    Fault.RATE_LIMIT_BARE,
}

_STATUSES = {
    Fault.HTTP_500: (500, "The server had an error while processing your request."),
    Fault.HTTP_502: (502, "Bad gateway."),
    Fault.HTTP_503: (503, "The engine is currently overloaded, please try again later."),
    Fault.HTTP_400: (400, "This model's maximum context length is 2048 tokens."),
}


def _retry_after(fault: Fault, retry_after_ms: int) -> dict[str, str]:
    if fault is Fault.RATE_LIMIT_MS:
        return {"retry-after-ms": str(retry_after_ms)}
    if fault is Fault.RATE_LIMIT_S:
        return {"retry-after": "1"}
    if fault is Fault.RATE_LIMIT_DATE:
        # HTTP dates have whole seconds: 2 s ahead is 1 to 2 s from now.
        return {"retry-after": email.utils.formatdate(time.time() + 2, usegmt=True)}
    return {}


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # Linger on, timeout 0: close() sends an RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def _model(body: Any) -> str:
    return str(body.get("model", "fault-model")) if isinstance(body, dict) else "fault-model"


def _answer(body: Any) -> str:
    return f"echo: {_prompt_of(body)}"


def _usage(body: Any, text: str) -> dict[str, int]:
    prompt = max(1, len(_prompt_of(body).split()))
    completion = max(1, len(text.split()))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(body: Any, text: str | None) -> dict[str, Any]:
    answer = text if text is not None else _answer(body)
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(body),
        "system_fingerprint": "fp_fault",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(body, answer),
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fault",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _embeddings(body: Any) -> dict[str, Any]:
    inputs = body.get("input") if isinstance(body, dict) else None
    texts = inputs if isinstance(inputs, list) else [inputs]
    data = []
    for index, text in enumerate(texts):
        digest = hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).digest()
        vector = [b / 255 - 0.5 for b in digest[:8]]
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(len(str(t).split()) for t in texts)
    return {
        "object": "list",
        "model": _model(body),
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def main(argv: list[str] | None = None) -> None:
    """Serve OK answers after a fixed delay until killed or ``--seconds`` pass: the
    loopback API of the benchmarks, in a process of its own."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds before each answer")
    parser.add_argument("--seconds", type=float, default=600, help="stop after this long")
    args = parser.parse_args(argv)
    server = FaultServer(always(Fault.OK, delay_s=args.delay))

    async def run() -> None:
        task = asyncio.create_task(server.serve_forever())
        while server._server is None or not server._ready.is_set():
            await asyncio.sleep(0.01)
        print(server.base_url, flush=True)
        await asyncio.sleep(args.seconds)
        assert server._stopping is not None
        server._stopping.set()
        await task

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
