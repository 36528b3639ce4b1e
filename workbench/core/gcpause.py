"""Python's cyclic garbage collector paused while a large plan is built.

Planning a million-row sweep makes millions of small objects (rows, points, prompts) and
no reference cycles; each full collection walks all of them again, which made building
the plan several times slower than the work itself (the collector ran ~every 700 new
objects). The objects are reference-counted as usual while it is paused.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the collector inside the block (nested blocks are fine), then resume it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
