"""The session's settings: which experiment, provider, and how long and how often a call
may try. Checked as a whole before any is applied, so a bad ``wb.configure`` changes
nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from workbench.core import checks
from workbench.store.target import StoreURL, as_target

__all__ = ["Settings", "DEFAULT_DEADLINE", "default_experiment", "checked_configure"]

# Seconds one call may take in all, retries and their waits included. `timeout` is per
# read, so a server that keeps a stream alive with pings would otherwise hold a call for
# as long as it likes; 15 minutes leaves room for the longest reasoning answers.
DEFAULT_DEADLINE = 900.0


def default_experiment() -> str:
    # Jupyter Server tells the kernel which notebook started it; that name is the
    # most useful default for grouping runs.
    session_name = os.environ.get("JPY_SESSION_NAME")
    if session_name:
        stem = Path(session_name).stem
        if stem:
            return stem
    return "default"


@dataclass
class Settings:
    """What ``wb.configure`` sets, apart from the store and the budget."""

    experiment_name: str | None = None  # None: the notebook's name (default_experiment)
    default_provider: str | None = None
    timeout: float = 600.0
    deadline: float = DEFAULT_DEADLINE
    max_retries: int = 2

    @property
    def experiment(self) -> str:
        return self.experiment_name or default_experiment()


def checked_configure(
    *,
    store: Any,
    budget: Any,
    timeout: Any,
    max_retries: Any,
    deadline: Any,
    allow_unpriced: Any,
) -> dict[str, Any]:
    """The values of ``wb.configure``, each checked (one line naming the fix), before any
    is applied; None where not given."""
    if allow_unpriced is not None and not isinstance(allow_unpriced, bool):
        raise checks.InvalidInputError(
            f"allow_unpriced must be True or False, got {allow_unpriced!r}"
        )

    if store is not None and not isinstance(store, (str, os.PathLike, StoreURL)):
        raise checks.InvalidInputError(
            f"store must be a file path or a postgresql:// URL, got {type(store).__name__}"
        )
    return {
        # A URL is held masked at once: its password is never a frame's variable.
        "store": None if store is None else as_target(store),
        "budget": None if budget is None else Decimal(str(checks.amount("budget", budget))),
        "timeout": None if timeout is None else float(checks.seconds("timeout", timeout)),
        "max_retries": (
            None if max_retries is None else int(checks.whole("max_retries", max_retries, low=0))
        ),
        "deadline": None if deadline is None else float(checks.seconds("deadline", deadline)),
        "allow_unpriced": allow_unpriced,
    }
