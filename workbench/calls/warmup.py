"""Work that a sweep's first call would otherwise wait for, started as soon as the sweep is
planned: importing the store (pandas, ~0.49 s), the dispatcher and client (httpx, ~0.15 s)
and building the tokenizers of its models (~0.57 s for o200k_base), measured on these
machines. A person reads the plan or its
estimate before ``s.run()``; by then both are done."""

from __future__ import annotations

import threading
from collections.abc import Iterable

__all__ = ["WarmUp"]


class WarmUp:
    """A daemon thread loading what calls to ``models`` will need. :meth:`wait` (or
    :attr:`tokenizers`) before using the tokenizers: their cache is not locked, so a
    second thread would build the same one again instead of waiting for it. A cold
    sweep's first calls need only the modules (:meth:`wait_modules`): they are sent while
    the tokenizers load, and counted in flight (calls/dispatch.py)."""

    def __init__(self, models: Iterable[str]) -> None:
        self._models = sorted(set(models))
        self.modules = threading.Event()
        self.tokenizers = threading.Event()  # set when built (or failed: count in place)
        self._thread = threading.Thread(target=self._load, name="workbench-warm-up", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            import workbench.api.client  # noqa: F401 - httpx, httpx-sse
            import workbench.calls.dispatch  # noqa: F401
            import workbench.store.opening  # noqa: F401 - the backends (pandas): the first run opens the store
            from workbench.core.tokens import encoding_name_for, get_encoding

            self.modules.set()
            for name in {encoding_name_for(model) for model in self._models}:
                get_encoding(name)
        except Exception:  # noqa: BLE001 - the call that needs it raises it, in its place
            return
        finally:
            self.modules.set()
            self.tokenizers.set()

    def wait_modules(self) -> None:
        self.modules.wait()

    def wait(self) -> None:
        self._thread.join()
