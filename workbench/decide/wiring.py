"""Plugs the statistics of ``decide/`` into the sweep below it (:mod:`workbench.sweeps.hooks`):
``s.run(until="decided")`` runs :func:`~workbench.decide.sequential.run_until_decided`,
and ``s.estimate()`` says what difference the sweep's number of cases can detect
(:mod:`workbench.decide.planning`).

Imported by the package's ``__init__`` (the top floor): it imports only the hook registry,
so ``import workbench`` stays light; the statistics (scipy, statsmodels) load when a rule or
note is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.sweeps.hooks import register_estimate_note, register_stopping_rule

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["until_decided", "detectable_note"]


def until_decided(sweep: Any, **options: Any) -> pd.DataFrame:
    # Here, not at the top: keeps `import workbench` free of scipy and statsmodels.
    from workbench.decide.sequential import run_until_decided

    return run_until_decided(sweep, **options)


def detectable_note(sweep: Any) -> str | None:
    # Here, not at the top: keeps `import workbench` free of scipy and statsmodels.
    from workbench.decide.planning import planned_detectable

    detectable = planned_detectable(sweep)
    return None if detectable is None else str(detectable)


register_stopping_rule("decided", until_decided)
register_estimate_note("detectable difference", detectable_note)
