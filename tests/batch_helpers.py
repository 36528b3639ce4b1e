"""What the Batch API tests share: a test key, gpt-4o-mini's prices for the server's
usage, and the batch servers (tests/batchserver.py) a test starts, the workbench pointed
at the last one."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from batchserver import BatchServer

import workbench as wb
from workbench.sweeps.batch import runner

__all__ = ["KEY", "LIVE_COST", "BATCH_COST", "Start", "batch_servers"]

KEY = "sk-test-batch-0123456789abcdef"
# gpt-4o-mini: $0.15/$0.60 per million tokens live, $0.075/$0.30 in a batch (genai-prices).
LIVE_COST = 1000 * 0.15e-6 + 500 * 0.60e-6
BATCH_COST = LIVE_COST / 2

Start = Callable[..., BatchServer]


def batch_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """The body of each batch test file's ``start`` fixture: yields a function that starts
    a server; every server started stops after the test."""
    servers: list[BatchServer] = []
    # No real waiting between polls: the server moves one status per poll anyway.
    monkeypatch.setattr(runner, "POLL_FIRST_S", 0.0)

    def start_server(**kwargs: object) -> BatchServer:
        server = BatchServer(**kwargs).__enter__()  # type: ignore[arg-type]
        servers.append(server)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        wb.configure(max_retries=0)
        return server

    yield start_server
    for server in servers:
        server.__exit__()
