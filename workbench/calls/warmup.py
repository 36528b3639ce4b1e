"""Work that a sweep's first call would otherwise wait for, started as soon as the sweep is
planned: importing the dispatcher and client (httpx, ~0.15 s), opening the store (a new
file: creating its tables) and building the tokenizers of its models (~0.57 s for
o200k_base), measured on these machines; then, for the sweep's end, the frame readers
(pandas and pyarrow, ~0.5-0.9 s), which the calls themselves no longer need. A person
reads the plan or its estimate before ``s.run()``; by then all is done."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable

__all__ = ["WarmUp"]


class WarmUp:
    """A daemon thread loading what calls to ``models`` will need. :meth:`wait` (or
    :attr:`tokenizers`) before using the tokenizers: their cache is not locked, so a
    second thread would build the same one again instead of waiting for it. A cold
    sweep's first calls need only the modules and the store (:meth:`wait_modules`): they
    are sent while the tokenizers load, and counted in flight (calls/dispatch.py).

    ``open_store`` (the session's, which takes a lock: a caller that needs the store
    while it opens waits for it) is called once the modules are in; its errors are left
    for the call that needs the store to raise, in its place."""

    def __init__(
        self, models: Iterable[str], open_store: Callable[[], object] | None = None
    ) -> None:
        self._models = sorted(set(models))
        self._open_store = open_store
        self.modules = threading.Event()
        self.tokenizers = threading.Event()  # set when built (or failed: count in place)
        self._thread = threading.Thread(target=self._load, name="workbench-warm-up", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        # Each step's errors are left for the call that needs it to raise, in its place.
        try:
            import workbench.api.client  # noqa: F401 - httpx, httpx-sse
            import workbench.calls.dispatch  # noqa: F401
            import workbench.store.opening  # noqa: F401 - the backends: the first run opens the store
            from workbench.core.tokens import encoding_name_for, get_encoding
        except Exception:  # noqa: BLE001
            self.modules.set()
            self.tokenizers.set()
            return
        self.modules.set()
        if self._open_store is not None:
            with contextlib.suppress(Exception):
                self._open_store()
        try:
            with contextlib.suppress(Exception):
                for name in {encoding_name_for(model) for model in self._models}:
                    get_encoding(name)
        finally:
            self.tokenizers.set()
        with contextlib.suppress(Exception):
            # The sweep's result is a frame: pandas and pyarrow, loaded while calls are out.
            import workbench.core.resultframe  # noqa: F401
            import workbench.store.columnar  # noqa: F401

    def wait_modules(self) -> None:
        self.modules.wait()

    def wait(self) -> None:
        """Until the tokenizers are built (not the frame readers: they load after)."""
        self.tokenizers.wait()
