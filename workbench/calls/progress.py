"""How far a sweep has got, and the progress bars that show it and other long work
(tqdm.auto: a widget in a notebook, text in a terminal). tqdm is imported only for a bar.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

from workbench.core.money import format_money

__all__ = ["Bar", "SweepProgress", "SharedProgress", "ProgressBar", "State", "spent_text"]

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


class Bar:
    """A tqdm.auto bar whose saved output ends at its last count. A notebook keeps a
    widget's text/plain as it was when shown, and tqdm shows its widget once, at 0 %: a
    saved notebook (nbconvert, nbval, GitHub, a Lab without widget state) read
    ``sweep: 0%| | 0/20`` after the sweep had ended. So the widget is shown under a display
    id and published again when the bar closes, its text/plain the bar's final line."""

    def __init__(self, total: int, description: str, unit: str) -> None:
        from tqdm.auto import tqdm  # deferred: keeps import workbench light (tqdm.auto ~78 ms)

        notebook = getattr(sys.modules.get("tqdm.notebook"), "tqdm_notebook", None)
        in_notebook = notebook is not None and issubclass(tqdm, notebook)
        shown_later = {"display": False} if in_notebook else {}  # std tqdm refuses the word
        self._bar: Any = tqdm(total=total, desc=description, unit=unit, dynamic_ncols=True,
                              **shown_later)
        self.total = total
        self._handle: Any = None
        if in_notebook:
            from IPython.display import display  # deferred: only a notebook's bar needs IPython

            shown = self._bar.container
            self._handle = display(shown, display_id=True)  # type: ignore[no-untyped-call]

    @property
    def n(self) -> int:
        return int(self._bar.n)

    def update(self, steps: int) -> None:
        self._bar.update(steps)

    def draw(self, n: int, postfix: str, description: str | None = None) -> None:
        """Show ``n`` done (set, not counted up), ``postfix`` after the counts."""
        self._bar.n = n
        if description is not None:
            self._bar.set_description(description, refresh=False)
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.refresh()

    def close(self, *, ended: str | None = None) -> None:
        """End the bar. ``ended`` says why the work stopped before the total when that is no
        failure (a perfect score): the bar then ends green at the count reached, where tqdm
        takes any close before the total for an error and turns the widget red."""
        bar = self._bar
        if ended and bar.n < self.total:
            bar.total = bar.n
            if getattr(bar, "container", None) is not None:
                bar.container.children[1].max = bar.n  # the widget's bar: full at the count
        elapsed = float(bar.format_dict["elapsed"])
        bar.close()
        if self._handle is not None:
            bundle = bar.container._repr_mimebundle_()  # the same widget (its model id)...
            bundle["text/plain"] = self.final_line(elapsed, ended)  # ...and its last words
            self._handle.update(bundle, raw=True)

    def final_line(self, elapsed: float, ended: str | None = None) -> str:
        """``sweep: 20/20 done in 3.1 s · errors=0 spent=$0.0012``; after an early stop
        ``optimize: 1/2 done in 12.0 s, then stopped: <why> · best=...``."""
        from tqdm import tqdm  # deferred: keeps import workbench light (tqdm, as above)

        took = f"{elapsed:.1f} s" if elapsed < 60 else tqdm.format_interval(elapsed)
        description = self._bar.desc.removesuffix(": ")  # set_description adds it
        line = f"{description}: {self.n}/{self.total} done in {took}"
        if ended and self.n < self.total:
            line += f", then stopped: {ended}"
        postfix = self._bar.postfix
        return f"{line} · {postfix}" if postfix else line


class ProgressBar(Bar):
    """A bar for a sweep: done/total, with errors and spend in its postfix."""

    def __init__(self, total: int, description: str = "sweep") -> None:
        super().__init__(total, description, "run")
        self._description = description

    def show(self, progress: SweepProgress) -> None:
        spent = spent_text(progress.spent_usd, progress.unpriced)
        postfix = f"errors={progress.errors} spent={spent}"
        if progress.replayed or progress.already:
            postfix += f" from-table={progress.replayed + progress.already}"
        self.draw(progress.done, postfix, progress.scoring() or self._description)
