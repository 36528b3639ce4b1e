"""Which runs an argument means: a runs DataFrame (``wb.runs()``), a Sweep (its ``.df``),
an experiment name, or a list of run ids, read one way for every view, scorer and panel.

A name or ids are read from the store the caller passes (or a function returning it, so
a frame or a Sweep never opens a session); anything else is one :class:`RunsSelectionError`
line naming what is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunsSelection", "RunsSelectionError", "runs_frame", "TAKES"]

TAKES = "a Sweep, a runs DataFrame (wb.runs()), an experiment name or a list of run ids"


class RunsSelectionError(InvalidInputError, TypeError):
    """An argument that names no runs. A TypeError too: the views raised one before."""


StoreOrGetter = Any  # a store, or a function of no arguments returning one (read lazily)


@dataclass(frozen=True, eq=False)  # a DataFrame has no single truth value to compare by
class RunsSelection:
    """The runs an argument names: exactly one of ``frame``, ``experiment``, ``run_ids``."""

    frame: pd.DataFrame | None = None
    experiment: str | None = None
    run_ids: tuple[str, ...] | None = None

    @classmethod
    def of(cls, data: Any, what: str = "this") -> RunsSelection:
        """The selection ``data`` means, or one :class:`RunsSelectionError` line:
        ``{what} takes a Sweep, a runs DataFrame ...`` (``what``: the function taking it)."""
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        if isinstance(data, RunsSelection):
            return data
        if isinstance(data, pd.DataFrame):
            return cls(frame=data)
        held = getattr(data, "df", None)  # a Sweep, or anything holding the runs in .df
        if isinstance(held, pd.DataFrame):
            return cls(frame=held)
        if isinstance(data, str):
            if not data:
                raise RunsSelectionError(f"{what} takes {TAKES}, not an empty name")
            return cls(experiment=data)
        if (isinstance(data, Sequence) and not isinstance(data, (str, bytes)) and data
                and all(isinstance(item, str) for item in data)):
            return cls(run_ids=tuple(data))
        raise RunsSelectionError(f"{what} takes {TAKES}, not {_kind(data)}")

    def frame_in(self, store: StoreOrGetter) -> pd.DataFrame:
        """The runs as a DataFrame; a name or ids are read from ``store`` (or what the
        function ``store`` returns), and must find runs."""
        if self.frame is not None:
            return self.frame
        source = store() if callable(store) and not hasattr(store, "runs") else store
        if self.experiment is not None:
            frame = source.runs(experiment=self.experiment)
            if frame.empty:
                raise RunsSelectionError(
                    f"experiment {self.experiment!r} has no runs: check the name with "
                    "wb.runs()['experiment']"
                )
            return frame
        assert self.run_ids is not None
        every = source.runs()  # neither store filters by run id; ids name a few runs
        frame = every[every["run_id"].isin(self.run_ids)]
        missing = sorted(set(self.run_ids) - set(frame["run_id"]))
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise RunsSelectionError(f"no run with id {shown} in the table")
        return frame


def runs_frame(data: Any, store: StoreOrGetter, what: str = "this") -> pd.DataFrame:
    """The runs DataFrame ``data`` means (see :class:`RunsSelection`); ``store`` (or a
    function returning it, called only for a name or ids) is where names are read."""
    return RunsSelection.of(data, what).frame_in(store)


def _kind(data: Any) -> str:
    if isinstance(data, str):
        return repr(data)
    return type(data).__name__
