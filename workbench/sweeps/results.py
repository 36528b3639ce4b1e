"""A sweep's results as tables: its rows by point, side by side (one row per prompt, one
column per knob combination), and each cell's small print. Part of :class:`Sweep`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.scoring.columns import add_score_columns
from workbench.sweeps.sidebyside import cell_note, rows_by_point, side_by_side

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls.session import Session
    from workbench.scoring.datasets import Dataset
    from workbench.sweeps.plan import PlannedRun

__all__ = ["SweepResults"]


class SweepResults:
    """The result views of :class:`~workbench.sweeps.sweep.Sweep` (a mixin: it reads the
    sweep's plan, store and variables)."""

    session: Session
    sweep_id: str
    repeats: int
    dataset: Dataset | None
    variables: dict[str, Any]
    _plan: list[PlannedRun]

    @property
    def points(self) -> pd.DataFrame:  # pragma: no cover - defined by Sweep
        raise NotImplementedError

    @property
    def df(self) -> pd.DataFrame:
        """This sweep's rows, one per point that has one (its ok row, else its latest
        error), in point order, with ``point``, the point's variables and knobs, and a
        ``score:<name>`` column per scorer that has scored them."""
        return add_score_columns(self._rows(), self.session.store)

    def _rows(self) -> pd.DataFrame:
        return rows_by_point(self.session.store.runs(sweep_id=self.sweep_id), self.points)

    def table(self, values: str = "output") -> pd.DataFrame:
        """Side by side: one row per prompt (its variables), one column per knob
        combination (``#n`` per sample with repeats); cells hold ``values`` of :attr:`df`.

        A DataFrame (derived frames are plain ones); in a notebook it shows as the
        readable sweep table, with each output's small print (:meth:`notes_table`)."""
        # Here, not at the top: SweepTable subclasses a DataFrame, so importing it loads
        # pandas, which a sweep does not need until its first table.
        from workbench.sweeps.sweeptable import SweepTable

        df = self.df
        if values not in df.columns:
            raise KeyError(f"no column {values!r}; choose one of {list(df.columns)}")
        shown = df[values]
        if values == "output" and "refusal" in df:  # a refusal is shown as one, not as ""
            refused = df["refusal"].map(lambda t: isinstance(t, str) and bool(t)).astype(bool)
            shown = shown.where(~refused, "[refused] " + df["refusal"].astype(str))
        notes = self._notes(df) if values == "output" else None
        return SweepTable.of(self._pivot(df, shown, values), values, notes)

    def notes_table(self) -> pd.DataFrame:
        """The small print of each cell of :meth:`table` (same shape): ``⚠ cut at 40
        tokens`` and the like on a first line, then tokens · cost · latency."""
        return self._notes(self.df)

    def _notes(self, df: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        notes = pd.Series([cell_note(row) for row in df.to_dict("records")], index=df.index,
                          dtype=object)
        return self._pivot(df, notes, "output")

    def _pivot(self, df: pd.DataFrame, shown: pd.Series, values: str) -> pd.DataFrame:
        keys = zip(df["request_hash"], df["sample_index"].astype(int), shown, strict=True)
        found = {(h, i): v for h, i, v in keys}
        plan = [(p.point, p.identity, p.prompt) for p in self._plan]
        return side_by_side(
            plan, found, variable_names=self._variable_names(), repeats=self.repeats, values=values
        )

    def _variable_names(self) -> list[str]:
        if self.dataset is not None and self._plan:
            return list(self._plan[0].point.variables)  # the columns the template uses
        return list(self.variables)


