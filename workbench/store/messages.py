"""Words the two stores share in their one-line errors."""

from __future__ import annotations

from pathlib import Path

from workbench.core.errors import StoreError
from workbench.core.version import __version__

__all__ = ["FIX", "one_line", "newer_store_error"]

FIX = "point WORKBENCH_STORE (or wb.configure(store=...)) at another file"


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def newer_store_error(path: Path | str, unknown: list[str], known_up_to: str) -> StoreError:
    return StoreError(
        f"the workbench store {path} was written by a newer workbench (its schema goes up to"
        f" {unknown[-1]}; workbench {__version__} knows up to {known_up_to}): upgrade"
        " prompt-workbench to add runs to it (reading it still works), or " + FIX
    )
