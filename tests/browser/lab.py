"""A real JupyterLab server for browser tests: started on a free port, stopped by PID.

Facts from NOTES.md: as root Lab needs --allow-root; the first execution in a fresh Lab
is reliable only when the kernel session exists before the page opens and the kernel
auto-starts, so we create the session over the REST API and set the overrides.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
_OVERRIDES = {
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_overrides() -> None:
    settings = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    path = settings / "overrides.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    for plugin, values in _OVERRIDES.items():
        current.setdefault(plugin, {}).update(values)
    path.write_text(json.dumps(current, indent=2))


@contextmanager
def running_lab(root: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """Start JupyterLab serving ``root``; yield its base URL; stop it by its PID."""
    _write_overrides()
    port = _free_port()
    command = [
        str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
        "--ip", "127.0.0.1", "--port", str(port), "--ServerApp.token=", "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    with log.open("w") as out:
        # A new session, so that killing a test's process group never takes Lab down
        # halfway and Lab's kernels die with it when we stop it.
        lab = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/api/status", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if lab.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start; see {log}")
            time.sleep(0.5)
        yield base
    finally:
        try:
            os.killpg(lab.pid, signal.SIGTERM)
            lab.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(lab.pid, signal.SIGKILL)


def start_kernel_session(base: str, notebook: str) -> None:
    """Create the notebook's kernel session before the browser attaches."""
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get("/lab")
        xsrf = client.cookies.get("_xsrf", "")
        response = client.post(
            "/api/sessions",
            json={"path": notebook, "name": notebook, "type": "notebook",
                  "kernel": {"name": "python3"}},
            headers={"X-XSRFToken": xsrf},
        )
        response.raise_for_status()
