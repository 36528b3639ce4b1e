"""What the Batch API side needs of a sweep, as a protocol: the runner is handed the
:class:`~workbench.sweeps.sweep.Sweep` but never imports it (sweeps import the batch, not the
other way round, so there is no import circle).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.budget.estimate import Estimate
    from workbench.calls.dispatch import Job
    from workbench.calls.progress import SharedProgress
    from workbench.calls.session import PreparedChat, Session
    from workbench.sweeps.plan import PlannedRun

__all__ = ["BatchedSweep", "PendingWork", "Scoring"]


class PendingWork(Protocol):
    """What one run of a sweep has to do (the sweep's own ``_Work`` dataclass)."""

    @property
    def replay(self) -> Sequence[PreparedChat]: ...

    @property
    def send(self) -> Sequence[Job]: ...

    @property
    def cost(self) -> Estimate: ...


class Scoring(Protocol):
    """The sweep's scorers, run on the rows a batch brought."""

    def finish(self, rows: pd.DataFrame) -> Any: ...


class BatchedSweep(Protocol):
    """The members of a sweep that submitting, polling and collecting a batch read."""

    session: Session
    sweep_id: str
    experiment: str
    strict: bool
    budget: Decimal | None
    _shared: SharedProgress

    @property
    def _plan(self) -> Sequence[PlannedRun]: ...

    @property
    def scoring(self) -> Scoring | None: ...

    @property
    def running(self) -> bool: ...

    @property
    def df(self) -> pd.DataFrame: ...

    def __len__(self) -> int: ...

    def _work(self, priced: bool = True) -> Any: ...  # a dataclass that is a PendingWork

    def _refuse_over_budget(self, work: Any, *, batch: bool = False) -> None: ...

    def _rows(self) -> pd.DataFrame: ...
