"""A coroutine run on its own event loop in a daemon thread, cancellable from any thread.

This is how sweeps run inside Jupyter, whose thread already runs an event loop (so
``asyncio.run`` there fails), and how a widget's Run button returns at once while its
Stop button can still cancel the work.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["BackgroundLoop"]


class BackgroundLoop:
    """``BackgroundLoop(make_coroutine).start()``; then ``cancel()``, ``wait()``.

    ``on_done`` is called from the background thread once the coroutine has ended, however
    it ended. An exception other than cancellation is kept in ``error``.
    """

    def __init__(
        self,
        make_coroutine: Callable[[], Coroutine[Any, Any, None]],
        *,
        name: str = "workbench",
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self._make = make_coroutine
        self._name = name
        self._on_done = on_done
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._cancel_requested = False
        self._finished = threading.Event()
        self.error: BaseException | None = None
        self.cancelled = False

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def start(self) -> None:
        thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        thread.start()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(self._make())
            with self._lock:
                self._loop, self._task = loop, task
                if self._cancel_requested:  # a cancel() that came before the task existed
                    task.cancel()
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            self.cancelled = True
        except BaseException as exc:  # handed to the thread that waits
            self.error = exc
        finally:
            with self._lock:
                self._loop = self._task = None
            # Tasks the coroutine started on this loop (a judge's calls, sent from the
            # scoring thread) end here, as asyncio.run ends them, not with the loop closed.
            left = asyncio.all_tasks(loop)
            if left:
                for other in left:
                    other.cancel()
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._finished.set()
            if self._on_done is not None:
                self._on_done()

    def cancel(self) -> None:
        """Cancel the coroutine (at its next await). Safe from any thread, at any time."""
        with self._lock:
            self._cancel_requested = True
            if self._loop is not None and self._task is not None:
                self._loop.call_soon_threadsafe(self._task.cancel)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the coroutine has ended (False if ``timeout`` passed first)."""
        return self._finished.wait(timeout)
