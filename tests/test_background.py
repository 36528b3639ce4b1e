"""A coroutine on its own loop in a thread: ends, fails, or is cancelled from outside."""

from __future__ import annotations

import asyncio
import threading

from workbench.calls.background import BackgroundLoop


def test_runs_to_the_end_and_calls_on_done() -> None:
    seen: list[str] = []
    done = threading.Event()

    async def work() -> None:
        asyncio.get_running_loop()  # it has a loop of its own
        seen.append(threading.current_thread().name)

    runner = BackgroundLoop(work, name="bg-test", on_done=done.set)
    runner.start()
    assert runner.wait(timeout=10) and done.wait(timeout=10)
    assert seen == ["bg-test"] and runner.error is None and not runner.cancelled


def test_keeps_the_error_for_the_waiting_thread() -> None:
    async def work() -> None:
        raise ValueError("boom")

    runner = BackgroundLoop(work)
    runner.start()
    assert runner.wait(timeout=10)
    assert isinstance(runner.error, ValueError) and not runner.cancelled


def test_cancel_stops_an_await_that_would_never_end() -> None:
    started = threading.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    runner = BackgroundLoop(work)
    runner.start()
    assert started.wait(timeout=10)
    runner.cancel()
    assert runner.wait(timeout=10) and runner.cancelled and runner.error is None


def test_cancel_before_start_is_not_lost() -> None:
    ran: list[bool] = []

    async def work() -> None:
        ran.append(True)

    runner = BackgroundLoop(work)
    runner.cancel()
    runner.start()
    assert runner.wait(timeout=10) and runner.cancelled and ran == []
