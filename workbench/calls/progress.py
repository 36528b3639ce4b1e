"""How far a sweep has got, and the progress bar that shows it (tqdm.auto: a widget bar in a
notebook, a text bar in a terminal). tqdm is imported only when a bar is shown.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

from workbench.core.money import format_money

__all__ = ["SweepProgress", "SharedProgress", "ProgressBar", "State", "spent_text"]

State = Literal["planned", "running", "done", "stopped", "failed"]


def spent_text(spent_usd: float, unpriced: int) -> str:
    """Dollars spent, honest about calls of unknown price: ``$0.0012``,
    ``$0.0012 + unknown``, or ``unknown`` (never ``$0`` for calls nobody priced)."""
    if not unpriced:
        return format_money(spent_usd)
    return f"{format_money(spent_usd)} + unknown" if spent_usd else "unknown"


@dataclass
class SweepProgress:
    """Counts of one sweep run. ``done`` includes runs answered before this run started."""

    total: int = 0
    done: int = 0
    ok: int = 0
    errors: int = 0
    replayed: int = 0  # answered from the table (another sweep or a single call)
    already: int = 0  # answered by this same sweep before this run (a resume)
    sent: int = 0  # calls that went to the API in this run
    in_flight: int = 0
    spent_usd: float = 0.0
    unpriced: int = 0  # calls answered at a price nobody knows: spent_usd leaves them out
    rate_limited: int = 0
    state: State = "planned"
    message: str = ""
    to_score: int = 0  # a judge's calls sent in this run, and answered (or failed) so far:
    scored: int = 0  # after the last generation the bar says "scoring 12/32", not 100 %

    def scoring(self) -> str:
        """``scoring 12/32`` while a judge is still scoring after the last generation."""
        if self.state != "running" or self.done < self.total or self.scored >= self.to_score:
            return ""
        return f"scoring {self.scored}/{self.to_score}"

    def summary(self) -> str:
        """One line: ``12/20 done · 1 error · 3 from the table · $0.001200`` (the spend
        ends in ``+ unknown``, or is ``unknown``, when some calls have no known price)."""
        parts = [f"{self.done}/{self.total} done"]
        if self.errors:
            parts.append(f"{self.errors} error{'s' if self.errors != 1 else ''}")
        if self.replayed:
            parts.append(f"{self.replayed} from the table")
        if self.already:
            parts.append(f"{self.already} already done")
        if self.rate_limited:
            parts.append(f"{self.rate_limited}× rate-limited")
        parts.append(spent_text(self.spent_usd, self.unpriced))
        if self.state in ("stopped", "failed"):
            parts.append(self.state + (f": {self.message}" if self.message else ""))
        if self.scoring():
            parts.append(self.scoring())
        return " · ".join(parts)


class SharedProgress:
    """A SweepProgress written by the sweep's thread and read by others as snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = SweepProgress()

    def update(self, **changes: Any) -> SweepProgress:
        with self._lock:
            for name, value in changes.items():
                setattr(self._value, name, value)
            return replace(self._value)

    def add(self, **deltas: float) -> SweepProgress:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self._value, name, getattr(self._value, name) + delta)
            return replace(self._value)

    def snapshot(self) -> SweepProgress:
        with self._lock:
            return replace(self._value)


class ProgressBar:
    """A tqdm.auto bar for a sweep: done/total, with errors and spend in its postfix."""

    def __init__(self, total: int, description: str = "sweep") -> None:
        from tqdm.auto import tqdm  # deferred: keeps import workbench light (tqdm.auto ~78 ms)

        self._bar: Any = tqdm(total=total, desc=description, unit="run", dynamic_ncols=True)
        self._description = description

    def show(self, progress: SweepProgress) -> None:
        self._bar.n = progress.done
        self._bar.set_description(progress.scoring() or self._description, refresh=False)
        spent = spent_text(progress.spent_usd, progress.unpriced)
        postfix = f"errors={progress.errors} spent={spent}"
        if progress.replayed or progress.already:
            postfix += f" from-table={progress.replayed + progress.already}"
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()
