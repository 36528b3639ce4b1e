"""What :meth:`Sweep.table` returns: a pandas DataFrame for code, the readable sweep table
for people.

A bare ``s.table()`` in a notebook cell shows the same table as a ``%%chat`` sweep and
the SweepPanel (scrolling sideways inside the output, a sticky first column, long
outputs folded, each output's tokens · cost · latency in small print) instead of pandas'
wide HTML. Code sees an ordinary DataFrame: ``isinstance(t, pd.DataFrame)``, indexing,
``.to_csv`` and ``t.to_string()`` are pandas' own, and every frame derived from it
(``t.copy()``, ``t[cols]``, ``t.T``, arithmetic) is a plain DataFrame again, so the
readable view never leaks into a frame it no longer describes.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from workbench.core.money import format_money
from workbench.sweeps.sidebyside import table_html

__all__ = ["SweepTable", "readable_value"]


class SweepTable(pd.DataFrame):  # type: ignore[misc]  # pandas is untyped here
    """A sweep's side-by-side table (a DataFrame) whose notebook view is the sweep table."""

    # Attributes pandas keeps off the columns; not carried to derived (plain) frames.
    _metadata = ["_notes", "_shown"]
    _notes: pd.DataFrame | None = None
    _shown: str = "output"

    @property
    def _constructor(self) -> Any:  # type[pd.DataFrame]; pandas is untyped here
        # Derived frames are plain: a slice or a sum is no longer this sweep's table.
        return pd.DataFrame

    @classmethod
    def _from_arrays(cls, *args: Any, **kwargs: Any) -> pd.DataFrame:
        # pandas builds some frames (``t.T`` of text columns) as ``type(self)._from_arrays``.
        return pd.DataFrame._from_arrays(*args, **kwargs)

    @classmethod
    def of(cls, table: pd.DataFrame, values: str, notes: pd.DataFrame | None) -> SweepTable:
        """``table`` (from :func:`side_by_side`) holding ``values``; ``notes`` is each
        cell's small print (same shape) or None."""
        made = cls(table)
        made._shown = values
        made._notes = notes
        return made

    def _repr_html_(self) -> str:
        plain = pd.DataFrame(self)
        if self._shown != "output":  # numbers as people read them: $0.00042, 1.50 s, 24
            plain = plain.map(lambda value: readable_value(value, self._shown))
        return table_html(plain, self._notes)


def readable_value(value: Any, column: str) -> Any:
    """A cell of a ``values=column`` table as text a person reads; missing stays None."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if column == "cost_usd":
        return format_money(value)
    if column == "latency_s":
        return f"{value:.2f} s"
    if float(value).is_integer():
        return str(int(value))  # token counts arrive as floats where a cell is missing
    return f"{value:.3g}"
