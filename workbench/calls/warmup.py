"""Work that a sweep's first calls would otherwise wait for, started as soon as the sweep
is planned: importing the dispatcher, the client and its transport (httpx, httpcore,
anyio, the TLS context: ~0.3 s), opening the store (a new file: creating its tables),
loading the price table (genai-prices, ~0.6 s, which the first answer needs: it blocked
the event loop at a cold sweep's first answer) and building the tokenizers of its models
(~0.57 s for o200k_base), measured on these machines; then, for the sweep's end, the
frame readers (pandas and pyarrow, ~0.5-0.9 s), which the calls themselves do not need.
A person reads the plan or its estimate before ``s.run()``; by then all is done. When
``s.run()`` comes at once, the frame readers wait for its first answers
(:meth:`WarmUp.after_first_answers`), so they do not slow the first calls down."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.calls.progress import SweepProgress

__all__ = ["WarmUp"]

# What the first call imports in the event loop's thread (httpx imports httpcore lazily).
_TRANSPORT = (
    "httpcore",
    "httpcore._backends.anyio",
    "anyio._backends._asyncio",
    "h11",
)
# The longest the frame readers wait for a sweep's first answer before loading anyway.
_FRAMES_HOLD_S = 10.0


class WarmUp:
    """A daemon thread loading what calls to ``models`` will need. :meth:`wait` (or
    :attr:`tokenizers`) before using the tokenizers: their cache is not locked, so a
    second thread would build the same one again instead of waiting for it. A sweep's
    plan waits for it before returning: a run right after planning then starts warm (a
    cold 1,000-call sweep: 1.02-1.03 x the rate-limit bound, 1.04-1.10 x when its first
    calls went while the tokenizers were built).

    ``open_store`` (the session's, which takes a lock: a caller that needs the store
    while it opens waits for it) is called once the modules are in. Each step's errors
    are left for the call that needs it to raise, in its place."""

    def __init__(
        self, models: Iterable[str], open_store: Callable[[], object] | None = None
    ) -> None:
        self._models = sorted(set(models))
        self._open_store = open_store
        self.tokenizers = threading.Event()  # set when built (or failed: count in place)
        # The frame readers wait for a run's first answers (or _FRAMES_HOLD_S of a plan
        # being read): loaded at once, they would take the interpreter from a run that
        # starts right after planning.
        self._frames_may_load = threading.Event()
        self._thread = threading.Thread(target=self._load, name="workbench-warm-up", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            # This thread's work: importing what a sweep's calls import, before they do.
            import workbench.api.client  # noqa: F401 - httpx, httpx-sse
            import workbench.calls.dispatch  # noqa: F401
            import workbench.store.opening  # noqa: F401 - the backends: the first run opens the store
            from workbench.api.slots import preload_ssl
            from workbench.core.tokens import encoding_name_for, get_encoding
        except Exception:  # noqa: BLE001
            self.tokenizers.set()
            return
        if self._open_store is not None:
            with contextlib.suppress(Exception):
                self._open_store()
        with contextlib.suppress(Exception):
            # Imported here while s.run() checks the store and budget (an import the
            # event loop starts meanwhile waits for this one, not a second).
            for name in _TRANSPORT:
                with contextlib.suppress(ImportError):  # another httpx may do without
                    importlib.import_module(name)
            preload_ssl()
        with contextlib.suppress(Exception):
            self._load_prices()
        try:
            with contextlib.suppress(Exception):
                for name in {encoding_name_for(model) for model in self._models}:
                    get_encoding(name)
        finally:
            self.tokenizers.set()
        self._frames_may_load.wait(_FRAMES_HOLD_S)
        with contextlib.suppress(Exception):
            # The sweep's result is a frame: pandas and pyarrow, loaded while calls are out.
            import workbench.core.resultframe  # noqa: F401
            import workbench.store.columnar  # noqa: F401

    def _load_prices(self) -> None:
        # The table's import and its first lookup (parsing its data); no quote is kept.
        from genai_prices import Usage, calc_price  # ~0.6 s: what the first answer's cost needs

        if self._models:  # the first lookup loads the table; the others are quick
            with contextlib.suppress(LookupError):  # a model without a price
                calc_price(Usage(input_tokens=1, output_tokens=1), self._models[0])

    def wait(self) -> None:
        """Until the tokenizers are built (not the frame readers: they load after)."""
        self.tokenizers.wait()

    def after_first_answers(
        self, on_progress: Callable[[SweepProgress], None] | None, answers: int
    ) -> Callable[[SweepProgress], None]:
        """``on_progress`` for a run about to send its calls: the frame readers, if not
        loaded yet, wait until ``answers`` of its calls have ended (two waves: the loop is
        busiest with the first) instead of taking the interpreter from the first calls
        (~0.9 s of imports: released at the first answer, they stalled the sending for
        0.5 s of a cold rate-limited sweep); :meth:`release` when the run ends."""
        self._frames_may_load.clear()
        may_load = self._frames_may_load

        def progressed(progress: SweepProgress) -> None:
            if not may_load.is_set() and progress.done - progress.already >= answers:
                may_load.set()
            if on_progress is not None:
                on_progress(progress)

        return progressed

    def release(self) -> None:
        """Let the frame readers load (a run ended, answered or not)."""
        self._frames_may_load.set()
